// The command line as a user meets it: devices, errors, a short real run.
#include <catch2/catch.hpp>

#include <fstream>

#include "engine/device.h"
#include "engine_fixtures.h"

using namespace plinth;

TEST_CASE("cli: help lists the commands and each command's options", "[cli]") {
  const auto top = test::run_cli("--help");
  CHECK(top.status == 0);
  for (const char* c : {"train", "eval", "predict", "bench", "info"}) CHECK_THAT(top.output, Catch::Contains(c));
  const auto train = test::run_cli("train --help");
  CHECK(train.status == 0);
  for (const char* o : {"--model", "--device", "--epochs", "--batch-size", "--lr", "--seed", "--data", "--threads",
                        "--max-steps", "--history", "--save", "--resume", "--init-from", "--freeze"})
    CHECK_THAT(train.output, Catch::Contains(o));
  CHECK(test::run_cli("train --no-such-option").status == 1);
  CHECK(test::run_cli("frobnicate").status == 2);
}

TEST_CASE("cli: --device cuda without a usable GPU fails clearly; auto says it uses the CPU", "[cli]") {
  if (!cuda_status().devices.empty()) {
    WARN("SKIPPED: a GPU is usable here; this test is about machines without one");
    return;
  }
  const auto cuda = test::run_cli("train --device cuda --max-steps 1");
  CHECK(cuda.status == 1);
  CHECK_THAT(cuda.output, Catch::Contains("--device cuda: no usable GPU"));
  const auto info = test::run_cli("info");
  CHECK(info.status == 0);
  CHECK_THAT(info.output, Catch::Contains("no usable GPU"));
}

TEST_CASE("cli: a missing data set or model file is one clear line and a non-zero exit", "[cli]") {
  const auto data = test::run_cli("train --device cpu --data /nonexistent/dir --max-steps 1");
  CHECK(data.status == 1);
  CHECK_THAT(data.output, Catch::Contains("/nonexistent/dir"));
  const auto model = test::run_cli("train --device cpu --model /nonexistent.json");
  CHECK(model.status == 1);
  CHECK_THAT(model.output, Catch::Contains("/nonexistent.json: cannot open model file"));
}

TEST_CASE("cli: a short run trains, saves, evaluates, predicts and refuses a changed resume", "[cli][checkpoint]") {
  if (!test::fashion_available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed");
    return;
  }
  const std::string dir = test::temp_dir("cli");
  const auto train = test::run_cli("train --device auto --threads 2 --epochs 1 --max-steps 60 --history " + dir +
                                   "/h.json --save " + dir + "/c.safetensors --model " PLINTH_SOURCE_DIR "/models/seed_cnn.json");
  INFO(train.output);
  REQUIRE(train.status == 0);
  if (cuda_status().devices.empty()) CHECK_THAT(train.output, Catch::Contains("using the CPU"));
  const auto eval = test::run_cli("eval --device cpu --json --checkpoint " + dir + "/c.safetensors");
  INFO(eval.output);
  REQUIRE(eval.status == 0);
  const auto j = nlohmann::json::parse(eval.output.substr(eval.output.find('{')));
  CHECK(j["accuracy"].get<double>() > 0.5);
  CHECK(j["confusion"].size() == 10);
  CHECK(j["per_class_accuracy"].size() == 10);
  const auto predict = test::run_cli("predict --device cpu --limit 2 --images /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --checkpoint " + dir + "/c.safetensors");
  INFO(predict.output);
  CHECK(predict.status == 0);
  CHECK_THAT(predict.output, Catch::Contains("t10k-images-idx3-ubyte.gz[1]:"));
  const auto resume = test::run_cli("train --device cpu --lr 0.01 --resume " + dir + "/c.safetensors");
  CHECK(resume.status == 1);
  CHECK_THAT(resume.output, Catch::Contains("changes the run's settings") && Catch::Contains("lr"));
}
