// The op table's entries for the ops around the layers in a training step: losses,
// dropout, the optimizer, reductions, batch assembly (see op_table.h).
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "tests/op_table.h"

namespace plinth::test {
namespace {

// ---- losses ------------------------------------------------------------------------------

// Loss stats start non-zero, so "accumulates into" is tested.
const std::vector<float> kStatsStart = {1.0f, 2.0f, 3.0f, 4.0f};

// With a tie in the first row (the first index wins) and, from 5 rows on, a label out of
// range (no loss, no gradient, still counted). outputs = false: probs and grad null. A batch
// larger than n: the rows are one slice of it.
struct SoftmaxCrossEntropyTest : OpTest {
  int n, classes;
  bool outputs, big;
  int batch;

  SoftmaxCrossEntropyTest(int rows, int k, bool with_outputs, bool large_batch = false,
                          int of_batch = 0)
      : n(rows),
        classes(k),
        outputs(with_outputs),
        big(large_batch),
        batch(of_batch > 0 ? of_batch : rows) {}
  std::string name() const override {
    return fmt::format("softmax_cross_entropy n={} batch={} classes={}{}", n, batch, classes,
                       outputs ? "" : " without probs and grad");
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    const size_t size = size_t(n) * classes;
    std::vector<float> logits = b.random(size, -5, 5);
    std::fill(logits.begin(), logits.begin() + classes, 0.5f);
    std::vector<int32_t> labels(n);
    for (int i = 0; i < n; ++i) labels[i] = (i * 7 + n) % classes;
    if (n > 4) labels[3] = -1;
    b.in("logits", logits);
    b.in("labels", labels);
    b.out("probs", garbage(size), relative(kFp32));
    b.out("grad", garbage(size), relative(kFp32));
    b.out("stats", kStatsStart, stats());
  }
  void run(Backend& be, const Args& a) const override {
    be.softmax_cross_entropy(a.f32("logits"), a.i32("labels"), n, batch, classes,
                             outputs ? a.f32("probs") : nullptr, outputs ? a.f32("grad") : nullptr,
                             a.f32("stats"));
  }
};

// Rows spread from flat to peaked around a threshold of 0.6, a tie in the first row (the
// first index wins); labels start as garbage and counts non-zero ("adds to").
struct PseudoLabelTest : OpTest {
  int n, classes;
  float threshold;

  PseudoLabelTest(int rows, int k, float t) : n(rows), classes(k), threshold(t) {}
  std::string name() const override {
    return fmt::format("pseudo_label n={} classes={} threshold={}", n, classes, threshold);
  }
  void buffers(Buffers& b) const override {
    std::vector<float> logits = b.random(size_t(n) * classes, -1, 1);
    for (int i = 0; i < n; ++i) logits[size_t(i) * classes + (i * 3) % classes] += 0.1f * i;
    std::fill(logits.begin(), logits.begin() + classes, 0.5f);
    std::vector<float> counts(static_cast<size_t>(classes));
    for (int c = 0; c < classes; ++c) counts[c] = float(c + 1);
    b.in("logits", logits);
    b.out("labels", std::vector<int32_t>(n, 77), exact());
    b.out("counts", counts, exact());
  }
  void run(Backend& be, const Args& a) const override {
    be.pseudo_label(a.f32("logits"), n, classes, threshold, a.i32("labels"), a.f32("counts"));
  }
};

// Predictions include the clamped ends 0 and 1; targets are 0/1 and soft.
void prediction_and_target(Buffers& b, size_t size) {
  std::vector<float> p = b.random(size, 0, 1), t = b.random(size, 0, 1);
  for (size_t i = 0; i < size; i += 5) p[i] = (i / 5) % 2 ? 1.0f : 0.0f;
  for (size_t i = 1; i < size; i += 3) t[i] = t[i] > 0.5f ? 1.0f : 0.0f;
  b.in("pred", p);
  b.in("target", t);
}

enum class ReconstructionLoss { mse, bce };

struct ReconstructionLossTest : OpTest {
  ReconstructionLoss loss;
  int n, features;
  bool with_grad, big;
  int batch;

  ReconstructionLossTest(ReconstructionLoss l, int rows, int f, bool grad, bool large_batch = false,
                         int of_batch = 0)
      : loss(l),
        n(rows),
        features(f),
        with_grad(grad),
        big(large_batch),
        batch(of_batch > 0 ? of_batch : rows) {}
  std::string name() const override {
    return fmt::format("{} n={} batch={} features={}{}",
                       loss == ReconstructionLoss::mse ? "mse_loss" : "bce_loss", n, batch,
                       features, with_grad ? "" : " without grad");
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    prediction_and_target(b, size_t(n) * features);
    b.out("grad", garbage(size_t(n) * features), relative(kFp32));
    b.out("stats", kStatsStart, stats());
  }
  void run(Backend& be, const Args& a) const override {
    float* grad = with_grad ? a.f32("grad") : nullptr;
    if (loss == ReconstructionLoss::mse)
      be.mse_loss(a.f32("pred"), a.f32("target"), n, batch, features, grad, a.f32("stats"));
    else
      be.bce_loss(a.f32("pred"), a.f32("target"), n, batch, features, grad, a.f32("stats"));
  }
};

void add_losses(OpList& t) {
  struct Rows {
    int n, classes;
  };
  for (const Rows r : {Rows{1, 10}, Rows{7, 3}, Rows{64, 10}, Rows{300, 37}, Rows{5, 100},
                       Rows{3, 1}, Rows{2000, 10}})
    for (const bool outputs : {true, false})
      t.push_back(std::make_unique<SoftmaxCrossEntropyTest>(r.n, r.classes, outputs));
  t.push_back(std::make_unique<SoftmaxCrossEntropyTest>(kLargeBatch, 10, true, true));
  t.push_back(std::make_unique<SoftmaxCrossEntropyTest>(32, 10, true, false, 256));
  for (const float threshold : {0.0f, 0.6f, 1.0f}) {
    t.push_back(std::make_unique<PseudoLabelTest>(64, 10, threshold));
    t.push_back(std::make_unique<PseudoLabelTest>(5, 3, threshold));
  }

  struct Features {
    int n, features;
  };
  for (const auto loss : {ReconstructionLoss::mse, ReconstructionLoss::bce}) {
    for (const Features f :
         {Features{1, 1}, Features{5, 7}, Features{32, 784}, Features{1000, 300}})
      for (const bool with_grad : {true, false})
        t.push_back(std::make_unique<ReconstructionLossTest>(loss, f.n, f.features, with_grad));
    t.push_back(std::make_unique<ReconstructionLossTest>(loss, kLargeBatch, 784, true, true));
    t.push_back(std::make_unique<ReconstructionLossTest>(loss, 32, 784, true, false, 96));
  }
}

// ---- dropout -----------------------------------------------------------------------------

// Exact: both backends draw the same counter-based mask and multiply once.
struct DropoutTest : OpTest {
  size_t n;
  float rate;
  bool big;

  DropoutTest(size_t size, float r, bool large_batch = false)
      : n(size), rate(r), big(large_batch) {}
  std::string name() const override { return fmt::format("dropout n={} rate {}", n, rate); }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    b.in("x", b.random(n));
    b.in("step", std::vector<int64_t>{5});
    b.out("y", garbage(n), exact());
    b.out("mask", garbage(n), exact());
    b.out("dy", b.random(n), exact());
  }
  void run(Backend& be, const Args& a) const override {
    be.dropout_forward(a.f32("x"), a.f32("y"), a.f32("mask"), n, rate, 42, a.i64("step"));
    be.dropout_backward(a.f32("dy"), a.f32("mask"), a.f32("dy"), n);  // in place
  }
};

void add_dropout(OpList& t) {
  for (const float rate : {0.0f, 0.3f, 0.75f})
    t.push_back(std::make_unique<DropoutTest>(100003, rate));
  t.push_back(std::make_unique<DropoutTest>(
      size_t{kLargeBatch} * kConv1Channels * kConv1Height * kConv1Width, 0.2f, true));
}

// ---- optimizer ---------------------------------------------------------------------------

// Three steps with fresh gradients, the step counter on the device, the learning rate
// along a cosine schedule (scaled by a group multiplier); the second step is skipped by
// its flag, so the counter ends at 2 and that step's gradients never count.
struct OptimizerTest : OpTest {
  std::string label;
  OptimizerSpec spec;
  bool clipped;
  static constexpr size_t kSize = 93322;  // the seed CNN's parameter count
  static constexpr int kSteps = 3;

  OptimizerTest(std::string l, OptimizerSpec s, bool clip)
      : label(std::move(l)), spec(s), clipped(clip) {}
  std::string name() const override {
    return fmt::format("optimizer_update {}{}", label, clipped ? " clipped" : "");
  }
  void buffers(Buffers& b) const override {
    for (int s = 0; s < kSteps; ++s) {
      b.in(fmt::format("grads {}", s), b.random(kSize));
      b.in(fmt::format("skip {}", s), std::vector<float>{s == 1 ? 1.0f : 0.0f});
    }
    b.in("scale", std::vector<float>{0.5f});
    b.out("params", b.random(kSize), relative(kFp32));
    b.out("m", std::vector<float>(kSize, 0.0f), relative(kFp32));
    b.out("v", std::vector<float>(kSize, 0.0f), relative(kFp32));
    b.out("step", std::vector<int64_t>{0}, exact_and_equal_to(std::vector<int64_t>{kSteps - 1}));
  }
  void run(Backend& be, const Args& a) const override {
    const LrSchedule lr{{.kind = ScheduleKind::cosine, .min_lr = 0.001f}, 0, 4, 0.5f};
    for (int s = 0; s < kSteps; ++s) {
      const float* skip = a.f32(fmt::format("skip {}", s));
      be.increment(a.i64("step"), skip);
      be.optimizer_update(spec, lr, a.f32("params"), a.f32(fmt::format("grads {}", s)), a.f32("m"),
                          a.f32("v"), kSize, a.i64("step"), clipped ? a.f32("scale") : nullptr,
                          skip);
    }
  }
};

void add_optimizers(OpList& t) {
  auto spec = [](OptimizerKind kind, float momentum = 0.0f, bool nesterov = false) {
    return OptimizerSpec{.kind = kind,
                         .lr = 0.01f,
                         .momentum = momentum,
                         .nesterov = nesterov,
                         .weight_decay = 0.01f};
  };
  const std::pair<const char*, OptimizerSpec> specs[] = {
      {"sgd", spec(OptimizerKind::sgd)},
      {"sgd momentum", spec(OptimizerKind::sgd, 0.9f)},
      {"sgd nesterov", spec(OptimizerKind::sgd, 0.9f, true)},
      {"adam", spec(OptimizerKind::adam)},
      {"adamw", spec(OptimizerKind::adamw)},
      {"rmsprop", spec(OptimizerKind::rmsprop)},
  };
  for (const auto& [label, s] : specs)
    for (const bool clipped : {false, true})
      t.push_back(std::make_unique<OptimizerTest>(label, s, clipped));
}

// ---- reductions --------------------------------------------------------------------------

struct SumSquaresTest : OpTest {
  size_t n;
  explicit SumSquaresTest(size_t size) : n(size) {}
  std::string name() const override { return fmt::format("sum_squares n={}", n); }
  void buffers(Buffers& b) const override {
    b.in("x", b.random(n));
    b.out("out", std::vector<float>{1.5f}, relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.sum_squares(a.f32("x"), n, a.f32("out"));
  }
};

struct AccumulateTest : OpTest {
  size_t n;
  explicit AccumulateTest(size_t size) : n(size) {}
  std::string name() const override { return fmt::format("accumulate n={}", n); }
  void buffers(Buffers& b) const override {
    b.in("x", b.random(n));
    b.out("y", b.random(n), exact());
  }
  void run(Backend& be, const Args& a) const override { be.accumulate(a.f32("x"), a.f32("y"), n); }
};

// NaN, +inf and -inf every 97 values; the whole stats array is compared exactly.
struct CountNonfiniteTest : OpTest {
  size_t n;
  explicit CountNonfiniteTest(size_t size) : n(size) {}
  std::string name() const override { return fmt::format("count_nonfinite n={}", n); }
  void buffers(Buffers& b) const override {
    std::vector<float> x = b.random(n);
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                              std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
    for (size_t i = 0; i < n; i += 97) x[i] = specials[(i / 97) % 3];
    b.in("x", x);
    b.out("stats", kStatsStart, exact());
  }
  void run(Backend& be, const Args& a) const override {
    be.count_nonfinite(a.f32("x"), n, a.f32("stats"));
  }
};

struct ClipScaleTest : OpTest {
  float sum_sq, max_norm;
  ClipScaleTest(float s, float m) : sum_sq(s), max_norm(m) {}
  std::string name() const override {
    return fmt::format("clip_scale sum_sq {} max_norm {}", sum_sq, max_norm);
  }
  void buffers(Buffers& b) const override {
    b.in("sum_sq", std::vector<float>{sum_sq});
    b.out("scale", std::vector<float>{kGarbage}, relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.clip_scale(a.f32("sum_sq"), max_norm, a.f32("scale"));
  }
};

void add_reductions(OpList& t) {
  for (const size_t n : {size_t{1}, size_t{1000}, (size_t{1} << 20) + 7}) {
    t.push_back(std::make_unique<SumSquaresTest>(n));
    t.push_back(std::make_unique<AccumulateTest>(n));
    t.push_back(std::make_unique<CountNonfiniteTest>(n));
  }
  for (const float sum_sq : {0.0f, 0.25f, 4.0f, 1e6f})
    for (const float max_norm : {1.0f, 5.0f})
      t.push_back(std::make_unique<ClipScaleTest>(sum_sq, max_norm));
}

// ---- data --------------------------------------------------------------------------------

// Normalised samples and labels, each channel with its own mean and std; a sample may
// appear twice in a batch. The order holds two batches and a device batch index picks the
// second.
struct GatherBatchTest : OpTest {
  int count, channels, plane_size, batch;
  bool with_labels, big;

  GatherBatchTest(int images, int c, int plane, int b, bool labels, bool large_batch = false)
      : count(images),
        channels(c),
        plane_size(plane),
        batch(b),
        with_labels(labels),
        big(large_batch) {}
  std::string name() const override {
    return fmt::format("gather_batch {} of {} samples of {}x{}{}", batch, count, channels,
                       plane_size, with_labels ? "" : " without labels");
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    const size_t sample_size = size_t(channels) * plane_size;
    std::vector<uint8_t> images(size_t(count) * sample_size);
    for (size_t i = 0; i < images.size(); ++i)
      images[i] = static_cast<uint8_t>((i * 131 + 7) % 256);
    std::vector<int32_t> labels(count), indices(2 * batch);
    for (int i = 0; i < count; ++i) labels[i] = (i * 3) % 10;
    const std::vector<float> picks = b.random(2 * batch, 0, count);
    for (int i = 0; i < 2 * batch; ++i) indices[i] = static_cast<int32_t>(picks[i]) % count;
    indices[2 * batch - 1] = indices[batch];
    std::vector<float> mean(channels), std(channels);
    for (int c = 0; c < channels; ++c) {
      mean[c] = 0.2860f + 0.1f * c;
      std[c] = 0.3530f - 0.05f * c;
    }
    b.in("images", images);
    b.in("labels", labels);
    b.in("indices", indices);
    b.in("batch index", std::vector<int64_t>{1});
    b.in("mean", mean);
    b.in("std", std);
    b.out("out", garbage(size_t(batch) * sample_size), relative(kFp32));
    b.out("labels out", std::vector<int32_t>(batch, -1), exact());
  }
  void run(Backend& be, const Args& a) const override {
    be.gather_batch(a.u8("images"), with_labels ? a.i32("labels") : nullptr, a.i32("indices"),
                    a.i64("batch index"), batch, channels, plane_size, a.f32("mean"), a.f32("std"),
                    a.f32("out"), with_labels ? a.i32("labels out") : nullptr);
  }
};

// sinf/cosf may differ by an ulp between host and device; bilinear sampling is
// continuous, so outputs differ by about as little (kFp32Conv). Disabled, it is the
// identity, exactly.
// The sample ids hold two batches' worth and a device batch index picks the second.
struct AugmentTest : OpTest {
  int n, c, h, w;
  bool enabled, big;

  AugmentTest(int samples, int channels, int height, int width, bool on, bool large_batch = false)
      : n(samples), c(channels), h(height), w(width), enabled(on), big(large_batch) {}
  std::string name() const override {
    return fmt::format("augment {}x{}x{}x{}{}", n, c, h, w, enabled ? "" : " disabled");
  }
  bool large() const override { return big; }
  size_t size() const { return size_t(n) * c * h * w; }
  void buffers(Buffers& b) const override {
    const std::vector<float> in = b.random(size(), 0, 1);
    std::vector<int32_t> ids(2 * n);
    for (int i = 0; i < 2 * n; ++i) ids[i] = 5 + 118 * i;
    b.in("in", in);
    b.in("sample ids", ids);
    b.in("batch index", std::vector<int64_t>{1});
    Check check = relative(kFp32Conv);
    if (!enabled) check.expected = in;
    b.out("out", garbage(size()), check);
  }
  void run(Backend& be, const Args& a) const override {
    AugmentSpec spec;
    if (enabled)
      spec = {.max_shift = 2.0f, .max_rotate = 15.0f, .max_scale = 0.1f, .horizontal_flip = true};
    be.augment(spec, a.f32("in"), a.f32("out"), n, c, h, w, a.i32("sample ids"),
               a.i64("batch index"), 7);
  }
};

void add_data(OpList& t) {
  for (const bool with_labels : {true, false})
    t.push_back(std::make_unique<GatherBatchTest>(10, 1, 28 * 28 + 1, 6, with_labels));
  t.push_back(std::make_unique<GatherBatchTest>(10, 3, 32 * 32, 5, true));
  t.push_back(std::make_unique<GatherBatchTest>(10000, 1, 28 * 28, kLargeBatch, true, true));

  for (const bool enabled : {true, false}) {
    t.push_back(std::make_unique<AugmentTest>(3, 1, 28, 28, enabled));
    t.push_back(std::make_unique<AugmentTest>(2, 3, 12, 17, enabled));
    t.push_back(std::make_unique<AugmentTest>(1, 1, 1, 1, enabled));
  }
  t.push_back(std::make_unique<AugmentTest>(kLargeBatch, 1, 28, 28, true, true));
}

}  // namespace

void add_training_ops(OpList& t) {
  add_losses(t);
  add_dropout(t);
  add_optimizers(t);
  add_reductions(t);
  add_data(t);
}

}  // namespace plinth::test
