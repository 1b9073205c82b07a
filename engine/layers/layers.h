// What a layer file includes. A layer type is one file here, engine/layers/<type>.cpp,
// which defines the Layer subclass and `const LayerType& <type>_layer_type()`: the type's
// name, summary, automatic-name prefix, documented fields and factory (engine/layer.h).
// Its PyTorch equivalent is the Layer's torch_module(). Registering it is one line in
// layer_registry.cpp; tests/test_layers.cpp then demands the rest: a gradient-check case,
// a row in README's layer table (`plinth layers` prints it) and tokens in fuzz/model.dict.
#pragma once

#include <memory>
#include <string>

#include "engine/json_fields.h"
#include "engine/layer.h"
