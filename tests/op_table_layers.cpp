// The op table's entries for the ops of the layers' forward and backward passes:
// convolution, GEMM, bias, activations, pooling (see op_table.h).
#include <fmt/format.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/op_table.h"

namespace plinth::test {
namespace {

// ---- convolution -------------------------------------------------------------------------

std::string conv_name(const ConvShape& s) {
  return fmt::format("n={} c={} {}x{} k={} kernel {}x{} stride {} pad {}", s.n, s.c, s.h, s.w, s.k,
                     s.r, s.s, s.stride, s.pad);
}

std::string options_name(const CudaOptions& o) {
  return fmt::format("[{}{} {}]", o.native_conv ? "native" : "cudnn",
                     o.deterministic ? " deterministic" : "", precision_name(o.precision));
}

// The tolerance of a GPU result in a precision: the native convolution is fp32 whatever
// the precision, so it gets fp32's.
double tolerance_of(const CudaOptions& o, double fp32) {
  if (o.native_conv || o.precision == Precision::fp32) return fp32;
  return o.precision == Precision::tf32 ? kTf32 : kBf16;
}

// Forward, backward-data and backward-filter of one shape, as a layer runs them.
struct Conv2dTest : OpTest {
  ConvShape shape;
  bool bias;
  Activation act;
  CudaOptions options;
  // kFp32Conv: long dot products summed by different algorithms; coarser in TF32 or BF16.
  double tolerance;
  bool big;

  Conv2dTest(ConvShape s, bool b, Activation a, CudaOptions o, bool large_batch = false)
      : shape(s),
        bias(b),
        act(a),
        options(o),
        tolerance(tolerance_of(o, kFp32Conv)),
        big(large_batch) {}
  std::string name() const override {
    return fmt::format("conv2d {} {} {} {}", conv_name(shape), bias ? "bias" : "no bias",
                       name_of(act), options_name(options));
  }
  CudaOptions cuda_options() const override { return options; }
  bool large() const override { return big; }
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

void add_convolutions(OpList& t) {
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
  const CudaOptions variants[] = {{},
                                  {.deterministic = true},
                                  {.native_conv = true},
                                  {.precision = Precision::tf32},
                                  {.precision = Precision::bf16}};
  for (const CudaOptions& options : variants)
    for (const auto& [shape, bias_act] : shapes)
      t.push_back(std::make_unique<Conv2dTest>(shape, bias_act.first, bias_act.second, options));
  // The seed CNN's convolutions at batch 4096: conv1's 88.6 million outputs, conv2's long
  // filter-gradient reduction.
  for (const ConvShape& shape :
       {ConvShape{.n = kLargeBatch, .c = 1, .h = 28, .w = 28, .k = 32, .r = 3, .s = 3},
        ConvShape{.n = kLargeBatch, .c = 32, .h = 13, .w = 13, .k = 64, .r = 3, .s = 3}})
    t.push_back(std::make_unique<Conv2dTest>(shape, true, Activation::relu, CudaOptions{}, true));
  const ConvShape unprepared{.n = 8, .c = 8, .h = 20, .w = 20, .k = 16, .r = 3, .s = 3, .pad = 1};
  for (const bool native : {false, true})
    t.push_back(
        std::make_unique<Conv2dUnpreparedTest>(unprepared, CudaOptions{.native_conv = native}));
}

// ---- dense -------------------------------------------------------------------------------

// Padded leading dimensions: the padding of C must come back untouched, and is compared
// with the rest.
struct GemmTest : OpTest {
  int m, n, k;
  bool trans_a, trans_b;
  float beta;
  Precision precision;
  bool big;

  GemmTest(int rows, int cols, int depth, bool ta, bool tb, float b, Precision p,
           bool large_batch = false)
      : m(rows),
        n(cols),
        k(depth),
        trans_a(ta),
        trans_b(tb),
        beta(b),
        precision(p),
        big(large_batch) {}

  std::string name() const override {
    return fmt::format("gemm m={} n={} k={} {}{} beta {} {}", m, n, k, trans_a ? "A^T" : "A",
                       trans_b ? "B^T" : "B", beta, precision_name(precision));
  }
  CudaOptions cuda_options() const override { return {.precision = precision}; }
  bool large() const override { return big; }
  // Row-major storage: op(A) is m x k, so A is stored k x m when transposed.
  int a_rows() const { return trans_a ? k : m; }
  int lda() const { return (trans_a ? m : k) + 3; }
  int b_rows() const { return trans_b ? n : k; }
  int ldb() const { return (trans_b ? k : n) + 1; }
  int ldc() const { return n + 2; }
  void buffers(Buffers& b) const override {
    b.in("a", b.random(size_t(a_rows()) * lda()));
    b.in("b", b.random(size_t(b_rows()) * ldb()));
    b.out("c", b.random(size_t(m) * ldc()), relative(tolerance_of(cuda_options(), kFp32)));
  }
  void run(Backend& be, const Args& a) const override {
    be.gemm(trans_a, trans_b, m, n, k, 0.5f, a.f32("a"), lda(), a.f32("b"), ldb(), beta, a.f32("c"),
            ldc());
  }
};

void add_gemm(OpList& t) {
  struct Dims {
    int m, n, k;
  };
  for (const Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
    for (const Dims d : {Dims{1, 1, 1}, Dims{7, 5, 3}, Dims{33, 17, 65}, Dims{64, 10, 576}})
      for (const bool ta : {false, true})
        for (const bool tb : {false, true})
          for (const float beta : {0.0f, 2.0f})
            t.push_back(std::make_unique<GemmTest>(d.m, d.n, d.k, ta, tb, beta, p));
  // The seed CNN's fc1 at batch 4096: forward, weight gradient and input gradient.
  t.push_back(
      std::make_unique<GemmTest>(kLargeBatch, 64, 576, false, true, 0.0f, Precision::fp32, true));
  t.push_back(
      std::make_unique<GemmTest>(64, 576, kLargeBatch, true, false, 0.0f, Precision::fp32, true));
  t.push_back(
      std::make_unique<GemmTest>(kLargeBatch, 576, 64, false, false, 0.0f, Precision::fp32, true));
}

// ---- bias --------------------------------------------------------------------------------

struct BiasSize {
  int n, c, spatial;
  size_t elements() const { return size_t(n) * c * spatial; }
  std::string str() const { return fmt::format("n={} c={} spatial={}", n, c, spatial); }
};

struct BiasActivationForwardTest : OpTest {
  BiasSize size;
  Activation act;
  bool with_bias, big;

  BiasActivationForwardTest(BiasSize s, Activation a, bool b, bool large_batch = false)
      : size(s), act(a), with_bias(b), big(large_batch) {}
  std::string name() const override {
    return fmt::format("bias_activation_forward {} {} {}", size.str(), name_of(act),
                       with_bias ? "bias" : "no bias");
  }
  bool large() const override { return big; }
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

void add_bias(OpList& t) {
  const BiasSize kConv1 = {kLargeBatch, kConv1Channels, kConv1Height * kConv1Width};
  const BiasSize sizes[] = {{1, 1, 1}, {3, 5, 7}, {64, 10, 1}, {2, 32, 169}, {5, 3, 1000}};
  for (const BiasSize s : sizes) {
    for (const Activation act : kActivations) {
      for (const bool with_bias : {false, true})
        t.push_back(std::make_unique<BiasActivationForwardTest>(s, act, with_bias));
      t.push_back(std::make_unique<BiasActivationBackwardTest>(s, act));
    }
    t.push_back(std::make_unique<BiasBackwardTest>(s));
  }
  t.push_back(std::make_unique<BiasActivationForwardTest>(kConv1, Activation::relu, true, true));
  t.push_back(std::make_unique<BiasBackwardTest>(kConv1, true));
  t.push_back(std::make_unique<BiasActivationBackwardTest>(kConv1, Activation::relu, true));
}

// ---- activations -------------------------------------------------------------------------

// Backward from each backend's own forward output, so only the backward differs; then the
// backward again in place.
struct ActivationTest : OpTest {
  size_t n;
  Activation act;
  bool big;

  ActivationTest(size_t size, Activation a, bool large_batch = false)
      : n(size), act(a), big(large_batch) {}
  std::string name() const override {
    return fmt::format("activation_forward/backward n={} {}", n, name_of(act));
  }
  bool large() const override { return big; }
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

void add_activations(OpList& t) {
  for (const size_t n : {size_t{1}, size_t{1000}, size_t{70001}})
    for (const Activation act : kActivations) t.push_back(std::make_unique<ActivationTest>(n, act));
  t.push_back(std::make_unique<ActivationTest>(
      size_t{kLargeBatch} * kConv1Channels * kConv1Height * kConv1Width, Activation::relu, true));
}

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

// The fused backward of a ReLU and its max pool: dx exactly (a selection and the same
// additions), the bias gradient to fp32 summation order. Some pooled maxima are exactly 0
// (a ReLU's output), whose gradient must not pass.
struct MaxpoolReluBackwardTest : OpTest {
  PoolShape shape;
  bool with_bias, big;

  MaxpoolReluBackwardTest(PoolShape s, bool bias, bool large_batch = false)
      : shape(s), with_bias(bias), big(large_batch) {}
  std::string name() const override {
    return fmt::format("maxpool_relu_backward n={} c={} {}x{} window {} stride {}{}", shape.n,
                       shape.c, shape.h, shape.w, shape.size, shape.stride,
                       with_bias ? "" : " without db");
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    const size_t in = shape.input_elements(), out = shape.output_elements();
    std::vector<float> x = b.distinct(in);
    for (float& v : x) v = v > 0.0f ? v : 0.0f;  // a ReLU's output: ties at 0
    b.in("x", x);
    b.in("dy", b.random(out));
    b.out("y", garbage(out), exact());
    b.out("argmax", std::vector<int32_t>(out, -1), exact());
    b.out("dx", garbage(in), exact());
    b.out("db", garbage(shape.c), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.maxpool_forward(shape, a.f32("x"), a.f32("y"), a.i32("argmax"));
    be.maxpool_relu_backward(shape, a.f32("dy"), a.i32("argmax"), a.f32("y"), a.f32("dx"),
                             with_bias ? a.f32("db") : nullptr);
  }
};

// A ReLU convolution and the max pool over it, forward and backward in one: the pool's output
// and every gradient to the convolution's tolerance. Inputs apart enough that both backends'
// maxima are the same positions (argmax exactly).
struct ConvMaxpoolTest : OpTest {
  ConvShape conv;
  PoolShape pool;

  ConvMaxpoolTest(ConvShape c, int size, int stride)
      : conv(c), pool{c.n, c.k, c.out_h(), c.out_w(), size, stride} {}
  std::string name() const override {
    return fmt::format("conv2d_maxpool {} pool {} stride {}", conv_name(conv), pool.size,
                       pool.stride);
  }
  void buffers(Buffers& b) const override {
    b.in("x", b.distinct(conv.input_elements()));
    b.in("w", b.random(conv.weight_elements(), -0.5, 0.5));
    b.in("b", b.random(conv.k));
    b.in("dy", b.random(pool.output_elements()));
    b.in("scratch", garbage(conv.output_elements()));  // the op's to use; not compared
    b.out("y", garbage(pool.output_elements()), relative(kFp32Conv));
    b.out("argmax", std::vector<int32_t>(pool.output_elements(), -1), exact());
    b.out("dx", garbage(conv.input_elements()), relative(kFp32Conv));
    b.out("dw", garbage(conv.weight_elements()), relative(kFp32Conv));
    b.out("db", garbage(conv.k), relative(kFp32Conv));
  }
  void run(Backend& be, const Args& a) const override {
    be.conv2d_prepare(conv);
    be.conv2d_maxpool_forward(conv, pool, a.f32("x"), a.f32("w"), a.f32("b"), Activation::relu,
                              a.f32("scratch"), a.f32("y"), a.i32("argmax"));
    be.conv2d_maxpool_relu_backward(conv, pool, a.f32("x"), a.f32("w"), a.f32("dy"),
                                    a.i32("argmax"), a.f32("y"), a.f32("scratch"), a.f32("dx"),
                                    a.f32("dw"), a.f32("db"));
  }
};

void add_pooling(OpList& t) {
  t.push_back(std::make_unique<ConvMaxpoolTest>(
      ConvShape{.n = 3, .c = 1, .h = 28, .w = 28, .k = 8, .r = 3, .s = 3}, 2, 2));
  t.push_back(std::make_unique<ConvMaxpoolTest>(
      ConvShape{.n = 4, .c = 6, .h = 13, .w = 13, .k = 10, .r = 3, .s = 3}, 2, 2));
  for (const PoolShape s : {PoolShape{.n = 2, .c = 3, .h = 8, .w = 8},
                            PoolShape{.n = 1, .c = 2, .h = 7, .w = 9},  // odd: last row/col unused
                            PoolShape{.n = 2, .c = 2, .h = 9, .w = 9, .size = 3, .stride = 2},
                            PoolShape{.n = 1, .c = 1, .h = 5, .w = 6, .size = 3, .stride = 1},
                            PoolShape{.n = 3, .c = 1, .h = 4, .w = 4, .size = 4, .stride = 4}})
    t.push_back(std::make_unique<MaxpoolTest>(s));
  t.push_back(std::make_unique<MaxpoolTest>(
      PoolShape{.n = kLargeBatch, .c = kConv1Channels, .h = kConv1Height, .w = kConv1Width}, true));
  for (const PoolShape s :
       {PoolShape{.n = 2, .c = 3, .h = 8, .w = 8}, PoolShape{.n = 1, .c = 2, .h = 7, .w = 9},
        PoolShape{.n = 2, .c = 2, .h = 9, .w = 9, .size = 3, .stride = 2}})
    for (const bool with_bias : {true, false})
      t.push_back(std::make_unique<MaxpoolReluBackwardTest>(s, with_bias));
  t.push_back(std::make_unique<MaxpoolReluBackwardTest>(
      PoolShape{.n = kLargeBatch, .c = kConv1Channels, .h = kConv1Height, .w = kConv1Width}, true,
      true));
}

}  // namespace

void add_layer_ops(OpList& t) {
  add_convolutions(t);
  add_gemm(t);
  add_bias(t);
  add_activations(t);
  add_pooling(t);
}

}  // namespace plinth::test
