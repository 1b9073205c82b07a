// plinth export on a graph that uses every layer type: ONNX's checker and its strict shape
// inference accept the file, and onnxruntime computes the logits plinth predict prints
// (where scripts/setup_onnx.sh has made .venv-onnx).
#include <catch2/catch.hpp>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/layer.h"
#include "image_fixtures.h"
#include "robustness_fixtures.h"

namespace {

using Catch::Contains;
using plinth::test::run_cli;
using plinth::test::run_shell;

// Every layer type on 3x16x16 images of 3 classes: a residual merge of three inputs (one of
// them the block's own input), concats of channels and of features, both BatchNorms.
const char* kEveryLayerGraph = R"({
  "name": "every_layer_graph", "input": [3, 16, 16],
  "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "padding": "same",
     "activation": "relu"},
    {"type": "maxpool2d", "name": "pool1", "size": 2},
    {"type": "conv2d", "name": "conv2", "filters": 4, "kernel": 3, "padding": 1,
     "use_bias": false},
    {"type": "batchnorm2d", "name": "bn1", "activation": "relu"},
    {"type": "conv2d", "name": "short", "input": "pool1", "filters": 4, "kernel": 1,
     "use_bias": false},
    {"type": "add", "name": "add1", "input": ["bn1", "short", "pool1"], "activation": "relu"},
    {"type": "activation", "name": "act1", "activation": "sigmoid"},
    {"type": "concat", "name": "cat1", "input": ["act1", "pool1"]},
    {"type": "avgpool2d", "name": "avg1", "size": 2},
    {"type": "dropout", "name": "drop1", "rate": 0.1},
    {"type": "flatten", "name": "flat"},
    {"type": "global_avgpool", "name": "gap", "input": "drop1"},
    {"type": "concat", "name": "cat2", "input": ["flat", "gap"]},
    {"type": "dense", "name": "fc1", "units": 16, "activation": "tanh"},
    {"type": "batchnorm1d", "name": "bn2"},
    {"type": "dense", "name": "fc2", "units": 3, "activation": "softmax"}],
  "loss": "categorical_crossentropy",
  "optimizer": {"type": "adam", "lr": 0.01},
  "training": {"epochs": 3, "batch_size": 4, "val_split": 0, "normalize": true}
})";

}  // namespace

TEST_CASE("onnx graph: every layer type exports, and ONNX infers every shape", "[cli][onnx]") {
  const nlohmann::json spec = nlohmann::json::parse(kEveryLayerGraph);
  std::set<std::string> used;
  for (const auto& layer : spec["layers"]) used.insert(layer["type"].get<std::string>());
  for (const plinth::LayerType* type : plinth::layer_types()) {
    INFO("add a " << type->name << " layer to kEveryLayerGraph");
    CHECK(used.count(type->name) == 1);
  }

  const std::string dir = plinth::test::image_folder("onnx-graph", 8);
  std::ofstream(dir + "/graph.json") << kEveryLayerGraph;
  const std::string checkpoint = dir + "/graph.safetensors";
  const auto train = run_cli("train --device cpu --quiet --data " + dir + " --model " + dir +
                             "/graph.json --save " + checkpoint);
  INFO(train.output);
  REQUIRE(train.status == 0);
  const auto exported = run_cli("export --checkpoint " + checkpoint + " --onnx " + dir + "/g.onnx");
  INFO(exported.output);
  REQUIRE(exported.status == 0);

  onnx::ModelProto proto;
  std::ifstream in(dir + "/g.onnx", std::ios::binary);
  REQUIRE(proto.ParseFromIstream(&in));
  CHECK_NOTHROW(onnx::checker::check_model(proto));
  // Strict inference: a node that cannot take its inputs' shapes (a merge of two shapes, a
  // pooled [N, C, 1, 1] into Gemm) throws.
  CHECK_NOTHROW(onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(),
                                                   onnx::ShapeInferenceOptions(true, 1)));
  std::set<std::string> ops;
  for (const onnx::NodeProto& node : proto.graph().node()) ops.insert(node.op_type());
  for (const char* op : {"BatchNormalization", "Add", "Concat", "AveragePool", "GlobalAveragePool",
                         "Conv", "MaxPool", "Gemm", "Flatten"}) {
    INFO("ONNX operator " << op);
    CHECK(ops.count(op) == 1);
  }
  std::set<std::string> initializers;
  for (const onnx::TensorProto& t : proto.graph().initializer()) initializers.insert(t.name());
  CHECK(initializers.count("bn1.running_mean") == 1);
  CHECK(initializers.count("bn2.running_var") == 1);

  const std::string python = PLINTH_SOURCE_DIR "/.venv-onnx/bin/python";
  if (!std::filesystem::exists(python)) {
    WARN(
        "SKIPPED onnxruntime's half: onnx and onnxruntime are not installed "
        "(bash scripts/setup_onnx.sh)");
    return;
  }
  std::string images;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 2; ++v) {
      const std::string path = dir + "/probe" + std::to_string(c) + std::to_string(v) + ".png";
      plinth::test::write_bytes(path,
                                plinth::test::encode_png(plinth::test::class_image(c, 3, 16, v)));
      images += " " + path;
    }
  const auto check = run_shell(python + " " PLINTH_SOURCE_DIR "/scripts/onnx_check.py --plinth " +
                               PLINTH_CLI_PATH + " --checkpoint " + checkpoint + " --onnx " + dir +
                               "/g.onnx" + images);
  INFO(check.output);
  CHECK(check.status == 0);
  CHECK_THAT(check.output, Contains("same class for every image: yes"));
}
