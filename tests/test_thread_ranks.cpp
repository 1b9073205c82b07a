// The Trainer's side of data-parallel training without MPI: ranks as threads of this
// process behind an in-process Communicator, so any build checks that the shards, the
// averaged gradients and the reduced evaluations give one process's run. The runs go
// through a backend that records and replays graphs as a GPU does (tests/recording_backend.h):
// one process replays its steps, ranks that average through the host run them eagerly.
#include <catch2/catch.hpp>

#include <barrier>
#include <cstring>
#include <thread>

#include "engine/communicator.h"
#include "engine/trainer.h"
#include "engine_fixtures.h"
#include "tests/recording_backend.h"

using namespace plinth;

namespace {

// Every collective meets at a barrier, adds the ranks' contributions in rank order, and
// meets again before the slots are reused.
struct SharedSlots {
  explicit SharedSlots(int ranks) : barrier(ranks), slots(ranks) {}
  std::barrier<> barrier;
  std::vector<std::vector<double>> slots;
  std::vector<char> bytes;
};

class ThreadRank final : public Communicator {
 public:
  ThreadRank(SharedSlots& shared, int rank) : shared_(shared), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(shared_.slots.size()); }
  int local_rank() const override { return rank_; }
  int local_size() const override { return size(); }
  std::string description() const override { return "threads"; }
  void attach(Backend&) override {}
  void detach() override {}

  void average(Backend& backend, float* data, size_t n) override {
    std::vector<float> host(n);
    backend.download(host.data(), data, n * sizeof(float));
    std::vector<double> values(host.begin(), host.end());
    sum(values.data(), n, "average");
    for (size_t i = 0; i < n; ++i) host[i] = static_cast<float>(values[i] / size());
    backend.upload(data, host.data(), n * sizeof(float));
  }
  void sum(double* data, size_t n, const char*) override {
    shared_.slots[rank_].assign(data, data + n);
    shared_.barrier.arrive_and_wait();
    for (size_t i = 0; i < n; ++i) {
      data[i] = 0;
      for (const std::vector<double>& slot : shared_.slots) data[i] += slot[i];
    }
    shared_.barrier.arrive_and_wait();
  }
  bool any(bool flag, const char* what) override {
    double value = flag ? 1 : 0;
    sum(&value, 1, what);
    return value > 0;
  }
  void broadcast(void* data, size_t bytes, int root, const char*) override {
    if (rank_ == root)
      shared_.bytes.assign(static_cast<char*>(data), static_cast<char*>(data) + bytes);
    shared_.barrier.arrive_and_wait();
    if (rank_ != root) std::memcpy(data, shared_.bytes.data(), bytes);
    shared_.barrier.arrive_and_wait();
  }
  using Communicator::broadcast;
  [[noreturn]] void abort(int) override { std::abort(); }

 private:
  SharedSlots& shared_;
  int rank_;
};

constexpr const char* kCnn = R"({
  "name": "cnn", "input": [1, 28, 28],
  "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "activation": "relu"},
    {"type": "maxpool2d", "name": "pool1", "size": 2},
    {"type": "flatten", "name": "flatten"},
    {"type": "dense", "name": "fc1", "units": 16, "activation": "relu"},
    {"type": "dense", "name": "fc2", "units": 10, "activation": "softmax"}],
  "loss": "categorical_crossentropy",
  "optimizer": {"type": "adam", "lr": 0.002},
  "training": {"augment": {"shift": 2}}
})";

struct RankResult {
  std::vector<float> weights;
  TrainState state;
  EvalResult test;
  GraphUse steps;  // how the training steps ran
};

// One rank's run (or one process's, with ranks null). Rank 1 starts from other weights:
// rank 0's are broadcast.
RankResult train(const Model& m, const Dataset& train, const Dataset& test, Communicator* ranks) {
  auto cpu = make_cpu_backend(1);
  test::RecordingBackend backend(*cpu);
  Parameters params(m, backend);
  params.initialize(ranks && ranks->rank() == 1 ? 99 : 5);
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 32;
  o.seed = 5;
  o.eval_batch_size = 64;
  o.communicator = ranks;
  Trainer trainer(m, backend, params, o);
  RankResult r;
  r.state = trainer.fit(train, test);
  r.steps = trainer.training_graph();
  r.test = trainer.evaluate(test, /*confusion=*/true);
  r.weights = params.download(params.values());
  return r;
}

}  // namespace

TEST_CASE("distributed: 2 ranks as threads train, validate and test as one process does",
          "[distributed][training]") {
  REQUIRE_FASHION();
  const Model m = test::model_from(kCnn);
  const Dataset all = test::head(test::fashion_train(), 840);
  const Dataset train_set = test::head(all, 640);  // 20 global batches of 32 an epoch
  Dataset test_set = all;  // the 200 after: 4 evaluation batches of 64, the last partial
  test_set.images.erase(test_set.images.begin(),
                        test_set.images.begin() + 640 * static_cast<size_t>(all.image_size()));
  test_set.labels.erase(test_set.labels.begin(), test_set.labels.begin() + 640);
  test_set.count = 200;
  const RankResult one = train(m, train_set, test_set, nullptr);

  SharedSlots shared(2);
  ThreadRank rank0(shared, 0), rank1(shared, 1);
  RankResult two[2];
  std::thread other([&] { two[1] = train(m, train_set, test_set, &rank1); });
  two[0] = train(m, train_set, test_set, &rank0);
  other.join();

  CHECK(one.steps.replays > 0);
  for (const RankResult& rank : two) {
    CHECK(rank.steps.replays == 0);
    CHECK(rank.steps.eager_reason == Communicator::kNotReplayable);
  }
  CHECK(two[0].weights == two[1].weights);  // every rank takes the same steps
  float scale = 0, diff = 0;
  for (size_t i = 0; i < one.weights.size(); ++i) {
    scale = std::max(scale, std::abs(one.weights[i]));
    diff = std::max(diff, std::abs(one.weights[i] - two[0].weights[i]));
  }
  CHECK(diff / scale < 1e-4f);
  CHECK(two[0].state.step == one.state.step);
  REQUIRE(two[0].state.history.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    CHECK(two[0].state.history[e].loss == Approx(one.state.history[e].loss).epsilon(1e-4));
    CHECK(two[0].state.history[e].val_accuracy ==
          Approx(one.state.history[e].val_accuracy).margin(1.5 / 200));
  }
  CHECK(two[0].test.count == 200);
  CHECK(two[0].test.accuracy == Approx(one.test.accuracy).margin(1.5 / 200));
  CHECK(two[0].test.confusion == two[1].test.confusion);
  int64_t counted = 0;
  for (const auto& row : two[0].test.confusion)
    for (int64_t c : row) counted += c;
  CHECK(counted == 200);  // every test image once, over both ranks' shards
}

TEST_CASE("distributed: a global batch that does not divide among the ranks is an error",
          "[distributed]") {
  const Model m = test::model_from(kCnn);
  auto backend = make_cpu_backend(1);
  Parameters params(m, *backend);
  SharedSlots shared(2);
  ThreadRank rank0(shared, 0);
  TrainOptions o;
  o.batch_size = 33;
  o.communicator = &rank0;
  CHECK_THROWS_WITH(Trainer(m, *backend, params, o),
                    "batch_size: the global batch of 33 does not divide among 2 ranks (give a "
                    "multiple of 2)");
}

TEST_CASE(
    "distributed: ranks whose evaluation batches differ evaluate at the smallest, every "
    "sample once",
    "[distributed]") {
  REQUIRE_FASHION();
  const Model m = test::model_from(kCnn);
  const Dataset data = test::head(test::fashion_train(), 200);
  auto evaluate = [&](Communicator* ranks, int eval_batch) {
    auto backend = make_cpu_backend(1);
    Parameters params(m, *backend);
    params.initialize(5);
    TrainOptions o;
    o.eval_batch_size = eval_batch;
    o.communicator = ranks;
    Trainer trainer(m, *backend, params, o);
    return trainer.evaluate(data, /*confusion=*/true);
  };
  const EvalResult one = evaluate(nullptr, 32);
  SharedSlots shared(2);
  ThreadRank rank0(shared, 0), rank1(shared, 1);
  EvalResult two[2];
  std::thread other([&] { two[1] = evaluate(&rank1, 32); });
  two[0] = evaluate(&rank0, 64);  // e.g. a rank with more memory
  other.join();
  for (const EvalResult& r : two) {
    CHECK(r.batch == 32);
    CHECK(r.confusion == one.confusion);
    CHECK(r.accuracy == Approx(one.accuracy));
    CHECK(r.loss == Approx(one.loss).epsilon(1e-5));
  }
}

// Running statistics follow each rank's shards; rank 0's are shared before evaluations and
// at the end, so every rank ends with the statistics rank 0 saves.
TEST_CASE("distributed: ranks end with rank 0's BatchNorm statistics", "[distributed]") {
  REQUIRE_FASHION();
  const Model m = test::model_from(R"({
    "name": "bn", "input": [1, 28, 28],
    "layers": [
      {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "use_bias": false},
      {"type": "batchnorm2d", "name": "bn1", "activation": "relu"},
      {"type": "global_avgpool", "name": "pool"},
      {"type": "dense", "name": "fc", "units": 10, "activation": "softmax"}],
    "loss": "categorical_crossentropy",
    "optimizer": {"type": "adam", "lr": 0.002}
  })");
  const Dataset data = test::head(test::fashion_train(), 256);
  auto run = [&](Communicator* ranks) {
    auto backend = make_cpu_backend(1);
    Parameters params(m, *backend);
    params.initialize(5);
    TrainOptions o;
    o.epochs = 1;
    o.batch_size = 32;
    o.communicator = ranks;
    Trainer trainer(m, *backend, params, o);
    trainer.fit(data, Dataset{});
    return params.download_buffers();
  };
  SharedSlots shared(2);
  ThreadRank rank0(shared, 0), rank1(shared, 1);
  std::vector<std::byte> buffers[2];
  std::thread other([&] { buffers[1] = run(&rank1); });
  buffers[0] = run(&rank0);
  other.join();
  REQUIRE(!buffers[0].empty());
  CHECK(buffers[0] == buffers[1]);
  CHECK(buffers[0] != run(nullptr));  // one process saw every sample, rank 0 half of them
}
