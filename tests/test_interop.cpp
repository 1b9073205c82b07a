// PyTorch interop: a plinth checkpoint gives PyTorch's logits, and a PyTorch state_dict
// gives plinth PyTorch's accuracy (scripts/pytorch_interop.py does the comparing). The
// checkpoint's model uses every layer type, so each type's PyTorch description is checked.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/executor.h"
#include "engine/layer.h"
#include "engine/safetensors.h"
#include "engine_fixtures.h"

namespace {

using namespace plinth::test;

bool pytorch_available() {
  return std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
}

// A model that uses every registered layer type, most of their fields off their defaults,
// in a graph: a residual block with a projection shortcut, a concat of two branches of
// channels and one of features.
nlohmann::json every_layer_type_model() {
  return nlohmann::json::parse(R"({
    "name": "every_layer_type", "input": [1, 28, 28],
    "layers": [
      {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "stride": 2, "padding": 1,
       "activation": "tanh"},
      {"type": "maxpool2d", "name": "pool1", "size": 3, "stride": 2},
      {"type": "conv2d", "name": "conv2", "filters": 6, "kernel": 3, "padding": "same",
       "use_bias": false},
      {"type": "batchnorm2d", "name": "bn1", "activation": "relu", "momentum": 0.2},
      {"type": "conv2d", "name": "short", "input": "pool1", "filters": 6, "kernel": 1,
       "use_bias": false},
      {"type": "add", "name": "add1", "input": ["bn1", "short"], "activation": "relu"},
      {"type": "activation", "name": "act1", "activation": "sigmoid"},
      {"type": "concat", "name": "cat1", "input": ["act1", "pool1"]},
      {"type": "avgpool2d", "name": "avg1", "size": 2},
      {"type": "dropout", "name": "drop1", "rate": 0.25},
      {"type": "flatten", "name": "flatten"},
      {"type": "global_avgpool", "name": "gap", "input": "drop1"},
      {"type": "concat", "name": "cat2", "input": ["flatten", "gap"]},
      {"type": "dense", "name": "fc1", "units": 16, "activation": "tanh", "use_bias": false},
      {"type": "batchnorm1d", "name": "bn2", "eps": 0.001},
      {"type": "dense", "name": "fc2", "units": 10, "activation": "softmax"}
    ],
    "loss": "categorical_crossentropy", "training": {"normalize": true}
  })");
}

// A small residual model for the step-by-step comparison: every layer type that trains the
// same in both engines (dropout's masks do not), SGD with momentum and weight decay.
const char* kResidualSteps = R"({
  "name": "residual_steps", "input": [2, 10, 10],
  "layers": [
    {"type": "conv2d", "name": "stem", "filters": 4, "kernel": 3, "padding": 1, "use_bias": false},
    {"type": "batchnorm2d", "name": "stem_bn", "activation": "relu"},
    {"type": "conv2d", "name": "c1", "filters": 4, "kernel": 3, "padding": 1, "use_bias": false},
    {"type": "batchnorm2d", "name": "bn1", "activation": "relu"},
    {"type": "conv2d", "name": "c2", "filters": 4, "kernel": 3, "padding": 1, "use_bias": false},
    {"type": "batchnorm2d", "name": "bn2"},
    {"type": "add", "name": "add1", "input": ["bn2", "stem_bn"], "activation": "relu"},
    {"type": "conv2d", "name": "proj", "filters": 6, "kernel": 1, "stride": 2},
    {"type": "maxpool2d", "name": "pool", "input": "add1", "size": 2},
    {"type": "avgpool2d", "name": "avg", "input": "add1", "size": 2},
    {"type": "concat", "name": "cat", "input": ["proj", "pool", "avg"]},
    {"type": "global_avgpool", "name": "gap"},
    {"type": "flatten", "name": "flat", "input": "cat"},
    {"type": "dense", "name": "fc1", "units": 8, "activation": "tanh"},
    {"type": "concat", "name": "head", "input": ["gap", "fc1"]},
    {"type": "batchnorm1d", "name": "bn_head", "activation": "sigmoid"},
    {"type": "dense", "name": "fc2", "units": 5, "activation": "softmax"}
  ],
  "loss": "categorical_crossentropy",
  "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": true,
                "weight_decay": 0.001}
})";

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

  // (i) compares that checkpoint's logits and test accuracy in PyTorch; (ii) trains the same
  // graph in PyTorch and compares its logits and test accuracy in plinth.
  const CommandResult interop = run_shell(
      "/usr/bin/python3 " PLINTH_SOURCE_DIR "/scripts/pytorch_interop.py --plinth " PLINTH_CLI_PATH
      " --device cpu --limit 20 --steps 40 --test-accuracy --model " +
      dir + "/model.json --workdir " + dir + " " + ckpt);
  INFO(interop.output);
  CHECK(interop.status == 0);
  CHECK(interop.output.find("(ii) PyTorch -> plinth: model.json") != std::string::npos);
  CHECK(interop.output.find("pytorch_interop: OK") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("interop: a residual model trains step by step as in PyTorch", "[interop]") {
  if (!pytorch_available()) {
    WARN("SKIPPED: PyTorch is not installed (apt-get install python3-torch)");
    return;
  }
  using namespace plinth;
  const std::string dir = temp_dir("interop-steps");
  std::ofstream(dir + "/model.json") << kResidualSteps;
  const Model m = load_model(dir + "/model.json");
  auto be = make_cpu_backend(2);
  Parameters p(m, *be);
  p.initialize(3);
  const int batch = 8, steps = 5;
  Executor exec(m, p, *be, batch, true);
  const size_t sample = exec.input().shape.per_sample();

  // Random batches; every step's weights and buffers, saved as a checkpoint, and its loss.
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> x(steps * batch * sample);
  for (float& v : x) v = pixel(rng);
  std::vector<int64_t> labels(steps * batch);
  for (int64_t& l : labels) l = static_cast<int64_t>(rng() % 5);
  save_safetensors(dir + "/batches.safetensors",
                   {NamedTensorData::f32("x", {steps, batch, 2, 10, 10}, x),
                    NamedTensorData::i64("labels", {steps, batch}, labels)});
  auto save = [&](int step) {
    save_checkpoint(fmt::format("{}/step{}.safetensors", dir, step), p, {m.to_json(), {}, {}});
  };
  save(0);
  nlohmann::json losses = nlohmann::json::array();
  for (int step = 0; step < steps; ++step) {
    be->upload(exec.input().data, x.data() + step * batch * sample, batch * sample * sizeof(float));
    std::vector<int32_t> step_labels(labels.begin() + step * batch,
                                     labels.begin() + (step + 1) * batch);
    be->upload(exec.labels(), step_labels.data(), batch * sizeof(int32_t));
    exec.reset_stats();
    exec.forward(true);
    exec.loss(batch, true);
    exec.backward();
    be->increment(p.step(), nullptr);  // the trainer's update: one call for every parameter
    be->optimizer_update(m.optimizer, LrSchedule{}, p.values(), p.grads(), p.moment1(), p.moment2(),
                         p.size(), p.step(), nullptr, nullptr);
    float s[kStatsSize];
    be->download(s, exec.stats(), sizeof s);
    losses.push_back(s[kStatLossSum] / s[kStatCount]);
    save(step + 1);
  }
  std::ofstream(dir + "/losses.json") << losses.dump();

  const CommandResult r =
      run_shell("/usr/bin/python3 " PLINTH_SOURCE_DIR
                "/scripts/pytorch_interop.py --plinth " PLINTH_CLI_PATH " --steps-from " +
                dir);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("pytorch_interop: OK") != std::string::npos);
}
