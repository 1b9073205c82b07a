// The layer registry: every registered type has every part a layer needs (fields that
// build it and come back in to_json, a name prefix, a PyTorch description, a row in
// README's table, fuzzing tokens, a place in Sequential), and `plinth layers` prints it.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/layer.h"
#include "engine/parameters.h"
#include "engine/sequential.h"
#include "engine_fixtures.h"

namespace plinth {
namespace {

using Json = nlohmann::json;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// README's "Model files" layer table: its lines, from the header to the first line that
// is not a table row.
std::string readme_layer_table() {
  std::istringstream in(read_text(PLINTH_SOURCE_DIR "/README.md"));
  std::string line, table;
  bool inside = false;
  while (std::getline(in, line)) {
    inside = inside || line.rfind("| layer | field |", 0) == 0;
    if (inside && line.rfind("|", 0) != 0) break;
    if (inside) table += line + "\n";
  }
  return table;
}

// The table's cells, trimmed, per row.
std::vector<std::vector<std::string>> table_rows(const std::string& table) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(table);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::istringstream row(line.substr(1));
    std::string cell;
    while (std::getline(row, cell, '|')) {
      const size_t a = cell.find_first_not_of(' '), b = cell.find_last_not_of(' ');
      cells.push_back(a == std::string::npos ? "" : cell.substr(a, b - a + 1));
    }
    rows.push_back(cells);
  }
  return rows;
}

// README's table as type -> the fields listed under it; a type without a row is absent.
std::map<std::string, std::set<std::string>> readme_fields() {
  std::map<std::string, std::set<std::string>> fields;
  std::string type;
  for (const auto& cells : table_rows(readme_layer_table())) {
    if (cells.size() < 2) continue;
    if (!cells[0].empty())
      fields[type = cells[0]];
    else if (!type.empty())
      fields[type].insert(cells[1]);
  }
  return fields;
}

std::string code(const std::string& s) { return "`" + s + "`"; }

// The type's model-file object with every documented field at its example value.
Json with_examples(const LayerType& type) {
  Json j{{"type", type.name}};
  for (const LayerField& f : type.fields) j[f.name] = f.example;
  return j;
}

// Inputs the layer takes, as many as its type needs: images, or features for layers that
// need a flatten before.
std::vector<Shape> inputs_for(const Layer& layer) {
  const LayerType& type = *find_layer_type(layer.type());
  for (const Shape& in : {Shape{2, 3, 8, 8}, Shape{2, 12}}) {
    const std::vector<Shape> inputs(type.min_inputs, in);
    try {
      layer.output_shape(inputs);
      return inputs;
    } catch (const Error&) {
    }
  }
  FAIL("layer " << layer.type() << " takes neither [2, 3, 8, 8] nor [2, 12]");
  return {};
}

TEST_CASE("layers: every registered type has every part", "[layers]") {
  const auto readme = readme_fields();
  const std::string dict = read_text(PLINTH_SOURCE_DIR "/fuzz/model.dict");
  for (const LayerType* type : layer_types()) {
    INFO("layer type " << type->name);
    CHECK(!type->summary.empty());
    CHECK(!type->name_prefix.empty());
    REQUIRE(type->make != nullptr);
    CHECK(find_layer_type(type->name) == type);

    // Built from its documented fields, it gives every one of them back in to_json.
    const Json full = with_examples(*type);
    const auto layer = layer_from_json(full, "catalogue", "example");
    const Json saved = layer->to_json();
    CHECK(saved["type"] == type->name);
    CHECK(saved["name"] == "example");
    for (const LayerField& f : type->fields) {
      INFO("field " << f.name);
      CHECK(!f.doc.empty());
      CHECK(saved.value(f.name, Json()) == f.example);
      CHECK(f.example.dump() != f.default_value);  // an example that tests the field
    }
    CHECK(saved.size() == type->fields.size() + 2);  // type, name and the fields: no more
    CHECK(layer_from_json(saved, "saved", "other")->to_json() == saved);

    // The required fields alone build it; without one of them, the error names it.
    Json required{{"type", type->name}};
    for (const LayerField& f : type->fields)
      if (f.default_value.empty()) required[f.name] = f.example;
    CHECK_NOTHROW(layer_from_json(required, "required", "x"));
    for (const LayerField& f : type->fields) {
      if (!f.default_value.empty()) continue;
      Json missing = required;
      missing.erase(f.name);
      CHECK_THROWS_WITH(layer_from_json(missing, "m", "x"), Catch::Contains(f.name));
    }

    // It takes one input, or several; and has a PyTorch equivalent for inputs it takes.
    CHECK(type->min_inputs >= 1);
    CHECK(type->max_inputs >= type->min_inputs);
    const std::vector<Shape> inputs = inputs_for(*layer);
    const Shape& in = inputs.front();
    const TorchModule torch = layer->torch_module(inputs);
    CHECK((!torch.module.empty() || !torch.activation.empty() || !torch.merge.empty()));
    CHECK(torch.merge.empty() == (type->max_inputs == 1));  // how several inputs combine
    CHECK(torch.args.is_array());
    CHECK(torch.kwargs.is_object());

    // It describes its ONNX nodes: a chain from its inputs to y through its own parameters,
    // buffers and tensors, reading every input (plinth export writes them; the test
    // `cli graph: plinth export ...` checks them with ONNX's checker).
    std::vector<std::string> xs;
    for (size_t k = 0; k < inputs.size(); ++k) xs.push_back("x" + std::to_string(k));
    const std::vector<OnnxNode> nodes = layer->onnx_nodes(inputs, xs, "y");
    REQUIRE(!nodes.empty());
    std::set<std::string> known(xs.begin(), xs.end()), read;
    for (const ParamSpec& p : layer->param_specs(inputs)) known.insert("example." + p.suffix);
    for (const BufferSpec& b : layer->buffer_specs(inputs)) known.insert("example." + b.suffix);
    for (const OnnxNode& node : nodes) {
      CHECK(!node.op_type.empty());
      CHECK(node.attributes.is_object());
      for (const std::string& input : node.inputs) CHECK(known.count(input));
      read.insert(node.inputs.begin(), node.inputs.end());
      for (const std::string& output : node.outputs) {
        CHECK((output == "y" || output.starts_with("example.")));
        known.insert(output);
      }
    }
    CHECK(nodes.back().outputs == std::vector<std::string>{"y"});
    for (const std::string& x : xs) CHECK(read.count(x));

    // README's table lists it with every field; the fuzzer knows its tokens.
    std::set<std::string> documented;
    std::vector<std::string> tokens{type->name};
    for (const LayerField& f : type->fields) {
      documented.insert(code(f.name));
      tokens.push_back(f.name);
    }
    const auto row = readme.find(code(type->name));
    CHECK(row != readme.end());  // README's layer table: build/plinth layers prints it
    if (row != readme.end()) CHECK(row->second == documented);
    for (const std::string& token : tokens) {
      INFO("fuzz/model.dict needs the line \"\\\"" << token << "\\\"\"");
      CHECK(dict.find("\"\\\"" + token + "\\\"\"\n") != std::string::npos);
    }

    // Sequential adds it by type and names it by its prefix.
    Sequential model({3, 8, 8});
    if (in.rank == 2) model.add(flatten());
    Json fields = full;
    fields.erase("type");
    model.add(plinth::layer(type->name, fields)).add(plinth::layer(type->name, fields));
    const Json layers = model.to_json()["layers"];
    const std::string& prefix = type->name_prefix;
    CHECK(layers[layers.size() - 2]["name"] == (type->bare_first ? prefix : prefix + "1"));
    CHECK(layers.back()["name"] == prefix + "2");
  }
}

TEST_CASE("layers: every file in engine/layers/ is a registered type of its name", "[layers]") {
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(PLINTH_SOURCE_DIR "/engine/layers"))
    if (entry.path().extension() == ".cpp" && entry.path().stem() != "layer_registry")
      files.insert(entry.path().stem().string());
  std::set<std::string> registered;
  for (const LayerType* type : layer_types()) registered.insert(type->name);
  CHECK(files == registered);  // a file's line in layer_registry.cpp is missing, or a file
}

TEST_CASE("layers: an unknown type or field is refused, naming what is known", "[layers]") {
  try {
    layer_from_json({{"type", "conv3d"}}, "m.json: layers[2]", "x");
    FAIL("conv3d was accepted");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::StartsWith("m.json: layers[2].type: unknown layer type 'conv3d'"));
    for (const LayerType* type : layer_types()) CHECK_THAT(e.what(), Catch::Contains(type->name));
  }
  CHECK_THROWS_WITH(layer_from_json({{"type", "flatten"}, {"units", 3}}, "m.json: layers[0]", "x"),
                    "m.json: layers[0]: unknown field 'units'");
  CHECK_THROWS_WITH(plinth::layer("dense", Json::array()), Catch::Contains("JSON object"));
}

TEST_CASE("layers: README's layer table is what `plinth layers` prints", "[layers][cli]") {
  const test::CommandResult r = test::run_cli("layers");
  REQUIRE(r.status == 0);
  INFO("regenerate README's table with build/plinth layers");
  CHECK(readme_layer_table() == r.output);
}

TEST_CASE("layers: plinth layers --json is the catalogue", "[layers][cli]") {
  const test::CommandResult r = test::run_cli("layers --json");
  REQUIRE(r.status == 0);
  const Json catalog = Json::parse(r.output);
  CHECK(catalog == layer_catalog());
  REQUIRE(catalog["layers"].size() == layer_types().size());
  const Json& conv = catalog["layers"][0];
  CHECK(conv["type"] == "conv2d");
  CHECK(conv["name_prefix"] == "conv");
  CHECK(
      conv["fields"][0] ==
      Json{{"name", "filters"}, {"default", nullptr}, {"doc", "output channels"}, {"example", 8}});
  CHECK(conv["fields"][2]["default"] == "1");
}

TEST_CASE("layers: plinth layers --model resolves each node, as Parameters lays them out",
          "[layers][cli]") {
  const test::CommandResult r =
      test::run_cli("layers --json --model " PLINTH_SOURCE_DIR "/models/seed_cnn.json");
  REQUIRE(r.status == 0);
  const Json d = Json::parse(r.output);
  const Model m = test::seed_cnn();
  CHECK(d == m.describe());
  CHECK(d["output"] == "fc2");
  REQUIRE(d["nodes"].size() == m.nodes.size());
  const Json& conv1 = d["nodes"][0];
  CHECK(conv1["inputs"] == Json{"input"});
  CHECK(conv1["input_shapes"] == Json{{1, 28, 28}});
  CHECK(conv1["output_shape"] == Json{32, 26, 26});
  CHECK(conv1["torch"] == Json{{"merge", nullptr},
                               {"module", "Conv2d"},
                               {"args", {1, 32, 3}},
                               {"kwargs", {{"stride", 1}, {"padding", 0}, {"bias", true}}},
                               {"activation", "ReLU"}});
  CHECK(conv1["buffers"] == Json::array());
  const Json& fc2 = d["nodes"].back();
  CHECK(fc2["inputs"] == Json{"fc1"});
  CHECK(fc2["softmax_output"] == true);
  CHECK(fc2["torch"]["activation"].is_null());  // logits; the softmax is the loss's

  auto be = make_cpu_backend(1);
  Parameters params(m, *be);
  std::vector<std::pair<std::string, Json>> described, laid_out;
  for (const Json& node : d["nodes"])
    for (const Json& p : node["parameters"]) described.emplace_back(p["name"], p["shape"]);
  for (const ParamEntry& e : params.entries())
    laid_out.emplace_back(
        e.name, std::vector<int>(e.shape.dims.begin(), e.shape.dims.begin() + e.shape.rank));
  CHECK(described == laid_out);

  // A node that consumes an earlier node other than the one before it names it, and one
  // with several inputs names them all.
  const Model branch = test::model_from(R"({"input": [1, 4, 4], "loss": "mse", "layers": [
      {"type": "flatten", "name": "flat"}, {"type": "dense", "name": "a", "units": 16},
      {"type": "dense", "name": "b", "units": 16, "input": "flat"},
      {"type": "add", "name": "sum", "input": ["a", "b"]}]})");
  const Json nodes = branch.describe()["nodes"];
  CHECK(nodes[2]["inputs"] == Json{"flat"});
  CHECK(nodes[3]["inputs"] == Json{"a", "b"});
  CHECK(nodes[3]["input_shapes"] == Json{{16}, {16}});
  CHECK(nodes[3]["torch"]["merge"] == "sum");
  CHECK(test::run_cli("layers --model /nonexistent.json").status == 1);
}

}  // namespace
}  // namespace plinth
