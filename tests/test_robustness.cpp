// Hostile and broken inputs through the real CLI: each must end in status 1 and a single
// "plinth: error: " line naming the file and the problem, never a crash, a sanitizer
// report or an "internal error". Also NaN handling, gradient clipping and out-of-memory.
#include <catch2/catch.hpp>

#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

#include "datasets/cifar.h"
#include "datasets/idx.h"
#include "datasets/image.h"
#include "datasets/packed.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "fuzz/cli_numbers_check.h"
#include "fuzz/geometry_check.h"
#include "robustness_fixtures.h"

using namespace plinth;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

using test::expect_clean_error;
using test::slurp;
using test::spit;

void gzip_file(const std::string& from, const std::string& to) {
  const std::string bytes = slurp(from);
  gzFile out = gzopen(to.c_str(), "wb");
  REQUIRE(out);
  REQUIRE(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  REQUIRE(gzclose(out) == Z_OK);
}

using test::error_lines;
using test::idx_header;
using test::rewrite_metadata;
using test::SmallData;

}  // namespace

// ---- data files -------------------------------------------------------------------------

TEST_CASE("robustness data: a truncated train-images .gz is one clear error",
          "[robustness][data]") {
  REQUIRE_FASHION();
  const SmallData d("rob-trunc-gz");
  const std::string gz = d.images() + ".gz";
  gzip_file(d.images(), gz);
  fs::remove(d.images());  // the raw file would be preferred
  const std::string bytes = slurp(gz);
  spit(gz, bytes.substr(0, bytes.size() / 2));
  expect_clean_error(test::run_cli(d.args()), gz, "truncated");
}

TEST_CASE("robustness data: a gzip file with a corrupt CRC is one clear error",
          "[robustness][data]") {
  REQUIRE_FASHION();
  const SmallData d("rob-crc");
  const std::string gz = d.labels() + ".gz";
  gzip_file(d.labels(), gz);
  fs::remove(d.labels());
  std::string bytes = slurp(gz);
  bytes[bytes.size() - 8] ^= 0x5a;  // the trailer: CRC-32, then the length
  spit(gz, bytes);
  expect_clean_error(test::run_cli(d.args()), gz, "corrupt gzip data (incorrect data check)");
}

TEST_CASE("robustness data: an IDX header that claims more images than the file holds",
          "[robustness][data]") {
  REQUIRE_FASHION();
  const SmallData d("rob-lying-header");
  const std::string bytes = slurp(d.images());
  spit(d.images(), idx_header({100000, 28, 28}) + bytes.substr(16));
  expect_clean_error(test::run_cli(d.args()), d.images(),
                     "truncated: header promises 78400000 bytes of data, file holds 470400");
  // Far more than memory: refused from the header alone, before any allocation.
  spit(d.images(), idx_header({2000000000, 28, 28}) + bytes.substr(16));
  expect_clean_error(test::run_cli(d.args()), d.images(), "more than the limit of 2147483647");
}

TEST_CASE("robustness data: a label file with fewer labels than images", "[robustness][data]") {
  REQUIRE_FASHION();
  const SmallData d("rob-labels");
  const std::string bytes = slurp(d.labels());
  spit(d.labels(), idx_header({599}) + bytes.substr(8, 599));
  expect_clean_error(test::run_cli(d.args()), d.labels(),
                     "599 labels, but " + d.images() + " holds 600 images");
}

// ---- model files ------------------------------------------------------------------------

TEST_CASE("robustness model: malformed model files are one clear error naming the field",
          "[robustness][model]") {
  REQUIRE_FASHION();
  const SmallData d("rob-model");
  const std::string bad = d.dir + "/bad.json";
  auto train_with = [&](const std::string& text) {
    spit(bad, text);
    return test::run_cli(
        fmt::format("train --device cpu --data {} --model {} --epochs 1 --quiet", d.dir, bad));
  };
  expect_clean_error(train_with(R"({"name": "cut", "input": [1, 28)"), bad, "not valid JSON");
  expect_clean_error(
      train_with(
          R"({"input": [1, 28, 28], "layers": [{"type": "conv2d", "filters": -3, "kernel": 3}]})"),
      bad + ".layers[0].filters", "expected an integer >= 1");
  expect_clean_error(
      train_with(R"({"input": [1, 28, 28],)"
                 R"( "layers": [{"type": "dense", "units": 10, "activation": "softmax"}]})"),
      bad + ": layer layer1", "dense needs an [N, features] input (add a flatten layer)");
  expect_clean_error(train_with(R"({"input": [3, 32, 32], "layers": [{"type": "flatten"},
                                   {"type": "dense", "units": 10, "activation": "softmax"}]})"),
                     "takes 3x32x32 inputs", "the data has 1x28x28");
}

TEST_CASE("robustness memory: a model too large for memory is one clear error, not a crash",
          "[robustness][model]") {
  REQUIRE_FASHION();
  const SmallData d("rob-oom");
  const std::string huge = d.dir + "/huge.json";
  // 2^24 x 2^24 weights: 1 PiB of floats.
  spit(huge, R"({"input": [1, 4096, 4096], "layers": [{"type": "flatten"},
                 {"type": "dense", "units": 16777216, "activation": "softmax"}]})");
  // Under AddressSanitizer (the debug preset) an impossible allocation aborts unless the
  // allocator may return null; the CLI must meet the ordinary behaviour.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string saved = asan ? asan : "";
  ::setenv("ASAN_OPTIONS",
           (saved + (saved.empty() ? "" : ":") + "allocator_may_return_null=1").c_str(), 1);
  const auto r = test::run_cli(
      fmt::format("train --device cpu --data {} --model {} --epochs 1 --quiet", d.dir, huge));
  if (asan)
    ::setenv("ASAN_OPTIONS", saved.c_str(), 1);
  else
    ::unsetenv("ASAN_OPTIONS");
  expect_clean_error(r, "for its parameters (values, gradients, optimizer moments), needs 4.0 PiB",
                     "is available on cpu");
}

// ---- command-line values ----------------------------------------------------------------

TEST_CASE("robustness cli: out-of-range batch sizes are clear errors, not allocation crashes",
          "[robustness][cli]") {
  REQUIRE_FASHION();
  const SmallData d("rob-batch");
  expect_clean_error(test::run_cli(d.args("--batch-size 0")), "--batch-size",
                     "expects an integer from 1 to 2147483647, got 0");
  expect_clean_error(test::run_cli(d.args("--batch-size -5")), "--batch-size",
                     "expects an integer from 1 to 2147483647, got -5");
  expect_clean_error(test::run_cli(d.args("--batch-size 1000000000")),
                     "the training set has 540 samples", "fewer than one batch of 1000000000");
  expect_clean_error(test::run_cli(d.args("--batch-size 10000000000")), "--batch-size",
                     "expects an integer from 1 to 2147483647, got 10000000000");
  expect_clean_error(test::run_cli(d.args("--batch-size 32x")), "--batch-size",
                     "expects an integer from 1 to 2147483647, got '32x'");
}

// A model file must have lr > 0 (parse_optimizer); the command line must not get around it.
TEST_CASE(
    "robustness cli: a non-positive or non-finite --lr and a negative --clip-norm are refused",
    "[robustness][cli]") {
  REQUIRE_FASHION();
  const SmallData d("rob-lr");
  for (const char* lr : {"-1", "0", "nan", "inf"}) {
    CAPTURE(lr);
    expect_clean_error(test::run_cli(d.args(fmt::format("--lr {}", lr))), "--lr", "");
  }
  for (const char* clip : {"-1", "nan"}) {
    CAPTURE(clip);
    expect_clean_error(test::run_cli(d.args(fmt::format("--clip-norm {}", clip))), "--clip-norm",
                       "");
  }
}

// ---- checkpoints ------------------------------------------------------------------------

TEST_CASE("robustness checkpoint: hostile checkpoints for --resume and eval are one clear error",
          "[robustness][checkpoint]") {
  REQUIRE_FASHION();
  const SmallData d("rob-ckpt");
  const std::string good = d.dir + "/good.safetensors", other = d.dir + "/other.safetensors";
  const auto saved = test::run_cli(d.args("--save " + good));
  INFO(saved.output);
  REQUIRE(saved.status == 0);
  REQUIRE(test::run_cli(d.args("--max-steps 3 --save " + other)).status == 0);
  const std::string bytes = slurp(good), optim = slurp(optimizer_state_path(good));
  const std::string ckpt = d.dir + "/c.safetensors";
  auto resume = [&](const std::string& weights, const std::string& optimizer_state) {
    spit(ckpt, weights);
    fs::remove(optimizer_state_path(ckpt));
    if (!optimizer_state.empty()) spit(optimizer_state_path(ckpt), optimizer_state);
    return test::run_cli(d.args("--epochs 2 --resume " + ckpt));
  };
  REQUIRE(resume(bytes, optim).status == 0);  // the unchanged pair resumes

  INFO("truncated");
  expect_clean_error(resume(bytes.substr(0, bytes.size() - 100), optim), ckpt, "safetensors: ");
  expect_clean_error(test::run_cli("eval --device cpu --data " + d.dir + " --checkpoint " + ckpt),
                     ckpt, "safetensors: ");
  INFO("a corrupt header");
  std::string corrupt = bytes;
  corrupt[8] = '[';  // the header's opening brace
  expect_clean_error(resume(corrupt, optim), ckpt, "safetensors: ");
  INFO("a safetensors file that is not a plinth checkpoint");
  const float w = 1;
  expect_clean_error(
      resume(encode_safetensors({NamedTensorData::f32("fc1.weight", {1}, {&w, 1})}), optim), ckpt,
      "not a plinth checkpoint (metadata has no 'model')");
  INFO("a missing optimizer state file");
  expect_clean_error(resume(bytes, ""), optimizer_state_path(ckpt), "cannot open");
  INFO("a run's first save killed after its weights: the state still pending, and no older one");
  spit(optimizer_state_path(ckpt) + ".pending", optim);
  REQUIRE(resume(bytes, "").status == 0);
  fs::remove(optimizer_state_path(ckpt) + ".pending");
  INFO("optimizer state from another save");
  expect_clean_error(resume(bytes, slurp(optimizer_state_path(other))), optimizer_state_path(ckpt),
                     "optimizer state does not belong to " + ckpt);
  INFO("malformed metadata values");
  spit(ckpt, bytes);
  rewrite_metadata(ckpt, {{"history", "[{\"epoch\": \"one\"}]"}});
  expect_clean_error(resume(slurp(ckpt), optim), ckpt, "malformed plinth metadata");
  // The data cursor indexes the epoch's sample order; a negative one must not reach it.
  INFO("a negative data cursor");
  spit(ckpt, bytes);
  rewrite_metadata(ckpt, {{"batch_in_epoch", "-40"}});
  expect_clean_error(resume(slurp(ckpt), optim), ckpt, "batch_in_epoch");
}

// ---- NaN and exploding gradients --------------------------------------------------------

namespace {

// SGD whose learning rate is multiplied by 1e36 after the first epoch: epoch 1 trains
// normally and is checkpointed, epoch 2 overflows within a few steps.
std::string exploding_cnn_file(const std::string& dir) {
  const std::string path = dir + "/exploding.json";
  spit(path, R"({"name": "exploding", "input": [1, 28, 28],
    "layers": [{"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "activation": "relu"},
               {"type": "maxpool2d", "name": "pool1", "size": 2},
               {"type": "flatten", "name": "flatten"},
               {"type": "dense", "name": "fc1", "units": 10, "activation": "softmax"}],
    "optimizer": {"type": "sgd", "lr": 0.01},
    "training": {"schedule": {"type": "step", "step_epochs": 1, "gamma": 1e36}}})");
  return path;
}

}  // namespace

TEST_CASE(
    "robustness nan: --on-nan stop names the step and a layer, exits 1 and keeps the earlier "
    "checkpoint",
    "[robustness][nan]") {
  REQUIRE_FASHION();
  const SmallData d("rob-nan-stop");
  const std::string model = exploding_cnn_file(d.dir), ckpt = d.dir + "/c.safetensors";
  const auto r = test::run_cli(
      fmt::format("train --device cpu --threads 2 --data {} --model {} --epochs 3 --seed 3 "
                  "--save-every 1 --save {}",
                  d.dir, model, ckpt));
  expect_clean_error(r, "non-finite loss or gradient at step ", "--on-nan skip-step");
  const std::vector<std::string> errors = error_lines(r.output);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(
      errors[0],
      Catch::Matches(R"(.* at step (1[7-9]|2[0-9]|3[0-2]) \(epoch 2, batch [0-9]+\), first in the )"
                     R"((output of layer '[a-z0-9]+'|gradient of [a-z0-9.]+);.*)"));
  CHECK_THAT(r.output, Contains("Epoch 2/3") && !Contains("Epoch 3/3"));
  const CheckpointMeta meta = read_checkpoint_meta(ckpt);
  CHECK(meta.state.epoch == 1);
  CHECK(meta.state.step == 16);
  for (const auto& [name, values] : test::checkpoint_weights(ckpt))
    for (float v : values) REQUIRE(std::isfinite(v));
  const auto eval = test::run_cli("eval --device cpu --data " + d.dir + " --checkpoint " + ckpt);
  INFO(eval.output);
  CHECK(eval.status == 0);
}

TEST_CASE("robustness nan: --on-nan skip-step warns about each skipped step and finishes the run",
          "[robustness][nan]") {
  REQUIRE_FASHION();
  const SmallData d("rob-nan-skip");
  const std::string model = exploding_cnn_file(d.dir);
  const auto r = test::run_cli(
      fmt::format("train --device cpu --threads 2 --data {} --model {} --epochs 3 --seed 3 "
                  "--on-nan skip-step",
                  d.dir, model));
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("warning: skipped step (epoch ") &&
                           Contains("non-finite values, first in the "));
  CHECK_THAT(r.output, Contains("Epoch 3/3") && Contains("Test accuracy: "));
}

TEST_CASE(
    "robustness clip-norm: an exploding autoencoder overflows without clipping and trains with "
    "--clip-norm 1",
    "[robustness][nan]") {
  REQUIRE_FASHION();
  const SmallData d("rob-clip");
  // A linear autoencoder under MSE: the gradient grows with the weights, so a large SGD
  // step feeds on itself. Clipped, each step moves the weights by at most lr * 1.
  const std::string model = d.dir + "/linear_ae.json";
  spit(model, R"({"name": "linear_ae", "input": [1, 28, 28],
    "layers": [{"type": "flatten", "name": "flatten"},
               {"type": "dense", "name": "enc", "units": 32},
               {"type": "dense", "name": "dec", "units": 784}],
    "loss": "mse", "optimizer": {"type": "sgd", "lr": 10}})");
  const std::string args =
      fmt::format("train --device cpu --threads 2 --data {} --model {} --epochs 1 --seed 3 --quiet",
                  d.dir, model);
  expect_clean_error(test::run_cli(args), "non-finite loss or gradient", "epoch 1");
  const auto clipped = test::run_cli(args + " --clip-norm 1");
  INFO(clipped.output);
  REQUIRE(clipped.status == 0);
  std::smatch m;
  const std::string out = clipped.output;
  REQUIRE(std::regex_search(out, m, std::regex("test loss: ([0-9.e+-]+)")));
  CHECK(std::isfinite(std::stod(m[1].str())));
}

TEST_CASE("robustness cli: non-finite or absurd augmentation values are refused before training",
          "[robustness][cli]") {
  REQUIRE_FASHION();
  const SmallData d("rob-augment");
  // NaN would reach a float-to-int conversion in the bilinear sampler, and a NaN in the
  // saved model JSON (written as null) would make the checkpoint unresumable.
  expect_clean_error(test::run_cli(d.args("--augment shift=nan")), "--augment shift",
                     "expects a finite number, got 'nan'");
  expect_clean_error(test::run_cli(d.args("--augment rotate=1e30")), "--augment",
                     "rotate in [0, 360]");
}

// ---- fuzz inputs ------------------------------------------------------------------------

namespace {

// Feeds one input to the parser a fuzz target exercises, the way the target does.
void feed_idx(const std::string& path) {
  const IdxArray a = read_idx(path);
  size_t elements = 1;
  for (int d : a.dims) elements *= static_cast<size_t>(d);
  CHECK(elements == a.data.size());
}

void feed_idx_dataset(const std::string& path) {
  const std::string bytes = slurp(path);
  if (bytes.empty()) return;
  const std::string dir = test::temp_dir("fuzz-idx-dataset");
  const size_t rest = bytes.size() - 1, image_bytes = rest * static_cast<uint8_t>(bytes[0]) / 255;
  spit(dir + "/train-images-idx3-ubyte", bytes.substr(1, image_bytes));
  spit(dir + "/train-labels-idx1-ubyte", bytes.substr(1 + image_bytes));
  const Dataset d = load_idx_dataset(dir, Split::train);
  CHECK(d.images.size() == static_cast<size_t>(d.count) * static_cast<size_t>(d.image_size()));
  restrict_classes(d, {d.classes - 1, 0});
  labelled_fraction(d, 0.5, 7);
  dataset_stats(d.images);
  split_validation(d, 0.1);
}

void feed_model(const std::string& path) {
  const Model m = load_model(path);
  (void)m.parameter_count();
  const nlohmann::json saved = m.to_json();
  CHECK(parse_model(saved, "saved").to_json() == saved);
}

void feed_image(const std::string& path) { fit_image(read_image(path), 3, 5, 7); }

void feed_packed(const std::string& path) {
  const PackedFile packed(path);
  for (Split split : {Split::train, Split::val, Split::test})
    if (packed.count(split) > 0) channel_stats(packed.part(split));
}

void feed_cifar(const std::string& path) {
  const std::string dir = test::temp_dir("fuzz-cifar");
  spit(dir + "/data_batch_1.bin", slurp(path));
  CHECK(load_cifar10(dir, Split::train).count > 0);
}

void feed_checkpoint_meta(const std::string& path) {
  static const char* keys[] = {
      "model",         "config",          "epoch",   "step",          "batch_in_epoch",
      "partial_stats", "partial_seconds", "history", "normalization", "tag"};
  const std::string input = slurp(path);
  std::map<std::string, std::string> metadata{{"format", "pt"}};
  size_t start = 0;
  for (const char* key : keys) {
    if (start > input.size()) break;
    const size_t end = std::min(input.find('\0', start), input.size());
    metadata[key] = input.substr(start, end - start);
    start = end + 1;
  }
  const float w = 1;
  const std::string file = test::temp_dir("fuzz-checkpoint") + "/c.safetensors";
  save_safetensors(file, {NamedTensorData::f32("fc.weight", {1}, {&w, 1})}, metadata);
  const CheckpointMeta meta = read_checkpoint_meta(file);
  (void)parse_model(meta.model, "checkpoint:model");
}

}  // namespace

// Every seed of the fuzz corpora and every input that once broke a parser must parse or
// be refused with plinth::Error; in the sanitizer build this also catches undefined
// behaviour on them.
TEST_CASE("robustness fuzz inputs: every seed and regression input parses or is refused cleanly",
          "[robustness][fuzz]") {
  auto bytes_to = [](void (*check)(const uint8_t*, size_t)) {
    return [check](const std::string& p) {
      const std::string bytes = slurp(p);
      check(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    };
  };
  const std::map<std::string, std::function<void(const std::string&)>> feeders{
      {"safetensors", [](const std::string& p) { load_safetensors(p); }},
      {"idx", feed_idx},
      {"idx_dataset", feed_idx_dataset},
      {"model", feed_model},
      {"checkpoint_meta", feed_checkpoint_meta},
      {"image", feed_image},
      {"packed", feed_packed},
      {"cifar", feed_cifar},
      {"cli_numbers", bytes_to(fuzz::check_cli_numbers)},
      {"geometry", bytes_to(fuzz::check_geometry)}};
  int fed = 0;
  for (const char* folder : {"corpus", "regressions"}) {
    for (const auto& [target, feed] : feeders) {
      const fs::path dir = fs::path(PLINTH_SOURCE_DIR) / "fuzz" / folder / target;
      if (!fs::exists(dir)) continue;
      for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string path = entry.path().string();
        INFO(path);
        try {
          feed(path);
        } catch (const Error&) {
        }
        ++fed;
      }
    }
  }
  CHECK(fed >= 35);
}

TEST_CASE("robustness model: a sample of more than 2^31 - 1 values is refused, not wrapped",
          "[robustness][model]") {
  CHECK_THROWS_WITH(
      load_model(PLINTH_SOURCE_DIR "/fuzz/regressions/model/flatten_wraps_per_sample_size.json"),
      Contains("flatten_wraps_per_sample_size.json: layer layer1: more than 2^31 - 1 values per "
               "sample"));
}

TEST_CASE(
    "robustness checkpoint: history numbers that do not fit their type are malformed metadata",
    "[robustness][checkpoint]") {
  const std::string dir = test::temp_dir("rob-history");
  const float w = 1;
  auto with_history = [&](const std::string& history) {
    const nlohmann::json model = nlohmann::json::parse(slurp(PLINTH_SOURCE_DIR "/models/mlp.json"));
    save_safetensors(dir + "/c.safetensors", {NamedTensorData::f32("fc.weight", {1}, {&w, 1})},
                     {{"model", model.dump()},
                      {"config", "{}"},
                      {"epoch", "1"},
                      {"step", "2"},
                      {"batch_in_epoch", "0"},
                      {"partial_stats", "[0,0,0,0]"},
                      {"partial_seconds", "0"},
                      {"history", history},
                      {"normalization", R"({"mean": 0, "std": 1})"},
                      {"tag", "2:1:0"}});
    return dir + "/c.safetensors";
  };
  const std::string record =
      R"("loss": 1, "accuracy": 1, "val_loss": 1, "val_accuracy": 1, "lr": 1, "seconds": 1,
                                 "samples_per_second": 1)";
  CHECK(read_checkpoint_meta(with_history("[{\"epoch\": 1, \"steps\": 16, " + record + "}]"))
            .state.history.size() == 1);
  CHECK_THROWS_WITH(
      read_checkpoint_meta(with_history("[{\"epoch\": 1e300, \"steps\": 16, " + record + "}]")),
      Contains("c.safetensors: malformed plinth metadata"));
  CHECK_THROWS_WITH(
      read_checkpoint_meta(with_history("[{\"epoch\": 1, \"steps\": -1e300, " + record + "}]")),
      Contains("c.safetensors: malformed plinth metadata"));
}
