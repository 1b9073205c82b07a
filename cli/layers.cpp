// plinth layers: the layer types a model file can use, or how plinth resolves one model's
// layers (shapes, parameters, the PyTorch modules scripts/pytorch_interop.py builds).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/layer.h"
#include "engine/model.h"

namespace plinth::cli {

namespace {

// README's "Model files" table: a row per type, then one per field.
std::string catalog_markdown() {
  std::string out = "| layer | field | default | meaning |\n|---|---|---|---|\n";
  for (const LayerType* t : layer_types()) {
    const std::string first = t->bare_first ? "" : "1";
    std::string inputs;  // only for types that take several
    if (t->max_inputs > 1)
      inputs = fmt::format(
          "; takes {} {} inputs (`\"input\": [\"a\", \"b\"]`)", t->min_inputs,
          t->max_inputs == kAnyNumberOfInputs ? "or more" : fmt::format("to {}", t->max_inputs));
    out += fmt::format("| `{}` | | | {}{}; Sequential names `{}{}`, `{}2`, ... |\n", t->name,
                       t->summary, inputs, t->name_prefix, first, t->name_prefix);
    for (const LayerField& f : t->fields)
      out += fmt::format("| | `{}` | {} | {} |\n", f.name,
                         f.default_value.empty() ? "required" : "`" + f.default_value + "`", f.doc);
  }
  return out;
}

std::string shape_text(const nlohmann::json& dims) {
  std::string s;
  for (const auto& d : dims) s += (s.empty() ? "" : "x") + d.dump();
  return s;
}

// Conv2d(1, 32, 3, stride=1, padding=0, bias=True) + ReLU, as Python writes it.
std::string torch_text(const nlohmann::json& torch) {
  auto python = [](const nlohmann::json& v) {
    return v.is_boolean() ? (v.get<bool>() ? "True" : "False") : v.dump();
  };
  std::string call;
  if (torch["merge"] == "sum") call = "sum(inputs)";
  if (torch["merge"] == "cat") call = "cat(inputs, dim=1)";
  if (!torch["module"].is_null()) {
    call += call.empty() ? "" : " + ";
    std::string args;
    for (const auto& a : torch["args"]) args += (args.empty() ? "" : ", ") + python(a);
    for (const auto& [k, v] : torch["kwargs"].items())
      args += (args.empty() ? "" : ", ") + k + "=" + python(v);
    call += torch["module"].get<std::string>() + "(" + args + ")";
  }
  if (!torch["activation"].is_null())
    call += (call.empty() ? "" : " + ") + torch["activation"].get<std::string>();
  return call.empty() ? "(identity)" : call;
}

// One row per node, each column as wide as its widest cell.
std::string model_text(const nlohmann::json& d) {
  std::vector<std::vector<std::string>> rows{
      {"node", "type", "inputs", "input", "output", "PyTorch"}};
  for (const auto& n : d["nodes"]) {
    std::string inputs, in_shapes;
    for (const auto& i : n["inputs"]) inputs += (inputs.empty() ? "" : ",") + i.get<std::string>();
    for (const auto& s : n["input_shapes"])
      in_shapes += (in_shapes.empty() ? "" : ",") + shape_text(s);
    std::string torch = torch_text(n["torch"]);
    if (n["softmax_output"]) torch += " (softmax fused with the loss)";
    rows.push_back({n["name"].get<std::string>(), n["type"].get<std::string>(), inputs, in_shapes,
                    shape_text(n["output_shape"]), torch});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  std::string out;
  for (const auto& row : rows) {
    for (size_t c = 0; c + 1 < row.size(); ++c) out += fmt::format("{:<{}}", row[c], widths[c] + 2);
    out += row.back() + "\n";
  }
  return out;
}

}  // namespace

int layers_command(int argc, char** argv) {
  Args a("layers",
         "List the layer types a model file can use, with their fields and defaults (the table "
         "in README's \"Model files\"), or with --model how plinth resolves a model's layers.");
  a.option("model", "FILE",
           "describe this model file's layers: inputs, shapes, parameters, PyTorch modules");
  a.flag("json", "print one JSON object (the catalogue, or the model's description)");
  if (!a.parse(argc, argv)) return 0;
  if (a.has("model")) {
    const nlohmann::json d = load_model(find_model_file(a.str("model"))).describe();
    std::fputs(a.on("json") ? (d.dump(2) + "\n").c_str() : model_text(d).c_str(), stdout);
  } else {
    std::fputs(a.on("json") ? (layer_catalog().dump(2) + "\n").c_str() : catalog_markdown().c_str(),
               stdout);
  }
  return 0;
}

}  // namespace plinth::cli
