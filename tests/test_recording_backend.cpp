// What lets a CUDA graph replay a training step, proved on the CPU with a recording
// backend (tests/recording_backend.h): two consecutive steps of an epoch call the same
// ops with the same arguments, for every training feature; replaying a step recorded
// once trains bit for bit as running it does; a data set streamed from the host, the one
// feature that changes a step's arguments, is never captured; and every way a run ends (a
// stop inside an epoch and its resumption, a non-finite step, a hook ending the run) works
// while steps are replayed, also with the GPU's habit of looking at the step checks only
// now and then.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/device_dataset.h"
#include "engine/error.h"
#include "engine/parameters.h"
#include "engine/trainer.h"
#include "tests/engine_fixtures.h"
#include "tests/recording_backend.h"

namespace plinth {
namespace {

using test::RecordingBackend;

const char* kCnn = R"({
  "name": "small", "input": [1, 12, 12],
  "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "activation": "relu"},
    {"type": "maxpool2d", "name": "pool1", "size": 2},
    {"type": "conv2d", "name": "conv2", "filters": 6, "kernel": 3, "activation": "tanh"},
    {"type": "flatten", "name": "flatten"},
    {"type": "dense", "name": "fc1", "units": 12, "activation": "relu"},
    {"type": "dropout", "name": "drop", "rate": 0.25},
    {"type": "dense", "name": "fc2", "units": 10, "activation": "softmax"}
  ],
  "loss": "categorical_crossentropy"
})";

constexpr int kBatch = 8, kBatches = 6, kEpochs = 2;

// count random 12x12 images with random labels, the same for a seed.
Dataset synthetic(int count, uint64_t seed) {
  Dataset d;
  d.name = "synthetic";
  d.count = count;
  d.channels = 1;
  d.height = d.width = 12;
  d.classes = 10;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  d.images.resize(static_cast<size_t>(count) * 144);
  for (uint8_t& p : d.images) p = static_cast<uint8_t>(rng() % 256);
  d.labels.resize(count);
  for (int32_t& l : d.labels) l = static_cast<int32_t>(rng() % 10);
  return d;
}

const Dataset& train_set() {
  static const Dataset d = synthetic(kBatch * kBatches, 1);
  return d;
}

// A training feature: how it changes the model and the options.
struct Feature {
  std::string name;
  std::function<void(nlohmann::json&, TrainOptions&)> apply;
};

std::vector<Feature> features() {
  auto schedule = [](const char* type) {
    return [type](nlohmann::json& m, TrainOptions&) {
      m["training"]["schedule"] = {{"type", type}};
    };
  };
  return {
      {"no dropout",
       [](nlohmann::json& m, TrainOptions&) { m["layers"].erase(m["layers"].begin() + 5); }},
      {"dropout", [](nlohmann::json&, TrainOptions&) {}},
      {"augmentation",
       [](nlohmann::json& m, TrainOptions&) {
         m["training"]["augment"] = {
             {"shift", 1}, {"rotate", 10}, {"scale", 0.1}, {"horizontal_flip", true}};
       }},
      {"clipping", [](nlohmann::json&, TrainOptions& o) { o.clip_norm = 0.5f; }},
      {"step schedule",
       [](nlohmann::json& m, TrainOptions&) {
         m["training"]["schedule"] = {{"type", "step"}, {"step_epochs", 1}, {"gamma", 0.5}};
       }},
      {"cosine schedule", schedule("cosine")},
      {"one_cycle schedule", schedule("one_cycle")},
      {"frozen layers", [](nlohmann::json&, TrainOptions& o) { o.freeze = {"conv1"}; }},
      {"lr multipliers",
       [](nlohmann::json&, TrainOptions& o) {
         o.lr_multiplier = {{"conv2", 0.1f}};
       }},
      {"sgd with momentum",
       [](nlohmann::json& m, TrainOptions&) {
         m["optimizer"] = {{"type", "sgd"}, {"lr", 0.05}, {"momentum", 0.9}};
       }},
      {"skipping bad steps", [](nlohmann::json&, TrainOptions& o) { o.on_nan = OnNan::skip_step; }},
      {"reconstruction loss",
       [](nlohmann::json& m, TrainOptions&) {
         m["layers"] = nlohmann::json::parse(R"([
           {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "activation": "relu"},
           {"type": "flatten", "name": "flatten"},
           {"type": "dense", "name": "fc1", "units": 144, "activation": "sigmoid"}])");
         m["loss"] = "binary_crossentropy";
       }},
  };
}

struct Run {
  Model model;
  TrainOptions options;
};

Run run_with(const Feature& f) {
  nlohmann::json m = nlohmann::json::parse(kCnn);
  TrainOptions o;
  o.epochs = kEpochs;
  o.batch_size = kBatch;
  o.eval_batch_size = kBatch;
  o.seed = 3;
  f.apply(m, o);
  return {parse_model(m, f.name), o};
}

// Marks the log at every batch's end and epoch's beginning.
struct Marks : TrainHook {
  RecordingBackend& r;
  explicit Marks(RecordingBackend& backend) : r(backend) {}
  void on_epoch_begin(int) override { r.mark("epoch begin"); }
  void on_batch_end(const BatchEnd&) override { r.mark("batch end"); }
};

// Calls a function at every batch end.
struct OnBatchEnd : TrainHook {
  std::function<void(const BatchEnd&)> call;
  explicit OnBatchEnd(std::function<void(const BatchEnd&)> f) : call(std::move(f)) {}
  void on_batch_end(const BatchEnd& b) override { call(b); }
};

// Trains from the seed's weights and returns them.
std::vector<float> train(Backend& backend, const Run& run, std::vector<TrainHook*> hooks = {},
                         TrainState start = {}, const std::vector<float>* from = nullptr) {
  Parameters p(run.model, backend);
  p.initialize(run.options.seed);
  if (from) p.upload(p.values(), *from);
  Trainer t(run.model, backend, p, run.options);
  t.fit(train_set(), Dataset{}, std::move(start), hooks);
  return p.download(p.values());
}

// The log between one "batch end" and the next, per epoch: a step's calls and the host's
// look at its checks. The first batch of an epoch also holds the epoch's set-up; the
// batches after it are a step each.
std::vector<std::vector<std::vector<std::string>>> steps_by_epoch(
    const std::vector<std::string>& log) {
  std::vector<std::vector<std::vector<std::string>>> epochs;
  std::vector<std::string> current;
  bool after_first_batch = false;
  for (const std::string& line : log) {
    if (line == "epoch begin") {
      epochs.emplace_back();
      after_first_batch = false;
      current.clear();
    } else if (line == "batch end") {
      if (after_first_batch) epochs.back().push_back(current);
      after_first_batch = true;
      current.clear();
    } else {
      current.push_back(line);
    }
  }
  return epochs;
}

bool contains(const std::vector<std::string>& lines, const std::string& start) {
  for (const std::string& l : lines)
    if (l.rfind(start, 0) == 0) return true;
  return false;
}

TEST_CASE(
    "recording backend: consecutive training steps call the same ops with the same "
    "arguments, with every feature",
    "[capture]") {
  for (const Feature& f : features()) {
    INFO("feature: " << f.name);
    Run run = run_with(f);
    run.options.cuda_graphs = false;  // every step eager, each in the log
    auto cpu = make_cpu_backend(1);
    RecordingBackend recorder(*cpu);
    Marks marks(recorder);
    train(recorder, run, {&marks});
    const auto epochs = steps_by_epoch(recorder.log());
    REQUIRE(epochs.size() == kEpochs);
    for (const auto& steps : epochs) {
      REQUIRE(steps.size() == kBatches - 1);  // every batch after the first
      CHECK(contains(steps[0], "gather_batch("));
      CHECK(contains(steps[0], "optimizer_update("));
      CHECK(contains(steps[0], "conv2d_backward_filter("));
      for (size_t s = 1; s < steps.size(); ++s) CHECK(steps[s] == steps[0]);
    }
  }
}

TEST_CASE(
    "recording backend: a step recorded once and replayed trains bit for bit as running "
    "it does, with every feature",
    "[capture]") {
  for (const Feature& f : features()) {
    INFO("feature: " << f.name);
    const Run run = run_with(f);
    auto cpu = make_cpu_backend(1);
    const std::vector<float> eager = train(*cpu, run);
    RecordingBackend recorder(*cpu);
    Marks marks(recorder);
    const std::vector<float> replayed = train(recorder, run, {&marks});
    CHECK(replayed == eager);
    CHECK(recorder.captures() == kEpochs);  // the step's per-epoch arguments: once each
    CHECK(contains(recorder.log(), "replay"));
    // What the capture (at the third step) records is what the second, eager, step ran,
    // less the host's looks at its checks.
    std::vector<std::string> captured, eager_step;
    bool inside = false;
    for (const std::string& line : recorder.log()) {
      if (line == "}") break;
      if (inside) captured.push_back(line);
      inside = inside || line == "capture {";
    }
    const auto epochs = steps_by_epoch(recorder.log());
    REQUIRE_FALSE(epochs.front().empty());
    for (const std::string& line : epochs.front().front())
      if (line.rfind("download(", 0) != 0 && line.rfind("upload(", 0) != 0)
        eager_step.push_back(line);
    CHECK_FALSE(captured.empty());
    CHECK(captured == eager_step);
  }
}

TEST_CASE(
    "recording backend: the GPU's occasional look at the checks trains as the CPU's "
    "look at every step does",
    "[capture]") {
  const Run run = run_with(features()[1]);
  auto cpu = make_cpu_backend(1);
  const std::vector<float> every_step = train(*cpu, run);
  RecordingBackend gpu_like(*cpu, DeviceKind::cuda);
  CHECK(train(gpu_like, run) == every_step);
  CHECK(gpu_like.captures() == kEpochs);
}

TEST_CASE("recording backend: a run stopped inside an epoch while replaying resumes exactly",
          "[capture]") {
  const Run run = run_with(features()[2]);  // augmentation and dropout
  auto cpu = make_cpu_backend(1);
  const std::vector<float> uninterrupted = train(*cpu, run);
  RecordingBackend recorder(*cpu, DeviceKind::cuda);
  Parameters p(run.model, recorder);
  p.initialize(run.options.seed);
  struct StopAt : TrainHook {
    int64_t steps = 0;
    // Asked after every step and at every epoch's end: the 10th time is after epoch 2's
    // third batch.
    bool should_stop() override { return ++steps == kBatches + 4; }
  } stop;
  TrainState state;
  {
    Trainer t(run.model, recorder, p, run.options);
    state = t.fit(train_set(), Dataset{}, {}, {&stop});
  }
  CHECK(state.finished_early);
  CHECK(state.epoch == 1);
  CHECK(state.batch_in_epoch == 3);
  Trainer resumed(run.model, recorder, p, run.options);
  const TrainState end = resumed.fit(train_set(), Dataset{}, state);
  CHECK(end.epoch == kEpochs);
  CHECK(p.download(p.values()) == uninterrupted);
}

// A hook poisons fc1's first weight after the first step, so the second step is not
// finite: the device must keep that step's gradients, and every later one, from the
// weights, and the error or the skips must name the second step, with the CPU's habit and
// the GPU's (which finds the step only at the epoch's end and runs it again to say where).
// fc1's ReLU turns its NaN output to 0, so the first non-finite value backward is conv2's
// gradient (through fc1's weights).
TEST_CASE(
    "recording backend: a non-finite step stops the run or is skipped, exactly, while "
    "replaying",
    "[capture]") {
  for (const DeviceKind kind : {DeviceKind::cpu, DeviceKind::cuda}) {
    for (const OnNan on_nan : {OnNan::stop, OnNan::skip_step}) {
      INFO((kind == DeviceKind::cpu ? "cpu" : "gpu")
           << " habits, " << (on_nan == OnNan::stop ? "stop" : "skip"));
      Run run = run_with(features()[1]);
      run.options.epochs = 1;
      run.options.on_nan = on_nan;
      auto cpu = make_cpu_backend(1);
      // The weights after one step, poisoned as the hook does.
      Run one_step = run_with(features()[1]);
      one_step.options = run.options;
      one_step.options.max_steps = 1;
      std::vector<float> expected = train(*cpu, one_step);
      Parameters probe(run.model, *cpu);
      const size_t poisoned = probe.find("fc1.weight")->offset;
      expected[poisoned] = std::nanf("");

      RecordingBackend recorder(*cpu, kind);
      Parameters p(run.model, recorder);
      p.initialize(run.options.seed);
      OnBatchEnd poison([&](const BatchEnd& b) {
        if (b.batch != 1) return;
        std::vector<float> v = p.download(p.values());
        v[poisoned] = std::nanf("");
        p.upload(p.values(), v);
      });
      struct Skips : TrainHook {
        std::vector<SkippedStep> seen;
        void on_step_skipped(const SkippedStep& s) override { seen.push_back(s); }
      } skips;
      Trainer t(run.model, recorder, p, run.options);
      if (on_nan == OnNan::stop) {
        CHECK_THROWS_WITH(t.fit(train_set(), Dataset{}, {}, {&poison, &skips}),
                          Catch::Contains("non-finite loss or gradient at step 2 (epoch 1, "
                                          "batch 2), first in the gradient of conv2.bias"));
      } else {
        const TrainState end = t.fit(train_set(), Dataset{}, {}, {&poison, &skips});
        CHECK(end.step == 1);
        REQUIRE(skips.seen.size() == kBatches - 1);
        for (int i = 0; i < kBatches - 1; ++i) {
          CHECK(skips.seen[i].batch == i + 2);
          CHECK(skips.seen[i].where == "first in the gradient of conv2.bias");
        }
      }
      std::vector<float> got = p.download(p.values());
      CHECK(std::isnan(got[poisoned]));
      got[poisoned] = expected[poisoned] = 0.0f;
      CHECK(got == expected);
      CHECK(p.download_step() == 1);
    }
  }
}

// With the GPU's habit the host has not looked at the step checks when max_steps (or a
// signal) stops the run inside an epoch: it looks before it records where the run stopped.
TEST_CASE("recording backend: a stop inside an epoch first looks for a non-finite step",
          "[capture]") {
  Run run = run_with(features()[1]);
  run.options.max_steps = 4;
  auto cpu = make_cpu_backend(1);
  RecordingBackend recorder(*cpu, DeviceKind::cuda);
  Parameters p(run.model, recorder);
  p.initialize(run.options.seed);
  OnBatchEnd poison([&](const BatchEnd& b) {
    if (b.batch != 1) return;
    std::vector<float> v = p.download(p.values());
    v[p.find("fc1.weight")->offset] = std::nanf("");
    p.upload(p.values(), v);
  });
  Trainer t(run.model, recorder, p, run.options);
  CHECK_THROWS_WITH(t.fit(train_set(), Dataset{}, {}, {&poison}),
                    Catch::Contains("non-finite loss or gradient at step 2 (epoch 1, batch 2)"));
  CHECK(p.download_step() == 1);
}

TEST_CASE("recording backend: a hook ends the run at an epoch's end while replaying", "[capture]") {
  const Run run = run_with(features()[0]);
  auto cpu = make_cpu_backend(1);
  RecordingBackend recorder(*cpu, DeviceKind::cuda);
  Parameters p(run.model, recorder);
  p.initialize(run.options.seed);
  struct EndAfterFirst : TrainHook {
    bool on_epoch_end(const EpochRecord&, const TrainState&) override { return false; }
  } end_after_first;
  Trainer t(run.model, recorder, p, run.options);
  const TrainState state = t.fit(train_set(), Dataset{}, {}, {&end_after_first});
  CHECK(state.epoch == 1);
  CHECK(state.finished_early);
  CHECK(state.step == kBatches);
  CHECK(t.training_graph().replays == kBatches - Trainer::kEagerSteps);
  CHECK(t.training_graph().eager == Trainer::kEagerSteps);
}

TEST_CASE(
    "recording backend: evaluation replays its whole batches and runs a partial one "
    "eagerly, with the same results",
    "[capture]") {
  const Run run = run_with(features()[1]);
  const Dataset val = synthetic(5 * kBatch + 3, 9);  // five whole batches and a partial one
  auto cpu = make_cpu_backend(1);
  Parameters p(run.model, *cpu);
  p.initialize(4);
  const EvalResult eager = Trainer(run.model, *cpu, p, run.options).evaluate(val, true);
  RecordingBackend recorder(*cpu);
  Parameters q(run.model, recorder);
  q.upload(q.values(), p.download(p.values()));
  Trainer t(run.model, recorder, q, run.options);
  const EvalResult replayed = t.evaluate(val, true);
  CHECK(replayed.loss == eager.loss);
  CHECK(replayed.accuracy == eager.accuracy);
  CHECK(replayed.confusion == eager.confusion);
  CHECK(t.evaluation_graph().replays == 5 - Trainer::kEagerSteps);
  CHECK(t.evaluation_graph().eager == Trainer::kEagerSteps);
  // A second evaluation replays every whole batch.
  CHECK(t.evaluate(val).loss == eager.loss);
  CHECK(t.evaluation_graph().replays == 5 - Trainer::kEagerSteps + 5);
}

// The one feature that breaks the condition: a data set larger than data_memory streams
// through a device chunk that the host refills, and each step reads its own batch's place
// in that chunk. So the trainer runs every step eagerly, training and evaluation, and
// says why; the batches, and so the weights, are those of the resident set.
TEST_CASE(
    "recording backend: streamed data (data_memory) changes a step's arguments, so nothing "
    "is captured, with the resident set's results",
    "[capture]") {
  Run run = run_with(features()[2]);  // augmentation and dropout: both read the sample ids
  auto cpu = make_cpu_backend(1);
  const std::vector<float> resident = train(*cpu, run);
  run.options.data_memory = 2 * kBatch * 144;  // a chunk of two batches
  const Dataset val = synthetic(3 * kBatch, 9);

  {
    Run eager = run_with(features()[2]);
    eager.options.data_memory = run.options.data_memory;
    eager.options.cuda_graphs = false;
    RecordingBackend recorder(*cpu);
    Marks marks(recorder);
    train(recorder, eager, {&marks});
    const auto epochs = steps_by_epoch(recorder.log());
    REQUIRE(epochs.size() == kEpochs);
    REQUIRE(epochs[0].size() == kBatches - 1);
    // The epoch's second batch reads the chunk's second half; the third, a refilled chunk.
    CHECK(epochs[0][1] != epochs[0][0]);
  }
  RecordingBackend recorder(*cpu, DeviceKind::cuda);
  Parameters p(run.model, recorder);
  p.initialize(run.options.seed);
  Trainer t(run.model, recorder, p, run.options);
  t.fit(train_set(), val);
  CHECK(p.download(p.values()) == resident);
  CHECK(recorder.captures() == 0);
  CHECK(t.training_graph().eager == kEpochs * kBatches);
  CHECK(t.training_graph().eager_reason == DeviceDataset::kNotReplayable);
  CHECK(t.evaluation_graph().replays == 0);
  CHECK(t.evaluation_graph().eager_reason == DeviceDataset::kNotReplayable);
}

TEST_CASE("recording backend: with CUDA graphs off nothing is captured", "[capture]") {
  Run run = run_with(features()[1]);
  run.options.cuda_graphs = false;
  auto cpu = make_cpu_backend(1);
  RecordingBackend recorder(*cpu, DeviceKind::cuda);
  Parameters p(run.model, recorder);
  p.initialize(run.options.seed);
  Trainer t(run.model, recorder, p, run.options);
  t.fit(train_set(), Dataset{});
  CHECK(recorder.captures() == 0);
  CHECK(t.training_graph().eager_reason == "CUDA graphs are off");
  CHECK_THAT(t.graph_report(), Catch::StartsWith("training steps: 12 eager (CUDA graphs are off)"));
}

}  // namespace
}  // namespace plinth
