// PyTorch interop: a plinth checkpoint gives PyTorch's logits, and a PyTorch state_dict
// gives plinth PyTorch's accuracy (scripts/pytorch_interop.py does the comparing). The
// checkpoint's model uses every layer type, so each type's PyTorch description is checked.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include "engine/layer.h"
#include "engine_fixtures.h"

namespace {

using namespace plinth::test;

bool pytorch_available() {
  return std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
}

// A model that uses every registered layer type, most of their fields off their defaults.
nlohmann::json every_layer_type_model() {
  return nlohmann::json::parse(R"({
    "name": "every_layer_type", "input": [1, 28, 28],
    "layers": [
      {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "stride": 2, "padding": 1,
       "activation": "tanh"},
      {"type": "maxpool2d", "name": "pool1", "size": 3, "stride": 2},
      {"type": "conv2d", "name": "conv2", "filters": 6, "kernel": 3, "padding": "same",
       "activation": "relu", "use_bias": false},
      {"type": "activation", "name": "act1", "activation": "sigmoid"},
      {"type": "dropout", "name": "drop1", "rate": 0.25},
      {"type": "flatten", "name": "flatten"},
      {"type": "dense", "name": "fc1", "units": 16, "activation": "tanh", "use_bias": false},
      {"type": "dense", "name": "fc2", "units": 10, "activation": "softmax"}
    ],
    "loss": "categorical_crossentropy", "training": {"normalize": true}
  })");
}

}  // namespace

TEST_CASE("interop: the interop model uses every registered layer type", "[interop]") {
  const nlohmann::json model = every_layer_type_model();
  std::set<std::string> used;
  for (const auto& layer : model["layers"]) used.insert(layer["type"].get<std::string>());
  for (const plinth::LayerType* type : plinth::layer_types()) {
    INFO("add a " << type->name << " layer to every_layer_type_model()");
    CHECK(used.count(type->name) == 1);
  }
}

TEST_CASE("interop: plinth checkpoints and PyTorch state_dicts give the same outputs",
          "[interop]") {
  if (!pytorch_available()) {
    WARN("SKIPPED: PyTorch is not installed (apt-get install python3-torch)");
    return;
  }
  if (!fashion_available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  const std::string dir = temp_dir("interop");
  // Input normalisation is on, so the checkpoint's mean/std (which PyTorch must apply too)
  // are not the identity.
  std::ofstream(dir + "/model.json") << every_layer_type_model().dump();

  const std::string ckpt = dir + "/tiny.safetensors";
  const CommandResult train = run_cli("train --model " + dir +
                                      "/model.json --device cpu --quiet --epochs 1 "
                                      "--max-steps 30 --val-split 0 --classes 0,1 --save " +
                                      ckpt);
  INFO(train.output);
  REQUIRE(train.status == 0);

  // (i) compares that checkpoint's logits; (ii) trains the seed CNN in PyTorch.
  const CommandResult interop = run_shell("/usr/bin/python3 " PLINTH_SOURCE_DIR
                                          "/scripts/pytorch_interop.py --plinth " PLINTH_CLI_PATH
                                          " --device cpu --limit 20 --steps 40 --workdir " +
                                          dir + " " + ckpt);
  INFO(interop.output);
  CHECK(interop.status == 0);
  CHECK(interop.output.find("pytorch_interop: OK") != std::string::npos);
  std::filesystem::remove_all(dir);
}
