#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"

namespace plinth {

std::unique_ptr<Layer> layer_from_json(const nlohmann::json& j, const std::string& where,
                                       const std::string& default_name) {
  const JsonFields f(j, where);
  const std::string type = f.str("type");
  const std::string name = f.str("name", default_name);
  if (name.empty() || name.find_first_of(". \t\"") != std::string::npos)
    fail("{}.name: '{}' is not a valid layer name (no dots, spaces or quotes)", where, name);
  if (type == "conv2d") return make_conv2d(f, name);
  if (type == "maxpool2d") return make_maxpool2d(f, name);
  if (type == "dense") return make_dense(f, name);
  if (type == "flatten") return make_flatten(f, name);
  if (type == "activation") return make_activation(f, name);
  if (type == "dropout") return make_dropout(f, name);
  fail("{}.type: unknown layer type '{}' (expected conv2d, maxpool2d, dense, flatten, "
       "activation, dropout)", where, type);
}

}  // namespace plinth
