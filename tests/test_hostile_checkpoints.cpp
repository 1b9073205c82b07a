// Checkpoints that lie, round two: every metadata number is checked on load with the
// field named, optimizer state is tied to its weights by the run and a digest of the
// weights, and eval uses what the checkpoint was trained for.
#include <catch2/catch.hpp>

#include <filesystem>

#include "engine/checkpoint.h"
#include "robustness_fixtures.h"

using namespace plinth;
using namespace plinth::test;
using Catch::Contains;
namespace fs = std::filesystem;

TEST_CASE("hostile checkpoints: every metadata number is checked, the field named",
          "[robustness][hostile][checkpoint]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-meta");
  const std::string ckpt = d.dir + "/c.safetensors";
  REQUIRE(run_cli(d.args("--max-steps 5 --save " + ckpt)).status == 0);
  const std::string bytes = slurp(ckpt);
  const std::string field_prefix = ckpt + ": malformed plinth metadata: ";
  // Each was accepted: step INT64_MAX made --max-steps ignored and the next checkpoint's
  // step negative, NaN seconds were saved as null, std <= 0 divided inputs by nothing,
  // and std::stoi read " 1abc" and "1e9" as 1.
  const std::vector<std::tuple<std::string, std::string, std::string>> cases{
      {"step", "9223372036854775807", "expects an integer from 0 to 1125899906842624"},
      {"step", "1e9", "expects an integer from 0 to 1125899906842624, got '1e9'"},
      {"epoch", " 1abc", "expects an integer from 0 to 1073741824, got ' 1abc'"},
      {"epoch", "1e9", "got '1e9'"},
      {"batch_in_epoch", "-40", "got -40"},
      {"partial_seconds", "nan", "expects a finite number from 0 to 1e+300, got 'nan'"},
      {"partial_seconds", "-1", "got '-1'"},
      {"partial_stats", "[0, 0, -1, 0]", "'partial_stats'[2]: expected a number from 0"},
      {"partial_stats", "[0, 0]", "'partial_stats': expected 4 numbers"},
      {"normalization", R"({"mean": 0, "std": 0})", "'normalization.std': expected a number from"},
      {"normalization", R"({"mean": 0, "std": -1})", "'normalization.std'"},
      {"normalization", R"({"mean": 1e30, "std": 1})", "'normalization.mean'"},
      {"history", R"([{"epoch": 1}])", "'history'[0]: missing 'loss'"},
      {"history", R"([{"epoch": 1, "steps": 16, "loss": 1, "accuracy": 7, "val_loss": 1,
                      "val_accuracy": 1, "lr": 1, "seconds": 1, "samples_per_second": 1}])",
       "'history'[0].accuracy: expected a number from 0 to 1, got '7'"},
      {"config", "[1, 2]", "'config': expected a JSON object"},
  };
  for (const auto& [field, value, problem] : cases) {
    CAPTURE(field, value);
    spit(ckpt, bytes);
    rewrite_metadata(ckpt, {{field, value}});
    expect_clean_error(run_cli(d.args("--epochs 2 --resume " + ckpt)), field_prefix, problem);
    CHECK_THROWS_WITH(read_checkpoint_meta(ckpt), Contains(field_prefix) && Contains(problem));
  }
}

TEST_CASE("hostile checkpoints: another run's optimizer state at the same step is refused",
          "[robustness][hostile][checkpoint]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-optim");
  const std::string a = d.dir + "/a.safetensors", b = d.dir + "/b.safetensors";
  // Two runs, same step, epoch and batch (the old tag), different weights.
  REQUIRE(run_cli(d.args("--max-steps 5 --save " + a)).status == 0);
  REQUIRE(run_cli(d.args("--max-steps 5 --seed 4 --save " + b)).status == 0);
  REQUIRE(read_checkpoint_meta(a).state.step == read_checkpoint_meta(b).state.step);
  const std::string a_optim = slurp(optimizer_state_path(a));
  fs::copy_file(optimizer_state_path(b), optimizer_state_path(a),
                fs::copy_options::overwrite_existing);
  expect_clean_error(run_cli(d.args("--epochs 2 --resume " + a)), optimizer_state_path(a),
                     "optimizer state does not belong to " + a);
  // The same run's own pair resumes; weights changed behind the tag's back do not.
  spit(optimizer_state_path(a), a_optim);
  const CommandResult resumed = run_cli(d.args("--epochs 2 --resume " + a));
  INFO(resumed.output);
  CHECK(resumed.status == 0);
  const SafetensorsFile f = load_safetensors(a);
  std::vector<NamedTensorData> tensors;
  for (const std::string& name : f.names()) {
    std::vector<float> values = f.float_tensor(name);
    values[0] += 1;
    tensors.push_back(NamedTensorData::f32(name, f.tensor(name).shape, values));
  }
  save_safetensors(a, tensors, f.metadata());
  expect_clean_error(run_cli(d.args("--epochs 3 --resume " + a)), a,
                     "its weights are not those its optimizer state was saved with");
}

TEST_CASE("hostile checkpoints: eval uses the classes the checkpoint was trained on",
          "[robustness][hostile][checkpoint]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-eval-classes");
  const std::string model = d.dir + "/five.json";
  spit(model, R"({"name": "five", "input": [1, 28, 28],
    "layers": [{"type": "flatten"}, {"type": "dense", "units": 5, "activation": "softmax"}]})");
  const std::string ckpt = d.dir + "/c.safetensors";
  const CommandResult trained =
      run_cli(fmt::format("train --device cpu --data {} --model {} --epochs 3 --classes 5,6,7,8,9 "
                          "--quiet --save {}",
                          d.dir, model, ckpt));
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  // The test images of classes 5-9, relabelled 0-4 as in training: eval used all 200
  // images under their own labels (8.86% on the real test set instead of 92.46%).
  const Dataset test = restrict_classes(load_idx_dataset(d.dir, Split::test), {5, 6, 7, 8, 9});
  const CommandResult r =
      run_cli("eval --device cpu --json --data " + d.dir + " --checkpoint " + ckpt);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  CHECK(j["count"] == test.count);
  CHECK(j["accuracy"].get<double>() > 0.6);
  CHECK(j["confusion"].size() == 5);
  expect_clean_error(
      run_cli("eval --device cpu --data " + d.dir + " --checkpoint " + ckpt + " --classes 0,1,2"),
      "--classes '0,1,2' differs from the classes " + ckpt + " was trained on (5,6,7,8,9)", "");
}

TEST_CASE("hostile checkpoints: eval of an autoencoder reports its reconstruction loss",
          "[robustness][hostile][checkpoint]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-eval-ae");
  const std::string model = d.dir + "/ae.json";
  spit(model, R"({"name": "ae", "input": [1, 28, 28], "loss": "mse",
    "layers": [{"type": "flatten"}, {"type": "dense", "units": 16, "activation": "relu"},
               {"type": "dense", "units": 784, "activation": "sigmoid"}]})");
  const std::string ckpt = d.dir + "/ae.safetensors";
  REQUIRE(run_cli(fmt::format("train --device cpu --data {} --model {} --epochs 1 --quiet "
                              "--save {}",
                              d.dir, model, ckpt))
              .status == 0);
  const std::string eval = "eval --device cpu --data " + d.dir + " --checkpoint " + ckpt;
  const CommandResult text = run_cli(eval);
  INFO(text.output);
  REQUIRE(text.status == 0);
  CHECK_THAT(text.output, Contains("test reconstruction loss (mse): ") &&
                              Contains("(200 images)") && !Contains("accuracy") &&
                              !Contains("confusion"));
  const CommandResult json = run_cli(eval + " --json");
  REQUIRE(json.status == 0);
  const auto j = nlohmann::json::parse(json.output.substr(json.output.find('{')));
  CHECK(j["loss_name"] == "mse");
  CHECK(j["count"] == 200);
  CHECK(j["loss"].get<double>() > 0);
  CHECK_FALSE(j.contains("accuracy"));
  CHECK_FALSE(j.contains("confusion"));
}
