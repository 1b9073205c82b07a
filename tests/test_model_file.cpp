#include <catch2/catch.hpp>

#include "engine/error.h"
#include "engine_fixtures.h"

using namespace plinth;

TEST_CASE("model file: the seed CNN has the source text's 93,322 parameters", "[model]") {
  const Model m = test::seed_cnn();
  CHECK(m.parameter_count() == 93322);
  CHECK(m.nodes.size() == 8);
  CHECK(m.nodes.back().layer->softmax_output());
  CHECK(m.optimizer.kind == OptimizerKind::adam);
  CHECK(m.optimizer.eps == Approx(1e-7f));
  // Round trip through JSON keeps the definition.
  const Model again = parse_model(m.to_json(), "round-trip");
  CHECK(again.to_json() == m.to_json());
}

TEST_CASE("model file: the bundled models parse", "[model]") {
  for (const char* f :
       {"mlp.json", "conv_autoencoder.json", "seed_cnn.json", "seed_cnn_large_batch.json"})
    CHECK_NOTHROW(load_model(std::string(PLINTH_SOURCE_DIR "/models/") + f));
}

TEST_CASE("model file: malformed files name the file and the field", "[model]") {
  auto error_of = [](const char* json) {
    try {
      test::model_from(json);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const char* prefix = R"({"input": [1, 28, 28], "layers": [)";
  auto with = [&](const std::string& layers, const std::string& rest = R"(], "loss": "mse"})") {
    return error_of((prefix + layers + rest).c_str());
  };
  CHECK_THAT(with(R"({"type": "conv3d", "filters": 2, "kernel": 3})"),
             Catch::Contains("test-model.layers[0].type") && Catch::Contains("conv3d"));
  CHECK_THAT(with(R"({"type": "conv2d", "kernel": 3})"),
             Catch::Contains("layers[0]") && Catch::Contains("filters"));
  CHECK_THAT(with(R"({"type": "conv2d", "filters": -4, "kernel": 3})"),
             Catch::Contains("layers[0].filters"));
  CHECK_THAT(with(R"({"type": "conv2d", "filters": 4, "kernel": 3, "activaton": "relu"})"),
             Catch::Contains("unknown field 'activaton'"));
  CHECK_THAT(with(R"({"type": "conv2d", "filters": 4, "kernel": 30})"),
             Catch::Contains("does not fit"));
  CHECK_THAT(with(R"({"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"})",
                  R"(], "loss": "mse"})"),
             Catch::Contains("softmax output only goes with categorical_crossentropy"));
  CHECK_THAT(with(R"({"type": "flatten"}, {"type": "dense", "units": 10})",
                  R"(], "loss": "categorical_crossentropy"})"),
             Catch::Contains("needs a dense last layer with activation 'softmax'"));
  CHECK_THAT(
      with(R"({"type": "flatten", "name": "a"}, {"type": "dense", "name": "a", "units": 784})"),
      Catch::Contains("duplicate layer name 'a'"));
  CHECK_THAT(error_of(R"({"input": [1, 28], "layers": []})"), Catch::Contains("test-model.input"));
  CHECK_THAT(
      error_of(
          R"({"input": [1, 28, 28], "layers": [{"type": "flatten"},)"
          R"({"type": "dense", "units": 2, "activation": "softmax"}], "optimizer": "adagrad"})"),
      Catch::Contains("unknown optimizer 'adagrad'"));
}

TEST_CASE("model file: unreadable or invalid JSON files are clear errors", "[model]") {
  const std::string dir = test::temp_dir("model");
  CHECK_THROWS_WITH(load_model(dir + "/missing.json"),
                    Catch::Contains("missing.json: cannot open"));
  const std::string bad = dir + "/bad.json";
  FILE* f = fopen(bad.c_str(), "w");
  fputs("{\"input\": [1, 28, 28], \"layers\": [", f);
  fclose(f);
  CHECK_THROWS_WITH(load_model(bad), Catch::Contains("bad.json: not valid JSON"));
}
