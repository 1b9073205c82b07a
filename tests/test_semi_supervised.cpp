// Semi-supervised training (FixMatch, engine/semi_supervised.h): the unlabelled stream's
// order and its share of each step, the confidence threshold, and resume inside a
// semi-supervised epoch. CPU backend, small slices of Fashion-MNIST.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>

#include "engine/checkpoint.h"
#include "engine/semi_supervised.h"
#include "engine/trainer.h"
#include "engine_fixtures.h"

using namespace plinth;

namespace {

const char* kSmallCnn = R"({
  "name": "small", "input": [1, 28, 28],
  "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "stride": 2, "padding": 1,
     "activation": "relu"},
    {"type": "maxpool2d", "name": "pool1", "size": 2},
    {"type": "flatten", "name": "flatten"},
    {"type": "dense", "name": "fc1", "units": 16, "activation": "relu"},
    {"type": "dropout", "name": "drop", "rate": 0.25},
    {"type": "dense", "name": "fc2", "units": 10, "activation": "softmax"}
  ],
  "loss": "categorical_crossentropy",
  "optimizer": {"type": "adam", "lr": 0.003},
  "training": {"augment": {"shift": 1, "horizontal_flip": true},
               "semi_supervised": {"ratio": 2, "threshold": 0.5, "warmup_epochs": 1}}
})";

constexpr int kBatch = 16, kLabelled = 64;  // 4 steps an epoch
constexpr int kUnlabelled = 100;            // 32 a step: passes end inside epochs

// Samples [first, first + count) of Fashion-MNIST's training set; without labels if asked.
Dataset slice(int first, int count, bool labelled) {
  const Dataset& all = test::fashion_train();
  Dataset out = test::head(all, count);
  const size_t size = static_cast<size_t>(all.image_size());
  std::copy_n(all.images.begin() + first * size, count * size, out.images.begin());
  std::copy_n(all.labels.begin() + first, count, out.labels.begin());
  if (!labelled) out.labels.clear();
  return out;
}

struct Run {
  std::vector<float> weights;
  TrainState state;
};

// Trains from fresh weights (seed) or from a checkpoint's, with or without unlabelled
// images, for `epochs` epochs or max_steps steps.
Run train(const Model& m, uint64_t seed, int epochs, const Dataset* unlabelled,
          int64_t max_steps = -1, const std::string& resume = "") {
  auto be = make_cpu_backend(2);
  Parameters p(m, *be);
  p.initialize(seed);
  TrainState start;
  if (!resume.empty()) {
    load_weights(resume, p, true);
    load_optimizer_state(resume, p);
    start = read_checkpoint_meta(resume).state;
  }
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = kBatch;
  o.seed = seed;
  o.max_steps = max_steps;
  o.unlabelled = unlabelled;
  Trainer t(m, *be, p, o);
  Run r;
  r.state = t.fit(slice(0, kLabelled, true), Dataset{}, start);
  r.weights = p.download(p.values());
  return r;
}

Model small_cnn(float threshold, int warmup_epochs = 1) {
  Model m = test::model_from(kSmallCnn);
  m.training.semi_supervised.threshold = threshold;
  m.training.semi_supervised.warmup_epochs = warmup_epochs;
  return m;
}

}  // namespace

TEST_CASE(
    "semi-supervised: the unlabelled stream visits every image once a pass, in a seeded "
    "order",
    "[engine][cpu]") {
  const std::vector<int32_t> stream = unlabelled_order(50, 3, 0, 150);
  REQUIRE(stream.size() == 150);
  std::vector<std::vector<int32_t>> passes;
  for (int k = 0; k < 3; ++k) {
    std::vector<int32_t> pass(stream.begin() + 50 * k, stream.begin() + 50 * (k + 1));
    passes.push_back(pass);
    std::sort(pass.begin(), pass.end());
    std::vector<int32_t> all(50);
    std::iota(all.begin(), all.end(), 0);
    CHECK(pass == all);  // each image once
  }
  CHECK(passes[0] != passes[1]);  // a new order each pass
  // Any stretch of the stream is the same wherever it is asked from (an epoch's, or a
  // resumed run's), and the same for the same seed only.
  const std::vector<int32_t> middle = unlabelled_order(50, 3, 37, 64);
  CHECK(middle == std::vector<int32_t>(stream.begin() + 37, stream.begin() + 101));
  CHECK(unlabelled_order(50, 3, 0, 150) == stream);
  CHECK(unlabelled_order(50, 4, 0, 150) != stream);
}

TEST_CASE("semi-supervised: each step takes ratio x batch unlabelled images after the warm-up",
          "[engine][cpu]") {
  REQUIRE_FASHION();
  const Dataset unlabelled = slice(1000, kUnlabelled, false);
  const Run r = train(small_cnn(0.0f), 5, 3, &unlabelled);  // every image above threshold 0
  REQUIRE(r.state.history.size() == 3);
  CHECK(r.state.history[0].above_threshold == -1);  // the warm-up epoch: labelled only
  CHECK(r.state.history[0].pseudo_labels.empty());
  for (int e = 1; e < 3; ++e) {
    const EpochRecord& h = r.state.history[e];
    CAPTURE(e);
    const double taken = std::accumulate(h.pseudo_labels.begin(), h.pseudo_labels.end(), 0.0);
    CHECK(taken == 4 * 2 * kBatch);  // 4 steps of 2 x 16
    CHECK(h.above_threshold == 1.0);
    CHECK(h.unlabelled_loss > 0);
  }
  // The same seed trains the same weights; another seed other ones.
  CHECK(train(small_cnn(0.0f), 5, 3, &unlabelled).weights == r.weights);
  CHECK(train(small_cnn(0.0f), 6, 3, &unlabelled).weights != r.weights);
}

TEST_CASE("semi-supervised: below the threshold an unlabelled image adds no loss",
          "[engine][cpu]") {
  REQUIRE_FASHION();
  const Dataset unlabelled = slice(1000, kUnlabelled, false);
  const Model none_pass = small_cnn(1.0f, 0);  // a 10-class softmax of a young net never is 1
  const Run supervised = train(none_pass, 7, 2, nullptr);
  const Run semi = train(none_pass, 7, 2, &unlabelled);
  for (const EpochRecord& h : semi.state.history) {
    CHECK(h.above_threshold == 0);
    CHECK(h.unlabelled_loss == 0);
  }
  // No pseudo-label, no unlabelled gradient: exactly the labelled run's weights.
  CHECK(semi.weights == supervised.weights);
  CHECK(train(small_cnn(0.0f, 0), 7, 2, &unlabelled).weights != supervised.weights);
}

TEST_CASE("semi-supervised: a run stopped inside a semi-supervised epoch resumes bit-identical",
          "[engine][cpu][checkpoint]") {
  REQUIRE_FASHION();
  const Dataset unlabelled = slice(1000, kUnlabelled, false);
  const Model m = small_cnn(0.0f);  // every image pseudo-labelled: counts in every step
  const Run whole = train(m, 9, 3, &unlabelled);

  const std::string ckpt = test::temp_dir("semi-resume") + "/run.safetensors";
  {  // stopped 2 steps into epoch 2, the first semi-supervised one, and saved
    auto be = make_cpu_backend(2);
    Parameters p(m, *be);
    p.initialize(9);
    TrainOptions o;
    o.epochs = 3;
    o.batch_size = kBatch;
    o.seed = 9;
    o.max_steps = 4 + 2;
    o.unlabelled = &unlabelled;
    Trainer t(m, *be, p, o);
    const TrainState s = t.fit(slice(0, kLabelled, true), Dataset{});
    REQUIRE(s.batch_in_epoch == 2);
    REQUIRE(s.partial_unlabelled.size() == 10 + kStatsSize);
    // Its first two steps' counts, which the resumed epoch must carry on.
    REQUIRE(std::accumulate(s.partial_unlabelled.begin(), s.partial_unlabelled.begin() + 10, 0.0) >
            0);
    save_checkpoint(ckpt, p, {m.to_json(), {}, s});
  }
  const Run resumed = train(m, 9, 3, &unlabelled, -1, ckpt);
  CHECK(resumed.weights == whole.weights);
  REQUIRE(resumed.state.history.size() == 3);
  for (int e = 1; e < 3; ++e) {
    CAPTURE(e);
    CHECK(resumed.state.history[e].pseudo_labels == whole.state.history[e].pseudo_labels);
    CHECK(resumed.state.history[e].unlabelled_loss == whole.state.history[e].unlabelled_loss);
  }
}
