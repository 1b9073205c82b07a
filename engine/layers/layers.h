// Factories of the built-in layers, one per file in engine/layers/. Adding a layer is one
// new file here plus one line in layer_registry.cpp.
#pragma once

#include <memory>
#include <string>

#include "engine/json_fields.h"
#include "engine/layer.h"

namespace plinth {

std::unique_ptr<Layer> make_conv2d(const JsonFields& f, const std::string& name);
std::unique_ptr<Layer> make_maxpool2d(const JsonFields& f, const std::string& name);
std::unique_ptr<Layer> make_dense(const JsonFields& f, const std::string& name);
std::unique_ptr<Layer> make_flatten(const JsonFields& f, const std::string& name);
std::unique_ptr<Layer> make_activation(const JsonFields& f, const std::string& name);
std::unique_ptr<Layer> make_dropout(const JsonFields& f, const std::string& name);

}  // namespace plinth
