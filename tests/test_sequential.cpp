// The Keras-like C++ API: the builder makes the same model as the model files, training
// through it learns, early stopping follows Keras, checkpoints round-trip. CPU backend.
#include <catch2/catch.hpp>

#include <random>

#include "engine/plinth.h"
#include "engine_fixtures.h"

using namespace plinth;

namespace {

const CompileOptions kCpu{.device = "cpu", .threads = 1, .quiet = true};

Sequential seed_cnn_builder() {
  Sequential model({1, 28, 28}, "seed_cnn");
  model.add(conv2d(32, 3, "relu"))
      .add(maxpool2d(2))
      .add(conv2d(64, 3, "relu"))
      .add(maxpool2d(2))
      .add(conv2d(64, 3, "relu"))
      .add(flatten())
      .add(dense(64, "relu"))
      .add(dense(10, "softmax"));
  return model;
}

// 4x4 images whose class is whether the first pixel is bright: learnable, tiny, no files.
Dataset synthetic(int count, uint64_t seed) {
  Dataset d;
  d.count = count;
  d.channels = 1;
  d.height = d.width = 4;
  d.classes = 2;
  d.name = "synthetic";
  std::mt19937_64 rng(seed);
  for (int i = 0; i < count * 16; ++i) d.images.push_back(static_cast<uint8_t>(rng() & 255));
  for (int i = 0; i < count; ++i) d.labels.push_back(d.images[i * 16] > 127 ? 1 : 0);
  return d;
}

Sequential tiny_model() {
  Sequential model({1, 4, 4}, "tiny");
  model.add(flatten()).add(dense(8, "tanh")).add(dense(2, "softmax"));
  return model;
}

}  // namespace

TEST_CASE(
    "api sequential: the builder makes models/seed_cnn.json's model, and they share checkpoints",
    "[api]") {
  Sequential model = seed_cnn_builder();
  model.compile(adam(1e-3), "categorical_crossentropy", kCpu);
  CHECK(model.parameter_count() == 93322);
  const Model file = test::seed_cnn();
  CHECK(model.to_json() == file.to_json());
  CHECK(model.summary().find("conv1 (conv2d)") != std::string::npos);

  const std::string path = test::temp_dir("api-interop") + "/builder.safetensors";
  model.save(path);
  auto be = make_cpu_backend(1);
  Parameters params(file, *be);
  params.initialize(99);
  const LoadReport r = load_weights(path, params, true);
  CHECK(r.loaded.size() == 10);
  CHECK(params.download(params.values()) ==
        model.parameters().download(model.parameters().values()));
}

TEST_CASE("api sequential: automatic names skip taken ones, and mistakes fail where they are made",
          "[api]") {
  Sequential model({1, 8, 8});
  model.add(conv2d(4, 3).named("conv2"))
      .add(conv2d(4, 3))
      .add(flatten())
      .add(dropout(0.5))
      .add(flatten());
  std::vector<std::string> names;
  const nlohmann::json definition = model.to_json();
  for (const auto& l : definition["layers"]) names.push_back(l["name"]);
  CHECK(names == std::vector<std::string>{"conv2", "conv3", "flatten", "dropout1", "flatten2"});

  CHECK_THROWS_WITH(model.add(conv2d(0, 3)), Catch::Contains("filters"));
  CHECK_THROWS_WITH(model.add(dense(4, "swish")), Catch::Contains("unknown activation 'swish'"));
  CHECK_THROWS_WITH(model.fit(synthetic(8, 1)), Catch::Contains("call compile() first"));
  model.add(dense(10, "softmax")).add(dense(10, "softmax"));
  CHECK_THROWS_WITH(model.compile(adam()),
                    Catch::Contains("softmax is only supported on the last layer"));
  CHECK_THROWS_WITH(tiny_model().compile(sgd(-1), "categorical_crossentropy", kCpu),
                    Catch::Contains("positive"));

  Sequential tiny = tiny_model();
  tiny.compile(adam(), "categorical_crossentropy", kCpu);
  CHECK_THROWS_WITH(tiny.fit(synthetic(32, 1), {.epochs = 1, .schedule = one_cycle(0, 1.5f)}),
                    Catch::Contains("warmup"));
  Dataset wide = synthetic(8, 1);
  wide.height = 2;
  wide.width = 8;
  CHECK_THROWS_WITH(tiny.evaluate(wide), Catch::Contains("needs 1x4x4 images"));
}

TEST_CASE("api sequential: a short fit on Fashion-MNIST lowers the loss along a cosine schedule",
          "[api]") {
  if (!test::fashion_available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  Sequential model = seed_cnn_builder();
  model.compile(adam(1e-3), "categorical_crossentropy", {.device = "cpu", .quiet = true});
  const auto [train, val] = split_validation(test::head(test::fashion_train(), 1200), 1.0 / 6);
  const double before = model.evaluate(val).loss;
  const History h =
      model.fit(train, val, {.epochs = 2, .schedule = cosine(), .verbosity = Verbosity::quiet});
  REQUIRE(h.epochs.size() == 2);
  CHECK_FALSE(h.stopped_early);
  CHECK(h.epochs[1].loss < h.epochs[0].loss);
  CHECK(h.epochs[1].val_loss < before - 0.5);
  CHECK(h.epochs[0].lr < 0.6e-3);  // halfway down the cosine
  CHECK(h.epochs[1].lr < 1e-5);
}

TEST_CASE("api sequential: early stopping follows Keras' EarlyStopping on val_loss", "[api]") {
  auto history = [](std::vector<double> val_losses) {
    std::vector<EpochRecord> h;
    for (double v : val_losses) h.push_back({.val_loss = v});
    return h;
  };
  CHECK(epochs_without_improvement(history({}), 0) == 0);
  CHECK(epochs_without_improvement(history({1.0, 0.9, 0.95, 0.899}), 0) == 0);
  CHECK(epochs_without_improvement(history({1.0, 0.9, 0.95, 0.899}), 0.01) == 2);
  CHECK(epochs_without_improvement(history({1.0, 1.0, 1.0}), 0) == 2);  // equal is no improvement

  // An lr so small that val_loss moves far less than min_delta: epoch 1 improves on
  // nothing, epochs 2 and 3 do not improve, so patience 2 stops after epoch 3.
  Sequential model = tiny_model();
  model.compile(sgd(1e-7f), "categorical_crossentropy", kCpu);
  const FitOptions stop{.epochs = 10,
                        .batch_size = 16,
                        .validation_split = 0.25,
                        .early_stopping_patience = 2,
                        .early_stopping_min_delta = 1e-3,
                        .verbosity = Verbosity::quiet};
  const History h = model.fit(synthetic(128, 1), stop);
  CHECK(h.epochs.size() == 3);
  CHECK(h.stopped_early);
  CHECK(h.early_stopped);

  // The same run with a learning rate that keeps improving val_loss runs every epoch.
  model.compile(sgd(0.5f), "categorical_crossentropy", kCpu);
  FitOptions go = stop;
  go.epochs = 4;
  go.early_stopping_min_delta = 0;
  const History learning = model.fit(synthetic(128, 1), go);
  CHECK(learning.epochs.size() == 4);
  CHECK_FALSE(learning.early_stopped);

  CHECK_THROWS_WITH(model.fit(synthetic(64, 2), {.early_stopping_patience = 2}),
                    Catch::Contains("no validation set"));
}

TEST_CASE("api sequential: save and load round-trip weights, normalisation and recipe exactly",
          "[api]") {
  Sequential model = tiny_model();
  model.compile(adam(1e-2), "categorical_crossentropy", kCpu);
  const Dataset data = synthetic(96, 3);
  model.fit(data,
            {.epochs = 2, .batch_size = 16, .normalize = true, .verbosity = Verbosity::quiet});
  const std::vector<float> expected = model.predict(data);
  REQUIRE(expected.size() == 96 * 2);
  const std::string path = test::temp_dir("api-roundtrip") + "/tiny.safetensors";
  model.save(path);

  Sequential loaded = Sequential::load(path, kCpu);
  CHECK(loaded.to_json() == model.to_json());
  CHECK(loaded.predict(data) == expected);

  Sequential fresh = tiny_model();
  fresh.compile(adam(1e-2), "categorical_crossentropy",
                {.device = "cpu", .threads = 1, .seed = 42, .quiet = true});
  const auto values = [](Sequential& m) {
    return m.parameters().download(m.parameters().values());
  };
  CHECK(values(fresh) != values(model));
  fresh.load_weights(path);
  CHECK(values(fresh) == values(model));
}

TEST_CASE("api sequential: a residual graph with BatchNorm trains, saves and loads", "[api]") {
  Sequential model({1, 4, 4}, "residual");
  model.add(conv2d(4, 3, "linear", 1, "same"))
      .add(batchnorm2d("relu"))
      .add(conv2d(4, 3, "linear", 1, "same"))
      .add(batchnorm2d())
      .add(merge("add", {"bn1", "bn2"}, "relu"))
      .add(merge("concat", {"add1", "input"}))
      .add(global_avgpool())
      .add(dense(2, "softmax"));
  model.compile(sgd(0.1f, 0.9f), "categorical_crossentropy", kCpu);
  const nlohmann::json layers = model.to_json()["layers"];
  CHECK(layers[4]["name"] == "add1");
  CHECK(layers[4]["input"] == nlohmann::json{"bn1", "bn2"});
  CHECK(layers[6]["name"] == "gap1");
  CHECK_THAT(model.summary(), Catch::Contains("add1, input"));
  const Dataset data = synthetic(256, 3);
  const History h = model.fit(data, {.epochs = 3, .batch_size = 16, .verbosity = Verbosity::quiet});
  CHECK(h.epochs.back().loss < h.epochs.front().loss);

  const std::string path = test::temp_dir("api-residual") + "/residual.safetensors";
  model.save(path);
  Sequential loaded = Sequential::load(path, kCpu);
  CHECK(loaded.to_json() == model.to_json());
  CHECK(loaded.parameters().download_buffers() == model.parameters().download_buffers());
  CHECK(loaded.predict(data) == model.predict(data));
}
