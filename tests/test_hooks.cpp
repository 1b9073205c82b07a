// Training hooks as a C++ user writes them: a hook sees the run, every epoch and batch,
// can stop the run at an epoch's end or inside an epoch, and a run stopped inside an epoch
// resumes exactly. CPU backend, synthetic data, so these never skip.
#include <catch2/catch.hpp>

#include <random>

#include "engine/checkpoint.h"
#include "engine/stopping.h"
#include "engine/trainer.h"
#include "engine_fixtures.h"

using namespace plinth;

namespace {

// Dropout and augmentation make a resumed run depend on the random streams, not just the
// weights.
const char* kTinyCnn = R"({
  "name": "tiny", "input": [1, 8, 8],
  "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 2, "kernel": 3, "activation": "relu"},
    {"type": "flatten", "name": "flatten"},
    {"type": "dropout", "name": "drop", "rate": 0.25},
    {"type": "dense", "name": "fc1", "units": 2, "activation": "softmax"}],
  "optimizer": {"type": "adam", "lr": 0.01},
  "training": {"augment": {"shift": 1}}
})";

// 8x8 images whose class is whether the first pixel is bright.
Dataset synthetic(int count, uint64_t seed) {
  Dataset d;
  d.count = count;
  d.channels = 1;
  d.height = d.width = 8;
  d.classes = 2;
  d.name = "synthetic";
  std::mt19937_64 rng(seed);
  for (int i = 0; i < count * 64; ++i) d.images.push_back(static_cast<uint8_t>(rng() & 255));
  for (int i = 0; i < count; ++i) d.labels.push_back(d.images[i * 64] > 127 ? 1 : 0);
  return d;
}

TrainOptions options(int epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 16;  // 96 samples: 6 batches per epoch
  o.seed = 5;
  return o;
}

// Records what it is told; stops the run after epoch `stop_after` (0: never).
struct Recorder : TrainHook {
  int stop_after = 0;
  TrainBegin begin;
  std::vector<int> epochs_begun, epochs_ended;
  std::vector<int64_t> steps_seen;
  std::vector<RunningMetrics> last_batch_metrics;  // read at each epoch's last batch
  std::vector<EpochRecord> records;
  int train_ends = 0;

  void on_train_begin(const TrainBegin& run) override { begin = run; }
  void on_epoch_begin(int epoch) override { epochs_begun.push_back(epoch); }
  void on_batch_end(const BatchEnd& b) override {
    steps_seen.push_back(b.step);
    if (b.batch == begin.batches) last_batch_metrics.push_back(b.metrics());
  }
  bool on_epoch_end(const EpochRecord& record, const TrainState& state) override {
    epochs_ended.push_back(record.epoch);
    records.push_back(record);
    CHECK(state.epoch == record.epoch);
    CHECK(state.history.back().loss == record.loss);
    return stop_after == 0 || record.epoch < stop_after;
  }
  void on_train_end(const TrainState&) override { ++train_ends; }
};

// Asks to stop once it has seen `after` batches.
struct StopAfterBatches : TrainHook {
  int64_t after = 0, seen = 0;
  void on_batch_end(const BatchEnd&) override { ++seen; }
  bool should_stop() override { return seen >= after; }
};

std::vector<float> values(const Parameters& p) { return p.download(p.values()); }

}  // namespace

TEST_CASE("hooks: a C++ user's hook sees the run, every epoch and batch, and can stop it",
          "[hooks]") {
  const Model m = test::model_from(kTinyCnn);
  auto be = make_cpu_backend(1);
  Parameters p(m, *be);
  p.initialize(3);
  Trainer t(m, *be, p, options(5));
  Recorder stopper, after;
  stopper.stop_after = 2;
  const TrainState s = t.fit(synthetic(96, 1), synthetic(32, 2), {}, {&stopper, &after});

  CHECK(stopper.begin.epochs == 5);
  CHECK(stopper.begin.batches == 6);
  CHECK(stopper.begin.batch_size == 16);
  CHECK(stopper.begin.has_validation);
  CHECK_FALSE(stopper.begin.has_test);
  CHECK(stopper.epochs_begun == std::vector<int>{1, 2});
  CHECK(stopper.epochs_ended == std::vector<int>{1, 2});
  // Every hook sees the epoch that a hook before it stopped the run at.
  CHECK(after.epochs_ended == std::vector<int>{1, 2});
  CHECK(stopper.train_ends == 1);
  CHECK(stopper.steps_seen == std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  // The running figures at an epoch's last batch are the epoch's record.
  REQUIRE(stopper.last_batch_metrics.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    CHECK(stopper.last_batch_metrics[e].loss == stopper.records[e].loss);
    CHECK(stopper.last_batch_metrics[e].accuracy == stopper.records[e].accuracy);
    CHECK(stopper.records[e].val_loss > 0);
  }
  CHECK(s.epoch == 2);
  CHECK(s.history.size() == 2);
  CHECK(s.finished_early);
  CHECK(s.batch_in_epoch == 0);
}

TEST_CASE(
    "hooks: should_stop stops inside an epoch, and the run resumed from its checkpoint ends "
    "bit-identical",
    "[hooks][checkpoint]") {
  const Model m = test::model_from(kTinyCnn);
  const Dataset train = synthetic(96, 1);
  auto be = make_cpu_backend(2);

  Parameters full(m, *be);
  full.initialize(3);
  const TrainState uninterrupted = Trainer(m, *be, full, options(3)).fit(train, Dataset{});
  REQUIRE(uninterrupted.step == 18);

  const std::string ckpt = test::temp_dir("hooks-resume") + "/run.safetensors";
  {
    Parameters p(m, *be);
    p.initialize(3);
    StopAfterBatches stop;
    stop.after = 8;  // batch 2 of epoch 2
    Recorder recorder;
    const TrainState s =
        Trainer(m, *be, p, options(3)).fit(train, Dataset{}, {}, {&recorder, &stop});
    CHECK(s.epoch == 1);
    CHECK(s.batch_in_epoch == 2);
    CHECK(s.step == 8);
    CHECK(s.finished_early);
    CHECK(recorder.epochs_begun == std::vector<int>{1, 2});
    CHECK(recorder.epochs_ended == std::vector<int>{1});
    CHECK(recorder.train_ends == 1);
    save_checkpoint(ckpt, p, {m.to_json(), {}, s});
  }
  const CheckpointMeta meta = read_checkpoint_meta(ckpt);
  CHECK(meta.state.batch_in_epoch == 2);
  Parameters resumed(m, *be);
  load_weights(ckpt, resumed, true);
  load_optimizer_state(ckpt, resumed);
  const TrainState end = Trainer(m, *be, resumed, options(3)).fit(train, Dataset{}, meta.state);
  CHECK(end.step == 18);
  REQUIRE(end.history.size() == 3);
  CHECK_FALSE(end.finished_early);
  CHECK(values(resumed) == values(full));
  // The resumed epoch adds its batches to the statistics saved at the stop.
  for (size_t e = 0; e < 3; ++e) {
    CHECK(end.history[e].loss == uninterrupted.history[e].loss);
    CHECK(end.history[e].accuracy == uninterrupted.history[e].accuracy);
  }
}

TEST_CASE("hooks: the library's stopping hooks, target accuracy and early stopping", "[hooks]") {
  const Model m = test::model_from(kTinyCnn);
  auto be = make_cpu_backend(1);
  Parameters p(m, *be);
  p.initialize(3);
  Trainer t(m, *be, p, options(4));
  TargetAccuracy reached(0.0f);  // any accuracy reaches it: the run ends after one epoch
  const TrainState s = t.fit(synthetic(96, 1), synthetic(32, 2), {}, {&reached});
  CHECK(s.history.size() == 1);
  CHECK(s.finished_early);
  TargetAccuracy unreachable(1.5f);
  CHECK(t.fit(synthetic(96, 1), synthetic(32, 2), {}, {&unreachable}).history.size() == 4);

  EarlyStopping early(1);
  CHECK_THROWS_WITH(t.fit(synthetic(96, 1), Dataset{}, {}, {&early}),
                    Catch::Contains("no validation set"));
  CHECK_THROWS_WITH(EarlyStopping(0), Catch::Contains("patience must be at least 1"));
}
