#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"

namespace plinth {

// The built-in layer types in the docs' order, one line per file in engine/layers/. A list
// rather than registrars in each file: a static library's objects that nothing references
// are dropped by the linker, and their registrars with them.
#define PLINTH_LAYER_TYPES(X) \
  X(conv2d)                   \
  X(maxpool2d)                \
  X(dense)                    \
  X(flatten)                  \
  X(activation)               \
  X(dropout)

#define PLINTH_DECLARE_LAYER_TYPE(type) const LayerType& type##_layer_type();
PLINTH_LAYER_TYPES(PLINTH_DECLARE_LAYER_TYPE)
#undef PLINTH_DECLARE_LAYER_TYPE

const std::vector<const LayerType*>& layer_types() {
#define PLINTH_LIST_LAYER_TYPE(type) &type##_layer_type(),
  static const std::vector<const LayerType*> types{PLINTH_LAYER_TYPES(PLINTH_LIST_LAYER_TYPE)};
#undef PLINTH_LIST_LAYER_TYPE
  return types;
}

const LayerType* find_layer_type(const std::string& type) {
  for (const LayerType* t : layer_types())
    if (t->name == type) return t;
  return nullptr;
}

nlohmann::json layer_catalog() {
  nlohmann::json types = nlohmann::json::array();
  for (const LayerType* t : layer_types()) {
    nlohmann::json fields = nlohmann::json::array();
    for (const LayerField& f : t->fields)
      fields.push_back({{"name", f.name},
                        {"default", f.default_value.empty() ? nlohmann::json()
                                                            : nlohmann::json(f.default_value)},
                        {"doc", f.doc},
                        {"example", f.example}});
    types.push_back({{"type", t->name},
                     {"summary", t->summary},
                     {"name_prefix", t->name_prefix},
                     {"bare_first", t->bare_first},
                     {"fields", fields}});
  }
  return {{"layers", types}};
}

namespace {

// A typo in a model file should not pass silently.
void refuse_unknown_fields(const JsonFields& f, const LayerType& type) {
  for (const auto& [key, value] : f.raw().items()) {
    bool known = key == "type" || key == "name" || key == "input";
    for (const LayerField& field : type.fields) known = known || key == field.name;
    if (!known) fail("{}: unknown field {}", f.where(), quoted_input(key));
  }
}

std::string type_names() {
  std::string names;
  for (const LayerType* t : layer_types()) names += (names.empty() ? "" : ", ") + t->name;
  return names;
}

}  // namespace

std::unique_ptr<Layer> layer_from_json(const nlohmann::json& j, const std::string& where,
                                       const std::string& default_name) {
  const JsonFields f(j, where);
  const std::string type_name = f.str("type");
  const std::string name = f.str("name", default_name);
  if (name.empty() || name.find_first_of(". \t\"") != std::string::npos)
    fail("{}.name: {} is not a valid layer name (no dots, spaces or quotes)", where,
         quoted_input(name));
  const LayerType* type = find_layer_type(type_name);
  if (!type)
    fail("{}.type: unknown layer type {} (expected {})", where, quoted_input(type_name),
         type_names());
  refuse_unknown_fields(f, *type);
  return type->make(f, name);
}

}  // namespace plinth
