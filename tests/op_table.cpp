// The op table: one struct per op of engine/backend.h (grouped by family, as there), and
// op_table() at the end, which lists the sizes each is tested at. tests/op_harness.h says
// how an entry is run on two backends and compared.
#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/op_harness.h"

namespace plinth::test {
namespace {

// Buffers the op must overwrite start as 13s, so "overwrites" is tested.
constexpr float kGarbage = 13.0f;
// Loss stats start non-zero, so "accumulates into" is tested.
const std::vector<float> kStatsStart = {1.0f, 2.0f, 3.0f, 4.0f};

const char* name_of(Activation act) {
  switch (act) {
    case Activation::relu:
      return "relu";
    case Activation::sigmoid:
      return "sigmoid";
    case Activation::tanh:
      return "tanh";
    default:
      return "none";
  }
}

constexpr Activation kActivations[] = {Activation::none, Activation::relu, Activation::sigmoid,
                                       Activation::tanh};

std::vector<float> garbage(size_t n) { return std::vector<float>(n, kGarbage); }

// ---- memory ------------------------------------------------------------------------------

// Round trips are exact and fill/copy touch only their range: results are known exactly.
struct MemoryTest : OpTest {
  std::string name() const override { return "copy, fill, increment"; }
  void buffers(Buffers& b) const override {
    const std::vector<float> host = b.random(1001);
    std::vector<float> filled(host.size(), 7.0f);
    filled.front() = host.front();
    filled.back() = host.back();
    b.in("source", host);
    b.out("copy", garbage(host.size()), exact_and_equal_to(host));
    b.out("filled", garbage(host.size()), exact_and_equal_to(filled));
    b.out("counter", std::vector<int64_t>{41}, exact_and_equal_to(std::vector<int64_t>{43}));
  }
  void run(Backend& be, const Args& a) const override {
    const size_t bytes = 1001 * sizeof(float);
    be.copy(a.f32("copy"), a.f32("source"), bytes);
    be.copy(a.f32("filled"), a.f32("source"), bytes);
    be.fill(a.f32("filled") + 1, 999, 7.0f);
    be.synchronize();
    be.increment(a.i64("counter"));
    be.increment(a.i64("counter"));
  }
};

// ---- convolution -------------------------------------------------------------------------

std::string conv_name(const ConvShape& s) {
  return fmt::format("n={} c={} {}x{} k={} kernel {}x{} stride {} pad {}", s.n, s.c, s.h, s.w, s.k,
                     s.r, s.s, s.stride, s.pad);
}

std::string options_name(const CudaOptions& o) {
  return fmt::format("[{}{}{}]", o.native_conv ? "native" : "cudnn",
                     o.deterministic ? " deterministic" : "", o.allow_tf32 ? " tf32" : "");
}

// Forward, backward-data and backward-filter of one shape, as a layer runs them.
struct Conv2dTest : OpTest {
  ConvShape shape;
  bool bias;
  Activation act;
  CudaOptions options;
  // kFp32Conv: long dot products summed by different algorithms; kTf32 under TF32.
  double tolerance;

  Conv2dTest(ConvShape s, bool b, Activation a, CudaOptions o)
      : shape(s), bias(b), act(a), options(o), tolerance(o.allow_tf32 ? kTf32 : kFp32Conv) {}
  std::string name() const override {
    return fmt::format("conv2d {} {} {} {}", conv_name(shape), bias ? "bias" : "no bias",
                       name_of(act), options_name(options));
  }
  CudaOptions cuda_options() const override { return options; }
  void buffers(Buffers& b) const override {
    const ConvShape& s = shape;
    b.in("x", b.random(s.input_elements()));
    b.in("w", b.random(s.weight_elements(), -0.5, 0.5));
    b.in("b", b.random(s.k));
    b.in("dy", b.random(s.output_elements()));
    b.out("y", garbage(s.output_elements()), relative(tolerance));
    b.out("dx", garbage(s.input_elements()), relative(tolerance));
    b.out("dw", garbage(s.weight_elements()), relative(tolerance));
  }
  void run(Backend& be, const Args& a) const override {
    be.conv2d_prepare(shape);
    be.conv2d_forward(shape, a.f32("x"), a.f32("w"), bias ? a.f32("b") : nullptr, a.f32("y"), act);
    be.conv2d_backward_data(shape, a.f32("dy"), a.f32("w"), a.f32("dx"));
    be.conv2d_backward_filter(shape, a.f32("x"), a.f32("dy"), a.f32("dw"));
  }
};

// A shape conv2d_prepare() never saw is prepared on first use, on a new backend (the
// filter gradient, whose native workspace is the largest, first).
struct Conv2dUnpreparedTest : OpTest {
  ConvShape shape;
  CudaOptions options;

  Conv2dUnpreparedTest(ConvShape s, CudaOptions o) : shape(s), options(o) {}
  std::string name() const override {
    return fmt::format("conv2d_backward_filter unprepared {} {}", conv_name(shape),
                       options_name(options));
  }
  CudaOptions cuda_options() const override { return options; }
  bool fresh_backend() const override { return true; }
  void buffers(Buffers& b) const override {
    b.in("x", b.random(shape.input_elements()));
    b.in("dy", b.random(shape.output_elements()));
    b.out("dw", std::vector<float>(shape.weight_elements(), 0.0f), relative(kFp32Conv));
  }
  void run(Backend& be, const Args& a) const override {
    be.conv2d_backward_filter(shape, a.f32("x"), a.f32("dy"), a.f32("dw"));
  }
};

// ---- dense -------------------------------------------------------------------------------

// Padded leading dimensions: the padding of C must come back untouched, and is compared
// with the rest.
struct GemmTest : OpTest {
  int m, n, k;
  bool trans_a, trans_b;
  float beta;
  bool tf32;

  GemmTest(int rows, int cols, int depth, bool ta, bool tb, float b, bool tf)
      : m(rows), n(cols), k(depth), trans_a(ta), trans_b(tb), beta(b), tf32(tf) {}

  std::string name() const override {
    return fmt::format("gemm m={} n={} k={} {}{} beta {} {}", m, n, k, trans_a ? "A^T" : "A",
                       trans_b ? "B^T" : "B", beta, tf32 ? "tf32" : "fp32");
  }
  CudaOptions cuda_options() const override { return {.allow_tf32 = tf32}; }
  // Row-major storage: op(A) is m x k, so A is stored k x m when transposed.
  int a_rows() const { return trans_a ? k : m; }
  int lda() const { return (trans_a ? m : k) + 3; }
  int b_rows() const { return trans_b ? n : k; }
  int ldb() const { return (trans_b ? k : n) + 1; }
  int ldc() const { return n + 2; }
  void buffers(Buffers& b) const override {
    b.in("a", b.random(size_t(a_rows()) * lda()));
    b.in("b", b.random(size_t(b_rows()) * ldb()));
    b.out("c", b.random(size_t(m) * ldc()), relative(tf32 ? kTf32 : kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.gemm(trans_a, trans_b, m, n, k, 0.5f, a.f32("a"), lda(), a.f32("b"), ldb(), beta, a.f32("c"),
            ldc());
  }
};

// ---- bias --------------------------------------------------------------------------------

struct BiasSize {
  int n, c, spatial;
  size_t elements() const { return size_t(n) * c * spatial; }
  std::string str() const { return fmt::format("n={} c={} spatial={}", n, c, spatial); }
};

struct BiasActivationForwardTest : OpTest {
  BiasSize size;
  Activation act;
  bool with_bias;

  BiasActivationForwardTest(BiasSize s, Activation a, bool b) : size(s), act(a), with_bias(b) {}
  std::string name() const override {
    return fmt::format("bias_activation_forward {} {} {}", size.str(), name_of(act),
                       with_bias ? "bias" : "no bias");
  }
  void buffers(Buffers& b) const override {
    b.in("b", b.random(size.c));
    b.out("y", b.random(size.elements(), -3, 3), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.bias_activation_forward(a.f32("y"), with_bias ? a.f32("b") : nullptr, size.n, size.c,
                               size.spatial, act);
  }
};

struct BiasBackwardTest : OpTest {
  BiasSize size;
  bool big;

  BiasBackwardTest(BiasSize s, bool large_batch = false) : size(s), big(large_batch) {}
  std::string name() const override { return "bias_backward " + size.str(); }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    b.in("dy", b.random(size.elements()));
    b.out("db", garbage(size.c), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.bias_backward(a.f32("dy"), a.f32("db"), size.n, size.c, size.spatial);
  }
};

// Out of place, then in place (dx = dy), each with its own db.
struct BiasActivationBackwardTest : OpTest {
  BiasSize size;
  Activation act;
  bool big;

  BiasActivationBackwardTest(BiasSize s, Activation a, bool large_batch = false)
      : size(s), act(a), big(large_batch) {}
  std::string name() const override {
    return fmt::format("bias_activation_backward {} {}", size.str(), name_of(act));
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    b.in("y", b.random(size.elements(), -3, 3));
    b.out("dy", b.random(size.elements()), relative(kFp32));
    b.out("dx", garbage(size.elements()), relative(kFp32));
    b.out("db", garbage(size.c), relative(kFp32));
    b.out("db in place", garbage(size.c), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    const auto [n, c, spatial] = size;
    be.bias_activation_backward(act, a.f32("y"), a.f32("dy"), a.f32("dx"), a.f32("db"), n, c,
                                spatial);
    be.bias_activation_backward(act, a.f32("y"), a.f32("dy"), a.f32("dy"), a.f32("db in place"), n,
                                c, spatial);
  }
};

// ---- activations -------------------------------------------------------------------------

// Backward from each backend's own forward output, so only the backward differs; then the
// backward again in place.
struct ActivationTest : OpTest {
  size_t n;
  Activation act;

  ActivationTest(size_t size, Activation a) : n(size), act(a) {}
  std::string name() const override {
    return fmt::format("activation_forward/backward n={} {}", n, name_of(act));
  }
  void buffers(Buffers& b) const override {
    b.in("x", b.random(n, -4, 4));
    b.out("y", garbage(n), relative(kFp32));
    b.out("dy", b.random(n), relative(kFp32));
    b.out("dx", garbage(n), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.activation_forward(act, a.f32("x"), a.f32("y"), n);
    be.activation_backward(act, a.f32("y"), a.f32("dy"), a.f32("dx"), n);
    be.activation_backward(act, a.f32("y"), a.f32("dy"), a.f32("dy"), n);
  }
};

// ---- pooling -----------------------------------------------------------------------------

// Forward values and argmax are comparisons only, so they are exact.
struct MaxpoolTest : OpTest {
  PoolShape shape;
  bool big;

  MaxpoolTest(PoolShape s, bool large_batch = false) : shape(s), big(large_batch) {}
  std::string name() const override {
    return fmt::format("maxpool n={} c={} {}x{} window {} stride {}", shape.n, shape.c, shape.h,
                       shape.w, shape.size, shape.stride);
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    const size_t in = shape.input_elements(), out = shape.output_elements();
    b.in("x", b.distinct(in));
    b.in("dy", b.random(out));
    b.out("y", garbage(out), exact());
    b.out("argmax", std::vector<int32_t>(out, -1), exact());
    b.out("dx", garbage(in), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.maxpool_forward(shape, a.f32("x"), a.f32("y"), a.i32("argmax"));
    be.maxpool_backward(shape, a.f32("dy"), a.i32("argmax"), a.f32("dx"));
  }
};

// ---- losses ------------------------------------------------------------------------------

// With a tie in the first row (the first index wins) and, from 5 rows on, a label out of
// range (no loss, no gradient, still counted). outputs = false: probs and grad null.
struct SoftmaxCrossEntropyTest : OpTest {
  int n, classes;
  bool outputs, big;

  SoftmaxCrossEntropyTest(int rows, int k, bool with_outputs, bool large_batch = false)
      : n(rows), classes(k), outputs(with_outputs), big(large_batch) {}
  std::string name() const override {
    return fmt::format("softmax_cross_entropy n={} classes={}{}", n, classes,
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
    be.softmax_cross_entropy(a.f32("logits"), a.i32("labels"), n, classes,
                             outputs ? a.f32("probs") : nullptr, outputs ? a.f32("grad") : nullptr,
                             a.f32("stats"));
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

  ReconstructionLossTest(ReconstructionLoss l, int rows, int f, bool grad, bool large_batch = false)
      : loss(l), n(rows), features(f), with_grad(grad), big(large_batch) {}
  std::string name() const override {
    return fmt::format("{} n={} features={}{}",
                       loss == ReconstructionLoss::mse ? "mse_loss" : "bce_loss", n, features,
                       with_grad ? "" : " without grad");
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
      be.mse_loss(a.f32("pred"), a.f32("target"), n, features, grad, a.f32("stats"));
    else
      be.bce_loss(a.f32("pred"), a.f32("target"), n, features, grad, a.f32("stats"));
  }
};

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

// ---- optimizer ---------------------------------------------------------------------------

// Three steps with fresh gradients, the step counter on the device.
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
    for (int s = 0; s < kSteps; ++s) b.in(fmt::format("grads {}", s), b.random(kSize));
    b.in("scale", std::vector<float>{0.5f});
    b.out("params", b.random(kSize), relative(kFp32));
    b.out("m", std::vector<float>(kSize, 0.0f), relative(kFp32));
    b.out("v", std::vector<float>(kSize, 0.0f), relative(kFp32));
    b.out("step", std::vector<int64_t>{0}, exact_and_equal_to(std::vector<int64_t>{kSteps}));
  }
  void run(Backend& be, const Args& a) const override {
    for (int s = 0; s < kSteps; ++s) {
      be.increment(a.i64("step"));
      be.optimizer_update(spec, a.f32("params"), a.f32(fmt::format("grads {}", s)), a.f32("m"),
                          a.f32("v"), kSize, a.i64("step"), clipped ? a.f32("scale") : nullptr);
    }
  }
};

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

// ---- data --------------------------------------------------------------------------------

// Normalised samples and labels; a sample may appear twice in a batch.
struct GatherBatchTest : OpTest {
  int count, sample_size, batch;
  bool with_labels, big;

  GatherBatchTest(int images, int size, int b, bool labels, bool large_batch = false)
      : count(images), sample_size(size), batch(b), with_labels(labels), big(large_batch) {}
  std::string name() const override {
    return fmt::format("gather_batch {} of {} samples of {}{}", batch, count, sample_size,
                       with_labels ? "" : " without labels");
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    std::vector<uint8_t> images(size_t(count) * sample_size);
    for (size_t i = 0; i < images.size(); ++i)
      images[i] = static_cast<uint8_t>((i * 131 + 7) % 256);
    std::vector<int32_t> labels(count), indices(batch);
    for (int i = 0; i < count; ++i) labels[i] = (i * 3) % 10;
    const std::vector<float> picks = b.random(batch, 0, count);
    for (int i = 0; i < batch; ++i) indices[i] = static_cast<int32_t>(picks[i]) % count;
    indices[batch - 1] = indices[0];
    b.in("images", images);
    b.in("labels", labels);
    b.in("indices", indices);
    b.out("out", garbage(size_t(batch) * sample_size), relative(kFp32));
    b.out("labels out", std::vector<int32_t>(batch, -1), exact());
  }
  void run(Backend& be, const Args& a) const override {
    be.gather_batch(a.u8("images"), with_labels ? a.i32("labels") : nullptr, a.i32("indices"),
                    batch, sample_size, 0.2860f, 0.3530f, a.f32("out"),
                    with_labels ? a.i32("labels out") : nullptr);
  }
};

// sinf/cosf may differ by an ulp between host and device; bilinear sampling is
// continuous, so outputs differ by about as little (kFp32Conv). Disabled, it is the
// identity, exactly.
struct AugmentTest : OpTest {
  int n, c, h, w;
  bool enabled;

  AugmentTest(int samples, int channels, int height, int width, bool on)
      : n(samples), c(channels), h(height), w(width), enabled(on) {}
  std::string name() const override {
    return fmt::format("augment {}x{}x{}x{}{}", n, c, h, w, enabled ? "" : " disabled");
  }
  size_t size() const { return size_t(n) * c * h * w; }
  void buffers(Buffers& b) const override {
    const std::vector<float> in = b.random(size(), 0, 1);
    std::vector<int32_t> ids(n);
    for (int i = 0; i < n; ++i) ids[i] = 5 + 118 * i;
    b.in("in", in);
    b.in("sample ids", ids);
    Check check = relative(kFp32Conv);
    if (!enabled) check.expected = in;
    b.out("out", garbage(size()), check);
  }
  void run(Backend& be, const Args& a) const override {
    AugmentSpec spec;
    if (enabled)
      spec = {.max_shift = 2.0f, .max_rotate = 15.0f, .max_scale = 0.1f, .horizontal_flip = true};
    be.augment(spec, a.f32("in"), a.f32("out"), n, c, h, w, a.i32("sample ids"), 7);
  }
};

// ---- the table ---------------------------------------------------------------------------

// The seed CNN's conv1 output at batch 4096: 88.6 million values, past 2^26 elements per
// launch and far past the kernels' block caps.
constexpr BiasSize kConv1AtBatch4096 = {4096, 32, 26 * 26};

void add_convolutions(std::vector<std::unique_ptr<OpTest>>& t) {
  const std::pair<ConvShape, std::pair<bool, Activation>> shapes[] = {
      // the seed CNN's first layer: one input channel (the native path's direct kernel)
      {{.n = 1, .c = 1, .h = 28, .w = 28, .k = 8, .r = 3, .s = 3}, {true, Activation::relu}},
      {{.n = 3, .c = 5, .h = 13, .w = 11, .k = 7, .r = 3, .s = 3, .stride = 2, .pad = 1},
       {true, Activation::tanh}},
      {{.n = 2, .c = 4, .h = 9, .w = 10, .k = 6, .r = 5, .s = 3, .pad = 2},
       {false, Activation::none}},
      {{.n = 2, .c = 16, .h = 12, .w = 12, .k = 32, .r = 3, .s = 3}, {true, Activation::sigmoid}},
      {{.n = 1, .c = 3, .h = 7, .w = 7, .k = 5, .r = 1, .s = 1}, {true, Activation::none}},
      {{.n = 4, .c = 2, .h = 8, .w = 8, .k = 3, .r = 2, .s = 2, .stride = 2},
       {false, Activation::relu}},
      // stride 3: the last input row and column are in no window, so dx must be 0 there
      {{.n = 2, .c = 3, .h = 6, .w = 7, .k = 4, .r = 3, .s = 3, .stride = 3, .pad = 1},
       {true, Activation::relu}},
      // a long reduction for the filter gradient (split across blocks natively)
      {{.n = 8, .c = 8, .h = 20, .w = 20, .k = 16, .r = 3, .s = 3, .pad = 1},
       {true, Activation::relu}},
  };
  const CudaOptions variants[] = {
      {}, {.deterministic = true}, {.native_conv = true}, {.allow_tf32 = true}};
  for (const CudaOptions& options : variants)
    for (const auto& [shape, bias_act] : shapes)
      t.push_back(std::make_unique<Conv2dTest>(shape, bias_act.first, bias_act.second, options));
  const ConvShape unprepared{.n = 8, .c = 8, .h = 20, .w = 20, .k = 16, .r = 3, .s = 3, .pad = 1};
  for (const bool native : {false, true})
    t.push_back(
        std::make_unique<Conv2dUnpreparedTest>(unprepared, CudaOptions{.native_conv = native}));
}

void add_dense_and_bias(std::vector<std::unique_ptr<OpTest>>& t) {
  struct Dims {
    int m, n, k;
  };
  for (const bool tf32 : {false, true})
    for (const Dims d : {Dims{1, 1, 1}, Dims{7, 5, 3}, Dims{33, 17, 65}, Dims{64, 10, 576}})
      for (const bool ta : {false, true})
        for (const bool tb : {false, true})
          for (const float beta : {0.0f, 2.0f})
            t.push_back(std::make_unique<GemmTest>(d.m, d.n, d.k, ta, tb, beta, tf32));

  const BiasSize sizes[] = {{1, 1, 1}, {3, 5, 7}, {64, 10, 1}, {2, 32, 169}, {5, 3, 1000}};
  for (const BiasSize s : sizes) {
    for (const Activation act : kActivations) {
      for (const bool with_bias : {false, true})
        t.push_back(std::make_unique<BiasActivationForwardTest>(s, act, with_bias));
      t.push_back(std::make_unique<BiasActivationBackwardTest>(s, act));
    }
    t.push_back(std::make_unique<BiasBackwardTest>(s));
  }
  t.push_back(std::make_unique<BiasBackwardTest>(kConv1AtBatch4096, true));
  t.push_back(
      std::make_unique<BiasActivationBackwardTest>(kConv1AtBatch4096, Activation::relu, true));
}

void add_elementwise_and_pooling(std::vector<std::unique_ptr<OpTest>>& t) {
  for (const size_t n : {size_t{1}, size_t{1000}, size_t{70001}})
    for (const Activation act : kActivations) t.push_back(std::make_unique<ActivationTest>(n, act));

  for (const PoolShape s : {PoolShape{.n = 2, .c = 3, .h = 8, .w = 8},
                            PoolShape{.n = 1, .c = 2, .h = 7, .w = 9},  // odd: last row/col unused
                            PoolShape{.n = 2, .c = 2, .h = 9, .w = 9, .size = 3, .stride = 2},
                            PoolShape{.n = 1, .c = 1, .h = 5, .w = 6, .size = 3, .stride = 1},
                            PoolShape{.n = 3, .c = 1, .h = 4, .w = 4, .size = 4, .stride = 4}})
    t.push_back(std::make_unique<MaxpoolTest>(s));
  t.push_back(std::make_unique<MaxpoolTest>(PoolShape{.n = 4096, .c = 32, .h = 26, .w = 26}, true));

  for (const float rate : {0.0f, 0.3f, 0.75f})
    t.push_back(std::make_unique<DropoutTest>(100003, rate));
  t.push_back(std::make_unique<DropoutTest>(kConv1AtBatch4096.elements(), 0.2f, true));
}

void add_losses(std::vector<std::unique_ptr<OpTest>>& t) {
  struct Rows {
    int n, classes;
  };
  for (const Rows r : {Rows{1, 10}, Rows{7, 3}, Rows{64, 10}, Rows{300, 37}, Rows{5, 100},
                       Rows{3, 1}, Rows{2000, 10}})
    for (const bool outputs : {true, false})
      t.push_back(std::make_unique<SoftmaxCrossEntropyTest>(r.n, r.classes, outputs));
  t.push_back(std::make_unique<SoftmaxCrossEntropyTest>(4096, 10, true, true));

  struct Features {
    int n, features;
  };
  for (const auto loss : {ReconstructionLoss::mse, ReconstructionLoss::bce}) {
    for (const Features f :
         {Features{1, 1}, Features{5, 7}, Features{32, 784}, Features{1000, 300}})
      for (const bool with_grad : {true, false})
        t.push_back(std::make_unique<ReconstructionLossTest>(loss, f.n, f.features, with_grad));
    t.push_back(std::make_unique<ReconstructionLossTest>(loss, 4096, 784, true, true));
  }
}

void add_optimizers(std::vector<std::unique_ptr<OpTest>>& t) {
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

void add_reductions_and_data(std::vector<std::unique_ptr<OpTest>>& t) {
  for (const size_t n : {size_t{1}, size_t{1000}, (size_t{1} << 20) + 7}) {
    t.push_back(std::make_unique<SumSquaresTest>(n));
    t.push_back(std::make_unique<AccumulateTest>(n));
    t.push_back(std::make_unique<CountNonfiniteTest>(n));
  }
  for (const float sum_sq : {0.0f, 0.25f, 4.0f, 1e6f})
    for (const float max_norm : {1.0f, 5.0f})
      t.push_back(std::make_unique<ClipScaleTest>(sum_sq, max_norm));

  for (const bool with_labels : {true, false})
    t.push_back(std::make_unique<GatherBatchTest>(10, 28 * 28 + 1, 6, with_labels));
  t.push_back(std::make_unique<GatherBatchTest>(10000, 28 * 28, 4096, true, true));

  for (const bool enabled : {true, false}) {
    t.push_back(std::make_unique<AugmentTest>(3, 1, 28, 28, enabled));
    t.push_back(std::make_unique<AugmentTest>(2, 3, 12, 17, enabled));
    t.push_back(std::make_unique<AugmentTest>(1, 1, 1, 1, enabled));
  }
}

}  // namespace

std::vector<std::unique_ptr<OpTest>> op_table() {
  std::vector<std::unique_ptr<OpTest>> t;
  t.push_back(std::make_unique<MemoryTest>());
  add_convolutions(t);
  add_dense_and_bias(t);
  add_elementwise_and_pooling(t);
  add_losses(t);
  add_optimizers(t);
  add_reductions_and_data(t);
  return t;
}

}  // namespace plinth::test
