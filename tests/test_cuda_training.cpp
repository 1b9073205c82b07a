// Whole training steps on the GPU: the seed CNN trained on CUDA and on the CPU from the
// same weights, CUDA graphs against eager steps, a streamed training set, evaluation
// replayed, and the cuDNN algorithm fallback. Where no GPU is usable each test warns
// "SKIPPED: <reason>" and returns, which CTest reports as skipped, never as passed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/device_dataset.h"
#include "engine/error.h"
#include "engine/parameters.h"
#include "engine/trainer.h"
#include "tests/engine_fixtures.h"
#include "tests/op_harness.h"

namespace plinth {
namespace {

constexpr int kBatch = 32;

// Random 28x28 images and labels: the comparisons need no data set.
Dataset synthetic(int count, uint64_t seed) {
  Dataset d;
  d.name = "synthetic";
  d.count = count;
  d.channels = 1;
  d.height = d.width = 28;
  d.classes = 10;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  d.images.resize(static_cast<size_t>(count) * 784);
  for (uint8_t& p : d.images) p = static_cast<uint8_t>(rng() % 256);
  d.labels.resize(count);
  for (int32_t& l : d.labels) l = static_cast<int32_t>(rng() % 10);
  return d;
}

// The running loss after every step.
struct Losses : TrainHook {
  std::vector<double> seen;
  void on_batch_end(const BatchEnd& b) override { seen.push_back(b.metrics().loss); }
};

struct Trained {
  std::vector<float> weights;
  std::vector<double> losses;
  GraphUse graph;
};

// data_memory below the data's pixels streams it from the host (engine/device_dataset.h).
Trained train(Backend& backend, const Model& model, const Dataset& data, int steps,
              bool cuda_graphs, int64_t data_memory = int64_t{1} << 30) {
  Parameters p(model, backend);
  p.initialize(7);
  TrainOptions o;
  o.epochs = 1;
  o.batch_size = kBatch;
  o.max_steps = steps;
  o.cuda_graphs = cuda_graphs;
  o.data_memory = data_memory;
  Trainer t(model, backend, p, o);
  Losses losses;
  t.fit(data, Dataset{}, {}, {&losses});
  return {p.download(p.values()), losses.seen, t.training_graph()};
}

// The largest difference of each parameter tensor, relative to its largest value.
double worst_relative(const Parameters& layout, const std::vector<float>& tested,
                      const std::vector<float>& reference) {
  double worst = 0;
  for (const ParamEntry& e : layout.entries()) {
    double diff = 0, scale = 1e-12;
    for (size_t i = e.offset; i < e.offset + e.shape.numel(); ++i) {
      diff = std::max(diff, std::abs(static_cast<double>(tested[i]) - reference[i]));
      scale = std::max(scale, std::abs(static_cast<double>(reference[i])));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

Model seed_cnn_with(const nlohmann::json& optimizer) {
  nlohmann::json j = test::seed_cnn().to_json();
  j["optimizer"] = optimizer;
  return parse_model(j, "seed_cnn");
}

TEST_CASE("cuda training: the seed CNN's steps on CUDA match the CPU's from the same weights",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const Dataset data = synthetic(40 * kBatch, 1);
  auto cpu = make_cpu_backend(0);
  auto gpu = make_cuda_backend({.deterministic = true});
  SECTION("sgd with momentum: every weight within fp32 rounding of the CPU's") {
    // Differences in the gradients' summation order move SGD's weights by lr times
    // themselves: they stay at the gradients' relative error (kFp32Conv).
    const Model m = seed_cnn_with({{"type", "sgd"}, {"lr", 0.01}, {"momentum", 0.9}});
    const int steps = 30;
    const Trained on_cpu = train(*cpu, m, data, steps, false);
    const Trained on_gpu = train(*gpu, m, data, steps, true);
    REQUIRE(on_gpu.losses.size() == on_cpu.losses.size());
    for (size_t s = 0; s < on_cpu.losses.size(); ++s) {
      INFO("step " << s + 1);
      CHECK(on_gpu.losses[s] == Approx(on_cpu.losses[s]).epsilon(1e-4));
    }
    Parameters layout(m, *cpu);
    CHECK(worst_relative(layout, on_gpu.weights, on_cpu.weights) < test::kFp32Conv);
  }
  SECTION("adam, the seed recipe: losses within fp32 rounding, weights but for a few") {
    // Adam divides by the root of the squared gradients: where a gradient is near zero and
    // the two devices round it to opposite signs, that weight's step flips. Such weights
    // are few, and no step moves a weight by more than about lr.
    const Model m = test::seed_cnn();
    const int steps = 10;
    const Trained on_cpu = train(*cpu, m, data, steps, false);
    const Trained on_gpu = train(*gpu, m, data, steps, true);
    REQUIRE(on_gpu.losses.size() == on_cpu.losses.size());
    for (size_t s = 0; s < on_cpu.losses.size(); ++s) {
      INFO("step " << s + 1);
      CHECK(on_gpu.losses[s] == Approx(on_cpu.losses[s]).epsilon(1e-4));
    }
    const double lr = m.optimizer.lr;
    size_t far = 0;
    double worst = 0;
    for (size_t i = 0; i < on_cpu.weights.size(); ++i) {
      const double d = std::abs(static_cast<double>(on_gpu.weights[i]) - on_cpu.weights[i]);
      worst = std::max(worst, d);
      if (d > 1e-5) ++far;
    }
    INFO(far << " of " << on_cpu.weights.size() << " weights differ by more than 1e-5");
    CHECK(far <= on_cpu.weights.size() / 1000);
    CHECK(worst <= 2 * steps * lr);
  }
}

// TF32 and BF16 round the operands of convolutions and GEMMs (about 5e-4 and 4e-3
// relative): the loss of each step stays that close to fp32's over a few SGD steps.
TEST_CASE("cuda precision: TF32 and BF16 training steps stay near fp32's", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const Dataset data = synthetic(20 * kBatch, 4);
  const Model m = seed_cnn_with({{"type", "sgd"}, {"lr", 0.01}, {"momentum", 0.9}});
  auto fp32 = make_cuda_backend({});
  const Trained reference = train(*fp32, m, data, 20, true);
  for (const Precision precision : {Precision::tf32, Precision::bf16}) {
    INFO(precision_name(precision));
    auto gpu = make_cuda_backend({.precision = precision});
    const Trained got = train(*gpu, m, data, 20, true);
    REQUIRE(got.losses.size() == reference.losses.size());
    const double tolerance = precision == Precision::tf32 ? test::kTf32 : test::kBf16;
    for (size_t s = 0; s < got.losses.size(); ++s)
      CHECK(got.losses[s] == Approx(reference.losses[s]).epsilon(tolerance));
    CHECK(got.graph.replays > 0);
  }
}

TEST_CASE("cuda graphs: steps replayed from a CUDA graph train as eager steps do", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const Dataset data = synthetic(40 * kBatch, 2);
  nlohmann::json j = test::seed_cnn().to_json();
  j["training"]["augment"] = {{"shift", 2}, {"rotate", 10}, {"horizontal_flip", true}};
  j["training"]["schedule"] = {{"type", "cosine"}};
  const Model m = parse_model(j, "seed_cnn augmented");
  for (const Precision precision : {Precision::fp32, Precision::tf32}) {
    INFO(precision_name(precision));
    auto gpu = make_cuda_backend({.precision = precision, .deterministic = true});
    const Trained eager = train(*gpu, m, data, 30, false);
    const Trained replayed = train(*gpu, m, data, 30, true);
    CHECK(eager.graph.replays == 0);
    CHECK(eager.graph.eager_reason == "CUDA graphs are off");
    CHECK(replayed.graph.eager_reason.empty());
    CHECK(replayed.graph.replays == 30 - Trainer::kEagerSteps);
    CHECK(replayed.graph.launches > 10);  // a whole step: forward, backward, optimizer
    INFO("bit-identical: " << (replayed.weights == eager.weights));
    Parameters layout(m, *gpu);
    CHECK(worst_relative(layout, replayed.weights, eager.weights) < test::kFp32);
    for (size_t s = 0; s < eager.losses.size(); ++s)
      CHECK(replayed.losses[s] == Approx(eager.losses[s]).epsilon(test::kFp32));
  }
}

// The host refills a device chunk of three batches; the steps cannot be replayed, so they
// run eagerly and must train as the resident set's eager steps do.
TEST_CASE("cuda data: a training set streamed from the host trains eagerly, as a resident one",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const Dataset data = synthetic(20 * kBatch, 6);
  const Model m = test::seed_cnn();
  auto gpu = make_cuda_backend({.deterministic = true});
  const Trained resident = train(*gpu, m, data, 12, false);
  const Trained streamed = train(*gpu, m, data, 12, true, 3 * kBatch * 784);
  CHECK(streamed.graph.replays == 0);
  CHECK(streamed.graph.eager == 12);
  CHECK(streamed.graph.eager_reason == DeviceDataset::kNotReplayable);
  INFO("bit-identical: " << (streamed.weights == resident.weights));
  Parameters layout(m, *gpu);
  CHECK(worst_relative(layout, streamed.weights, resident.weights) < test::kFp32);
  REQUIRE(streamed.losses.size() == resident.losses.size());
  for (size_t s = 0; s < resident.losses.size(); ++s)
    CHECK(streamed.losses[s] == Approx(resident.losses[s]).epsilon(test::kFp32));
}

TEST_CASE("cuda graphs: evaluation replayed from a CUDA graph gives the eager results", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const Model m = test::seed_cnn();
  const Dataset val = synthetic(6 * 500 + 77, 3);  // six whole batches and a partial one
  auto gpu = make_cuda_backend({.deterministic = true});
  Parameters p(m, *gpu);
  p.initialize(5);
  TrainOptions eager_options;
  eager_options.cuda_graphs = false;
  const EvalResult eager = Trainer(m, *gpu, p, eager_options).evaluate(val, true);
  Trainer t(m, *gpu, p, {});
  const EvalResult replayed = t.evaluate(val, true);
  CHECK(t.evaluation_graph().replays == 6 - Trainer::kEagerSteps);
  CHECK(replayed.loss == Approx(eager.loss).epsilon(test::kFp32));
  CHECK(replayed.accuracy == eager.accuracy);
  CHECK(replayed.confusion == eager.confusion);
}

// The endings of a run while its steps replay, on the GPU itself (the recording-backend
// tests prove the host's side on the CPU). A stop inside an epoch, as SIGINT makes, must
// resume to the uninterrupted run's weights.
TEST_CASE("cuda graphs: a run stopped inside an epoch while replaying resumes as if never stopped",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const Dataset data = synthetic(30 * kBatch, 8);
  const Model m = test::seed_cnn();
  auto gpu = make_cuda_backend({.deterministic = true});
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = kBatch;
  Parameters whole(m, *gpu);
  whole.initialize(7);
  Trainer(m, *gpu, whole, o).fit(data, Dataset{});

  Parameters p(m, *gpu);
  p.initialize(7);
  struct StopAt : TrainHook {
    int asked = 0;
    // Asked after every step and at every epoch's end: the 40th time is after epoch 2's
    // ninth batch.
    bool should_stop() override { return ++asked == 40; }
  } stop;
  TrainState state;
  {
    Trainer t(m, *gpu, p, o);
    state = t.fit(data, Dataset{}, {}, {&stop});
    CHECK(t.training_graph().replays > 0);
  }
  CHECK(state.finished_early);
  CHECK(state.epoch == 1);
  CHECK(state.batch_in_epoch == 9);
  Trainer resumed(m, *gpu, p, o);
  CHECK(resumed.fit(data, Dataset{}, state).epoch == 2);
  CHECK(resumed.training_graph().replays > 0);
  const std::vector<float> got = p.download(p.values());
  const std::vector<float> uninterrupted = whole.download(whole.values());
  INFO("bit-identical: " << (got == uninterrupted));
  CHECK(worst_relative(p, got, uninterrupted) < test::kFp32);
}

// A hook poisons a weight after the first step. The host looks at the device's count of
// non-finite values only at the epoch's end (30 steps, fewer than 50): meanwhile the device
// must keep every update from the weights, and the error must name the second step.
TEST_CASE("cuda graphs: a non-finite step stops the run with the weights it found", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const Dataset data = synthetic(30 * kBatch, 9);
  const Model m = test::seed_cnn();
  auto gpu = make_cuda_backend({});
  Parameters p(m, *gpu);
  p.initialize(7);
  std::vector<float> poisoned;
  struct Poison : TrainHook {
    Parameters& p;
    std::vector<float>& kept;
    Poison(Parameters& params, std::vector<float>& out) : p(params), kept(out) {}
    void on_batch_end(const BatchEnd& b) override {
      if (b.batch != 1) return;
      kept = p.download(p.values());
      kept[p.find("fc1.weight")->offset] = std::nanf("");
      p.upload(p.values(), kept);
    }
  } poison(p, poisoned);
  TrainOptions o;
  o.epochs = 1;
  o.batch_size = kBatch;
  Trainer t(m, *gpu, p, o);
  CHECK_THROWS_WITH(t.fit(data, Dataset{}, {}, {&poison}),
                    Catch::Contains("non-finite loss or gradient at step 2 (epoch 1, batch 2)"));
  CHECK(t.training_graph().replays > 0);
  CHECK(p.download_step() == 1);
  const std::vector<float> got = p.download(p.values());
  REQUIRE(got.size() == poisoned.size());
  size_t changed = 0;
  for (size_t i = 0; i < got.size(); ++i)
    changed += !(got[i] == poisoned[i] || (std::isnan(got[i]) && std::isnan(poisoned[i])));
  CHECK(changed == 0);
}

TEST_CASE("cuda graphs: synchronised launches turn capture off and training still runs", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  // The data set the tool reads: $PLINTH_DATA (the GPU kit's) or the installed one.
  const char* env = std::getenv("PLINTH_DATA");
  const std::string data = env && *env ? env : kDefaultFashionMnistDir;
  if (!std::filesystem::exists(data + "/train-images-idx3-ubyte.gz")) {
    WARN("SKIPPED: no Fashion-MNIST in " << data);
    return;
  }
  // The switch is process-wide once on, so the run is a child process.
  const auto r = test::run_cli(
      "train --device cuda --sync-launches --verbose --max-steps 5 --epochs 1 --classes 0,1 "
      "--cuda-graph on --model " PLINTH_SOURCE_DIR "/models/seed_cnn.json --data " +
      data);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("synchronised launches") &&
                           Catch::Contains("launches are synchronised"));
}

// The adapter's test hook makes the first run of each direction's algorithm fail, as a
// cuDNN refusal at run time would: the convolution must fall back to the next ranked
// algorithm, say so, and still compute what the CPU does.
TEST_CASE("cuda conv2d: an algorithm that fails at run time falls back to the next", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const ConvShape s{.n = 16, .c = 32, .h = 13, .w = 13, .k = 64, .r = 3, .s = 3};
  std::vector<std::string> heard;
  CudaOptions options;
  options.injected_algorithm_failures = 1;
  options.log = [&](const std::string& line) { heard.push_back(line); };
  const auto gpu = make_cuda_backend(options);
  const auto cpu = make_cpu_backend(1);
  test::Buffers values(3);
  const std::vector<float> x = values.random(s.input_elements());
  const std::vector<float> w = values.random(s.weight_elements(), -0.5, 0.5);
  const std::vector<float> b = values.random(s.k);
  const std::vector<float> dy = values.random(s.output_elements());
  auto run = [&](Backend& be) {
    DeviceBuffer dx_(be, x.size() * 4), dw_(be, w.size() * 4), y_(be, dy.size() * 4),
        x_(be, x.size() * 4), w_(be, w.size() * 4), b_(be, b.size() * 4), dy_(be, dy.size() * 4);
    be.upload(x_.as<void>(), x.data(), x.size() * 4);
    be.upload(w_.as<void>(), w.data(), w.size() * 4);
    be.upload(b_.as<void>(), b.data(), b.size() * 4);
    be.upload(dy_.as<void>(), dy.data(), dy.size() * 4);
    be.conv2d_prepare(s);
    be.conv2d_forward(s, x_.as<float>(), w_.as<float>(), b_.as<float>(), y_.as<float>(),
                      Activation::relu);
    be.conv2d_backward_data(s, dy_.as<float>(), w_.as<float>(), dx_.as<float>());
    be.conv2d_backward_filter(s, x_.as<float>(), dy_.as<float>(), dw_.as<float>());
    std::vector<std::vector<float>> out = {
        std::vector<float>(dy.size()), std::vector<float>(x.size()), std::vector<float>(w.size())};
    be.download(out[0].data(), y_.as<void>(), out[0].size() * 4);
    be.download(out[1].data(), dx_.as<void>(), out[1].size() * 4);
    be.download(out[2].data(), dw_.as<void>(), out[2].size() * 4);
    return out;
  };
  const auto expected = run(*cpu);
  const auto got = run(*gpu);
  for (size_t k = 0; k < expected.size(); ++k) {
    double diff = 0, scale = 1e-12;
    for (size_t i = 0; i < expected[k].size(); ++i) {
      diff = std::max(diff, std::abs(static_cast<double>(got[k][i]) - expected[k][i]));
      scale = std::max(scale, std::abs(static_cast<double>(expected[k][i])));
    }
    INFO("output " << k);
    CHECK(diff / scale < test::kFp32Conv);
  }
  for (const char* direction : {"forward", "backward-data", "backward-filter"}) {
    const bool fell_back = std::any_of(heard.begin(), heard.end(), [&](const std::string& l) {
      return l.find(std::string(": ") + direction + " algorithm ") != std::string::npos &&
             l.find("failed") != std::string::npos && l.find("; using ") != std::string::npos;
    });
    INFO(direction);
    CHECK(fell_back);
  }
}

TEST_CASE("cuda conv2d: when every algorithm fails the error says so", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const ConvShape s{.n = 2, .c = 3, .h = 9, .w = 9, .k = 4, .r = 3, .s = 3};
  CudaOptions options;
  options.injected_algorithm_failures = 1000;
  const auto gpu = make_cuda_backend(options);
  DeviceBuffer x(*gpu, s.input_elements() * 4), w(*gpu, s.weight_elements() * 4),
      y(*gpu, s.output_elements() * 4);
  gpu->conv2d_prepare(s);
  CHECK_THROWS_WITH(gpu->conv2d_forward(s, x.as<float>(), w.as<float>(), nullptr, y.as<float>(),
                                        Activation::none),
                    Catch::StartsWith("cuDNN convolution n=2 c=3 9x9 k=4") &&
                        Catch::Contains("every forward algorithm failed"));
}

}  // namespace
}  // namespace plinth
