// Where the data set comes from: --data, else $PLINTH_DATA, else the Debian package's
// folder; and the commands that read no data set run without one. The data sets here are
// synthetic, so these tests run (and can fail) on machines without Fashion-MNIST.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "robustness_fixtures.h"

namespace {

using plinth::test::run_shell;

// An IDX data set in the MNIST layout: `train` and `test` 28x28 images whose label c is
// drawn as a bright band on rows 2c and 2c+1.
std::string synthetic_data_dir(const std::string& name, int train, int test) {
  const std::string dir = plinth::test::temp_dir(name);
  auto write = [&](const std::string& prefix, int count) {
    std::vector<uint8_t> images(static_cast<size_t>(count) * 28 * 28, 0), labels(count);
    for (int i = 0; i < count; ++i) {
      labels[i] = static_cast<uint8_t>(i % 10);
      for (int x = 0; x < 2 * 28; ++x) images[(i * 28 + 2 * labels[i]) * 28 + x] = 200 + i % 50;
    }
    plinth::test::write_idx(dir + "/" + prefix + "-images-idx3-ubyte", {count, 28, 28},
                            images.data());
    plinth::test::write_idx(dir + "/" + prefix + "-labels-idx1-ubyte", {count}, labels.data());
  };
  write("train", train);
  write("t10k", test);
  return dir;
}

// The CLI with PLINTH_DATA set to `data` (unset when empty).
plinth::test::CommandResult cli_with_data_env(const std::string& data, const std::string& args) {
  const std::string env = data.empty() ? "env -u PLINTH_DATA " : "env PLINTH_DATA=" + data + " ";
  return run_shell(env + PLINTH_CLI_PATH + " " + args);
}

}  // namespace

TEST_CASE("cli data: PLINTH_DATA is train's and eval's data set, and --data overrides it",
          "[cli][data]") {
  const std::string data = synthetic_data_dir("data-env", 100, 30);
  const std::string model = plinth::test::tiny_cnn_file(data);
  const std::string checkpoint = data + "/c.safetensors";

  const auto train = cli_with_data_env(
      data, "train --device cpu --threads 2 --epochs 1 --model " + model + " --save " + checkpoint);
  INFO(train.output);
  REQUIRE(train.status == 0);
  CHECK_THAT(train.output, Catch::Contains("loading " + data) &&
                               Catch::Contains("data: 90 training, 10 validation, 30 test images"));

  const auto eval = cli_with_data_env(data, "eval --device cpu --json --checkpoint " + checkpoint);
  INFO(eval.output);
  REQUIRE(eval.status == 0);
  CHECK(nlohmann::json::parse(eval.output.substr(eval.output.find('{')))["count"] == 30);

  const auto given =
      cli_with_data_env("/nonexistent/plinth-data",
                        "eval --device cpu --json --data " + data + " --checkpoint " + checkpoint);
  INFO(given.output);
  REQUIRE(given.status == 0);
  CHECK(nlohmann::json::parse(given.output.substr(given.output.find('{')))["count"] == 30);

  const auto missing =
      cli_with_data_env("/nonexistent/plinth-data", "eval --device cpu --checkpoint " + checkpoint);
  CHECK(missing.status == 1);
  CHECK_THAT(missing.output,
             Catch::Contains("PLINTH_DATA=/nonexistent/plinth-data: no such directory"));
}

TEST_CASE("cli data: a PLINTH_DATA that is no directory is one line naming it", "[cli][data]") {
  const std::string missing = "/nonexistent/plinth-data";
  for (const std::string& args :
       {"train --device cpu --max-steps 1", "bench --device cpu --batch-sizes 8 --repeats 1"}) {
    const auto r = cli_with_data_env(missing, args);
    INFO(args << "\n" << r.output);
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Catch::Contains("PLINTH_DATA=" + missing + ": no such directory"));
  }
}

TEST_CASE("cli data: info and bench --modes none read no data set", "[cli][data]") {
  const std::string missing = "/nonexistent/plinth-data";
  const auto info = cli_with_data_env(missing, "info");
  INFO(info.output);
  CHECK(info.status == 0);
  const auto gemm = cli_with_data_env(
      missing, "bench --device cpu --threads 1 --modes none --gemm 64 --repeats 1");
  INFO(gemm.output);
  CHECK(gemm.status == 0);
  CHECK_THAT(gemm.output, Catch::Contains("cpu fp32 GEMM 64x64x64:"));
  const auto bad = cli_with_data_env("", "bench --device cpu --modes none,train --gemm 64");
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output,
             Catch::Contains("--modes: expected train and/or infer, or none, got 'none'"));
}
