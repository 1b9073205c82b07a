// The executor's slices: a batch larger than the backend's slice runs slice by slice, each
// through every layer (forward, loss and backward) while its activations are in the caches.
// Its outputs, loss and parameter gradients are the whole batch's to fp32 rounding; the batch
// stays whole where it cannot be cut.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "engine/parameters.h"
#include "tests/engine_fixtures.h"

namespace plinth {
namespace {

// A small seed-CNN-like network (convolution + pool fused, flatten, dense), optionally with
// dropout, a BatchNorm or the flatten first (a view of the input).
Model network(const std::string& variant = "") {
  nlohmann::json layers = nlohmann::json::array();
  if (variant == "flatten first") {
    layers.push_back({{"type", "flatten"}, {"name", "flatten"}});
    layers.push_back({{"type", "dense"}, {"name", "fc1"}, {"units", 9}, {"activation", "relu"}});
  } else {
    layers.push_back({{"type", "conv2d"},
                      {"name", "conv1"},
                      {"filters", 8},
                      {"kernel", 3},
                      {"activation", "relu"}});
    if (variant == "batchnorm")
      layers.push_back({{"type", "batchnorm2d"}, {"name", "bn"}, {"activation", "relu"}});
    layers.push_back({{"type", "maxpool2d"}, {"name", "pool1"}, {"size", 2}});
    layers.push_back({{"type", "flatten"}, {"name", "flatten"}});
  }
  if (variant == "dropout")
    layers.push_back({{"type", "dropout"}, {"name", "drop"}, {"rate", 0.5}});
  layers.push_back({{"type", "dense"}, {"name", "fc"}, {"units", 5}, {"activation", "softmax"}});
  return parse_model({{"name", "slices " + variant},
                      {"input", {1, 28, 28}},
                      {"layers", layers},
                      {"loss", "categorical_crossentropy"}},
                     "slices test");
}

double max_relative_error(const std::vector<float>& got, const std::vector<float>& expected) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(got[i]) - expected[i]));
    scale = std::max(scale, std::abs(static_cast<double>(expected[i])));
  }
  return diff / std::max(scale, 1e-30);
}

struct Pass {
  std::vector<float> output, probs, grads, stats;
  int slices = 0;
  std::vector<int> slices_done;  // the samples on_slice_done was told of, in order
};

// One batch through an executor of the given slice: inference (output and probabilities) or
// a training step's gradients, of the first `valid` rows. With toggle_threads the thread
// count alternates between 1 and 2 after each slice, as the thread governor may change it.
Pass run(const Model& m, int batch, int slice, bool training, int valid, uint64_t seed = 0,
         bool toggle_threads = false) {
  auto be = make_cpu_backend(2);
  Parameters p(m, *be);
  p.initialize(3);
  Executor exec(m, p, *be, batch, training, {}, seed, slice);
  Pass r;
  exec.on_slice_done([&](int samples) {
    r.slices_done.push_back(samples);
    if (toggle_threads) be->use_threads(r.slices_done.size() % 2 ? 1 : 2);
  });
  std::vector<float> input(exec.input().numel());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : input) v = u(rng);
  be->upload(exec.input().data, input.data(), input.size() * sizeof(float));
  std::vector<int32_t> labels(batch);
  for (int i = 0; i < batch; ++i) labels[i] = (i * 3) % 5;
  be->upload(exec.labels(), labels.data(), labels.size() * sizeof(int32_t));
  r.slices = exec.slices();
  if (training) {
    p.upload(p.grads(), std::vector<float>(p.size(), 7.0f));  // overwritten
    exec.gradients(valid);
    r.grads = p.download(p.grads());
  } else {
    exec.forward(false);
    exec.loss(valid, false);
  }
  r.output.resize(exec.output().numel());
  be->download(r.output.data(), exec.output().data, r.output.size() * sizeof(float));
  r.probs.resize(exec.output().numel());
  be->download(r.probs.data(), exec.probabilities(), r.probs.size() * sizeof(float));
  r.stats.resize(kStatsSize);
  be->download(r.stats.data(), exec.stats(), kStatsSize * sizeof(float));
  return r;
}

void check_stats(const Pass& sliced, const Pass& whole) {
  CHECK(sliced.stats[kStatCount] == whole.stats[kStatCount]);
  CHECK(sliced.stats[kStatCorrect] == whole.stats[kStatCorrect]);
  CHECK(sliced.stats[kStatLossSum] == Approx(whole.stats[kStatLossSum]).epsilon(1e-5));
}

TEST_CASE("executor slices: training gradients are the whole batch's", "[engine][cpu]") {
  const Model m = network();
  for (const int valid : {24, 17}) {  // 17: the last two slices are padding or part padding
    CAPTURE(valid);
    const Pass whole = run(m, 24, 24, true, valid), sliced = run(m, 24, 8, true, valid);
    CHECK(whole.slices == 1);
    REQUIRE(sliced.slices == 3);
    CHECK(max_relative_error(sliced.grads, whole.grads) < 1e-5);
    CHECK(max_relative_error(sliced.output, whole.output) < 1e-5);
    check_stats(sliced, whole);
  }
}

TEST_CASE(
    "executor slices: each slice is reported, and a thread count changed between slices "
    "changes no bit",
    "[engine][cpu]") {
  const Model m = network("dropout");
  for (const bool training : {true, false}) {
    CAPTURE(training);
    const Pass fixed = run(m, 24, 8, training, 24, 9),
               toggled = run(m, 24, 8, training, 24, 9, true);
    CHECK(fixed.slices_done == std::vector<int>{8, 8, 8});
    CHECK(toggled.slices_done == fixed.slices_done);
    CHECK(toggled.grads == fixed.grads);
    CHECK(toggled.output == fixed.output);
    CHECK(toggled.stats == fixed.stats);
    CHECK(run(m, 24, 24, training, 24).slices_done == std::vector<int>{24});
  }
}

TEST_CASE("executor slices: inference outputs and probabilities are the whole batch's",
          "[engine][cpu]") {
  for (const std::string variant : {"", "batchnorm", "flatten first"}) {
    CAPTURE(variant);
    const Model m = network(variant);
    Pass whole = run(m, 32, 32, false, 30), sliced = run(m, 32, 16, false, 30);
    REQUIRE(sliced.slices == 2);
    // The loss writes the probabilities of the 30 valid rows.
    sliced.probs.resize(30 * 5);
    whole.probs.resize(30 * 5);
    CHECK(max_relative_error(sliced.output, whole.output) < 1e-5);
    CHECK(max_relative_error(sliced.probs, whole.probs) < 1e-5);
    check_stats(sliced, whole);
  }
}

TEST_CASE("executor slices: slices draw their own dropout masks", "[engine][cpu]") {
  // The same sample in every row: were the masks the same in each slice, so would the
  // slices' outputs be.
  const Model m = network("dropout");
  auto be = make_cpu_backend(2);
  Parameters p(m, *be);
  p.initialize(3);
  Executor exec(m, p, *be, 8, true, {}, 11, 4);
  std::vector<float> input(exec.input().numel(), 0.5f);
  be->upload(exec.input().data, input.data(), input.size() * sizeof(float));
  std::vector<std::vector<float>> outputs;
  for (int s = 0; s < 2; ++s) {
    exec.forward_slice(s, true);
    std::vector<float> out(exec.node_output(exec.node_count() - 1).numel());
    be->download(out.data(), exec.node_output(exec.node_count() - 1).data,
                 out.size() * sizeof(float));
    outputs.push_back(out);
  }
  CHECK(outputs[0] != outputs[1]);
}

TEST_CASE("executor slices: chosen from the backend's slice bytes, where the batch can be cut",
          "[engine][cpu]") {
  auto be = make_cpu_backend(2);
  const Model cnn = test::seed_cnn();
  Parameters p(cnn, *be);
  auto slice_of = [&](const Model& m, Parameters& params, int batch, bool training) {
    return Executor(m, params, *be, batch, training).slice();
  };
  // The seed CNN: about 0.3 MB per training sample and 0.17 MB per inference sample against
  // 12 MB.
  CHECK(slice_of(cnn, p, 32, true) == 32);
  CHECK(slice_of(cnn, p, 256, true) == 32);
  CHECK(slice_of(cnn, p, 64, true) == 32);
  CHECK(slice_of(cnn, p, 256, false) == 64);
  CHECK(slice_of(cnn, p, 97, true) == 97);  // a prime: no cut of 16 or more
  // A sliced training arena holds one slice's activations: far less than the batch's.
  const size_t sliced = Executor(cnn, p, *be, 1024, true).arena_bytes();
  const size_t whole = Executor(cnn, p, *be, 1024, true, {}, 0, 1024).arena_bytes();
  CHECK(sliced * 4 < whole);
  // A BatchNorm trains on whole batches, and infers in slices.
  const Model bn = network("batchnorm");
  Parameters pb(bn, *be);
  CHECK(Executor(bn, pb, *be, 1024, true).slices() == 1);
  CHECK(Executor(bn, pb, *be, 1024, false).slices() > 1);
  const Model flat = network("flatten first");
  Parameters pf(flat, *be);
  CHECK(Executor(flat, pf, *be, 8192, true).slices() > 1);
  // Asked for, an impossible slice is refused with the reason.
  CHECK_THROWS_WITH(Executor(bn, pb, *be, 64, true, {}, 0, 32),
                    Catch::Contains("layer 'bn' mixes the batch's samples in training"));
  CHECK_THROWS_WITH(Executor(cnn, p, *be, 64, true, {}, 0, 24),
                    Catch::Contains("24 samples do not divide a batch of 64"));
  // The passes one by one need the whole batch.
  Executor sliced_exec(cnn, p, *be, 64, true, {}, 0, 32);
  CHECK_THROWS_WITH(sliced_exec.forward(true), Catch::Contains("runs in gradients()"));
  CHECK_THROWS_WITH(sliced_exec.backward(), Catch::Contains("runs in gradients()"));
}

}  // namespace
}  // namespace plinth
