// The CUDA backend against the CPU backend, op by op, on fresh random inputs: every op of
// the interface, odd sizes, stride 2, padding, batch 1, both convolutions (cuDNN and
// native). Where no GPU is usable each test warns "SKIPPED: <reason>" and returns, which
// CTest reports as skipped, never as passed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

// Asked once per process, inside a test (never during static initialisation: the binary
// is run at build time to list the tests, on machines without a driver).
const CudaStatus& gpu_status() {
  static const CudaStatus status = cuda_status();
  return status;
}

#define PLINTH_SKIP_WITHOUT_GPU()                                 \
  do {                                                            \
    if (gpu_status().devices.empty()) {                           \
      WARN("SKIPPED: " << gpu_status().unavailable_reason);       \
      return;                                                     \
    }                                                             \
  } while (0)

// fp32 results of different summation orders: a few ulps per operation, relative to the
// largest value of the array.
constexpr double kFp32 = 1e-5;
constexpr double kFp32Conv = 1e-4;  // long dot products, different algorithms
// TF32 keeps 10 mantissa bits of each product's inputs (relative error about 5e-4 each).
constexpr double kTf32 = 1e-2;

std::vector<float> random_floats(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  const std::vector<double> v = test::random_values(n, seed, lo, hi);
  return {v.begin(), v.end()};
}

std::vector<float> distinct_floats(size_t n, uint64_t seed) {
  const std::vector<double> v = test::distinct_values(n, seed);
  return {v.begin(), v.end()};
}

// max |gpu - cpu| / max |cpu|; infinite when the two disagree on which values are NaN
// or infinite.
double relative_error(const std::vector<float>& gpu, const std::vector<float>& cpu) {
  REQUIRE(gpu.size() == cpu.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < gpu.size(); ++i) {
    if (gpu[i] == cpu[i] || (std::isnan(gpu[i]) && std::isnan(cpu[i]))) {
      if (std::isfinite(cpu[i])) scale = std::max(scale, std::fabs(static_cast<double>(cpu[i])));
      continue;
    }
    if (!std::isfinite(gpu[i]) || !std::isfinite(cpu[i]))
      return std::numeric_limits<double>::infinity();
    diff = std::max(diff, std::fabs(static_cast<double>(gpu[i]) - cpu[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(cpu[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

// The CUDA backend under test and the CPU backend as the reference.
struct Backends {
  std::unique_ptr<Backend> gpu, cpu;
  explicit Backends(const CudaOptions& options = {})
      : gpu(make_cuda_backend(options)), cpu(make_cpu_backend(1)) {}
};

// One host array, uploaded to both backends; read back with on_gpu() / on_cpu().
template <typename T>
class Mirror {
 public:
  Mirror(Backends& b, const std::vector<T>& host)
      : b_(&b), size_(host.size()), gpu_(*b.gpu, bytes()), cpu_(*b.cpu, bytes()) {
    b.gpu->upload(gpu_.as<void>(), host.data(), bytes());
    b.cpu->upload(cpu_.as<void>(), host.data(), bytes());
  }
  // Filled with value on both: outputs start as garbage, so "overwrites" is tested.
  Mirror(Backends& b, size_t size, T value) : Mirror(b, std::vector<T>(size, value)) {}

  T* gpu() const { return gpu_.as<T>(); }
  T* cpu() const { return cpu_.as<T>(); }
  std::vector<T> on_gpu() const { return read(*b_->gpu, gpu_); }
  std::vector<T> on_cpu() const { return read(*b_->cpu, cpu_); }
  double error() const { return relative_error(on_gpu(), on_cpu()); }

 private:
  size_t bytes() const { return size_ * sizeof(T); }
  std::vector<T> read(Backend& backend, const DeviceBuffer& buffer) const {
    std::vector<T> host(size_);
    backend.download(host.data(), buffer.as<void>(), bytes());
    return host;
  }
  Backends* b_;
  size_t size_;
  DeviceBuffer gpu_, cpu_;
};

const char* name_of(Activation act) {
  switch (act) {
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    default: return "none";
  }
}

constexpr Activation kActivations[] = {Activation::none, Activation::relu, Activation::sigmoid,
                                       Activation::tanh};

// ---- status and setup (any machine) ----------------------------------------------------

TEST_CASE("cuda status: reports without throwing, and make_cuda_backend explains a missing GPU",
          "[cuda]") {
  CudaStatus status;
  REQUIRE_NOTHROW(status = cuda_status());
#ifdef PLINTH_HAVE_CUDA
  CHECK(status.built);
  CHECK_THAT(status.build_versions, Catch::Contains("CUDA runtime") && Catch::Contains("cuDNN") &&
                                        Catch::Contains("cuBLAS"));
#else
  CHECK_FALSE(status.built);
#endif
  if (status.devices.empty()) {
    REQUIRE_FALSE(status.unavailable_reason.empty());
    CHECK(status.unavailable_reason.find('\n') == std::string::npos);
    bool threw = false;
    try {
      make_cuda_backend({});
    } catch (const Error& e) {
      threw = true;
      CHECK_THAT(e.what(), Catch::Contains(status.unavailable_reason));
    }
    CHECK(threw);
  } else {
    CHECK(status.unavailable_reason.empty());
    for (const CudaDeviceInfo& d : status.devices) {
      CHECK_FALSE(d.name.empty());
      CHECK(d.compute_major >= 5);
      CHECK(d.multiprocessors > 0);
      CHECK(d.total_memory > 0);
      CHECK(d.free_memory <= d.total_memory);
    }
  }
}

TEST_CASE("cuda backend: description names the device, cuDNN and the options", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const auto fp32 = make_cuda_backend({});
  CHECK(fp32->kind() == DeviceKind::cuda);
  CHECK_THAT(fp32->description(),
             Catch::StartsWith("cuda:0 " + gpu_status().devices[0].name + " (SM ") &&
                 Catch::Contains("GiB, cuDNN ") && Catch::EndsWith(", conv cudnn, fp32)"));
  CudaOptions options;
  options.native_conv = true;
  options.allow_tf32 = true;
  CHECK_THAT(make_cuda_backend(options)->description(), Catch::EndsWith(", conv native, tf32)"));
}

TEST_CASE("cuda backend: a device index that does not exist is a clear error", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  CudaOptions options;
  options.device_index = static_cast<int>(gpu_status().devices.size());
  CHECK_THROWS_WITH(make_cuda_backend(options), Catch::Contains("no CUDA device"));
}

TEST_CASE("cuda memory: round trips are exact and fill/copy touch only their range", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const auto gpu = make_cuda_backend({});
  const std::vector<float> host = random_floats(1001, 1);
  DeviceBuffer a(*gpu, host.size() * sizeof(float)), b(*gpu, host.size() * sizeof(float));
  gpu->upload(a.as<void>(), host.data(), host.size() * sizeof(float));
  gpu->copy(b.as<void>(), a.as<void>(), host.size() * sizeof(float));
  std::vector<float> back(host.size());
  gpu->download(back.data(), b.as<void>(), back.size() * sizeof(float));
  CHECK(back == host);

  gpu->fill(b.as<float>() + 1, 999, 7.0f);
  gpu->synchronize();
  gpu->download(back.data(), b.as<void>(), back.size() * sizeof(float));
  CHECK(back.front() == host.front());
  CHECK(back.back() == host.back());
  CHECK(std::all_of(back.begin() + 1, back.end() - 1, [](float v) { return v == 7.0f; }));

  std::vector<int64_t> counter = {41};
  DeviceBuffer c(*gpu, sizeof(int64_t));
  gpu->upload(c.as<void>(), counter.data(), sizeof(int64_t));
  gpu->increment(c.as<int64_t>());
  gpu->increment(c.as<int64_t>());
  gpu->download(counter.data(), c.as<void>(), sizeof(int64_t));
  CHECK(counter[0] == 43);
}

TEST_CASE("cuda memory: an impossible allocation says how much was asked and what is free",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const auto gpu = make_cuda_backend({});
  CHECK_THROWS_WITH(gpu->allocate(size_t{1} << 50),
                    Catch::StartsWith("out of GPU memory: asked for ") &&
                        Catch::Contains("MiB free of") && Catch::Contains("--batch-size"));
  // The failure leaves the backend usable.
  DeviceBuffer ok(*gpu, 1024);
  gpu->fill(ok.as<float>(), 256, 1.0f);
  std::vector<float> back(256);
  gpu->download(back.data(), ok.as<void>(), 1024);
  CHECK(back == std::vector<float>(256, 1.0f));
}

// ---- convolution ------------------------------------------------------------------------

struct ConvCase {
  ConvShape shape;
  bool bias;
  Activation act;
};

std::vector<ConvCase> conv_cases() {
  return {
      // the seed CNN's first layer: one input channel (the native path's direct kernel)
      {{.n = 1, .c = 1, .h = 28, .w = 28, .k = 8, .r = 3, .s = 3}, true, Activation::relu},
      {{.n = 3, .c = 5, .h = 13, .w = 11, .k = 7, .r = 3, .s = 3, .stride = 2, .pad = 1}, true,
       Activation::tanh},
      {{.n = 2, .c = 4, .h = 9, .w = 10, .k = 6, .r = 5, .s = 3, .pad = 2}, false,
       Activation::none},
      {{.n = 2, .c = 16, .h = 12, .w = 12, .k = 32, .r = 3, .s = 3}, true, Activation::sigmoid},
      {{.n = 1, .c = 3, .h = 7, .w = 7, .k = 5, .r = 1, .s = 1}, true, Activation::none},
      {{.n = 4, .c = 2, .h = 8, .w = 8, .k = 3, .r = 2, .s = 2, .stride = 2}, false,
       Activation::relu},
      // stride 3: the last input row and column are in no window, so dx must be 0 there
      {{.n = 2, .c = 3, .h = 6, .w = 7, .k = 4, .r = 3, .s = 3, .stride = 3, .pad = 1}, true,
       Activation::relu},
      // a long reduction for the filter gradient (split across blocks natively)
      {{.n = 8, .c = 8, .h = 20, .w = 20, .k = 16, .r = 3, .s = 3, .pad = 1}, true,
       Activation::relu},
  };
}

size_t input_size(const ConvShape& s) { return size_t(s.n) * s.c * s.h * s.w; }
size_t weight_size(const ConvShape& s) { return size_t(s.k) * s.c * s.r * s.s; }
size_t output_size(const ConvShape& s) { return size_t(s.n) * s.k * s.out_h() * s.out_w(); }

void check_conv_against_cpu(const CudaOptions& options, double tolerance) {
  Backends b(options);
  uint64_t seed = 100;
  for (const ConvCase& cc : conv_cases()) {
    const ConvShape& s = cc.shape;
    CAPTURE(options.native_conv, options.allow_tf32, s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride,
            s.pad, cc.bias, name_of(cc.act));
    b.gpu->conv2d_prepare(s);
    b.cpu->conv2d_prepare(s);
    const Mirror<float> x(b, random_floats(input_size(s), ++seed));
    const Mirror<float> w(b, random_floats(weight_size(s), ++seed, -0.5, 0.5));
    const Mirror<float> bias(b, random_floats(s.k, ++seed));
    const Mirror<float> dy(b, random_floats(output_size(s), ++seed));
    const Mirror<float> y(b, output_size(s), 13.0f);
    const Mirror<float> dx(b, input_size(s), 13.0f);
    const Mirror<float> dw(b, weight_size(s), 13.0f);

    for (Backend* be : {b.gpu.get(), b.cpu.get()}) {
      const bool on_gpu = be == b.gpu.get();
      auto pick = [&](const Mirror<float>& m) { return on_gpu ? m.gpu() : m.cpu(); };
      be->conv2d_forward(s, pick(x), pick(w), cc.bias ? pick(bias) : nullptr, pick(y), cc.act);
      be->conv2d_backward_data(s, pick(dy), pick(w), pick(dx));
      be->conv2d_backward_filter(s, pick(x), pick(dy), pick(dw));
    }
    CHECK(y.error() < tolerance);
    CHECK(dx.error() < tolerance);
    CHECK(dw.error() < tolerance);
  }
}

TEST_CASE("cuda conv2d: cuDNN forward, backward-data and backward-filter match the CPU",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  CudaOptions options;
  options.deterministic = GENERATE(false, true);
  check_conv_against_cpu(options, kFp32Conv);
}

TEST_CASE("cuda conv2d: native forward, backward-data and backward-filter match the CPU",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  CudaOptions options;
  options.native_conv = true;
  check_conv_against_cpu(options, kFp32Conv);
}

TEST_CASE("cuda conv2d: TF32 results stay within TF32 precision", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  CudaOptions options;
  options.allow_tf32 = true;
  check_conv_against_cpu(options, kTf32);
}

TEST_CASE("cuda conv2d: a shape never prepared is prepared on first use", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const bool native = GENERATE(false, true);
  CudaOptions options;
  options.native_conv = native;
  Backends b(options);
  const ConvShape s{.n = 8, .c = 8, .h = 20, .w = 20, .k = 16, .r = 3, .s = 3, .pad = 1};
  const Mirror<float> x(b, random_floats(input_size(s), 1));
  const Mirror<float> dy(b, random_floats(output_size(s), 2));
  const Mirror<float> dw(b, weight_size(s), 0.0f);
  b.gpu->conv2d_backward_filter(s, x.gpu(), dy.gpu(), dw.gpu());
  b.cpu->conv2d_prepare(s);
  b.cpu->conv2d_backward_filter(s, x.cpu(), dy.cpu(), dw.cpu());
  CHECK(dw.error() < kFp32Conv);
}

TEST_CASE("cuda conv2d: deterministic backward passes repeat bit for bit", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const bool native = GENERATE(false, true);
  CudaOptions options;
  options.native_conv = native;
  options.deterministic = true;
  Backends b(options);
  const ConvShape s{.n = 16, .c = 32, .h = 13, .w = 13, .k = 64, .r = 3, .s = 3};
  b.gpu->conv2d_prepare(s);
  const Mirror<float> x(b, random_floats(input_size(s), 1));
  const Mirror<float> w(b, random_floats(weight_size(s), 2));
  const Mirror<float> dy(b, random_floats(output_size(s), 3));
  const Mirror<float> dx(b, input_size(s), 0.0f);
  const Mirror<float> dw(b, weight_size(s), 0.0f);
  b.gpu->conv2d_backward_data(s, dy.gpu(), w.gpu(), dx.gpu());
  b.gpu->conv2d_backward_filter(s, x.gpu(), dy.gpu(), dw.gpu());
  const std::vector<float> dx1 = dx.on_gpu(), dw1 = dw.on_gpu();
  b.gpu->conv2d_backward_data(s, dy.gpu(), w.gpu(), dx.gpu());
  b.gpu->conv2d_backward_filter(s, x.gpu(), dy.gpu(), dw.gpu());
  CHECK(dx.on_gpu() == dx1);
  CHECK(dw.on_gpu() == dw1);
}

// ---- dense ------------------------------------------------------------------------------

TEST_CASE("cuda gemm: every transpose combination, padded leading dimensions, alpha and beta",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const bool tf32 = GENERATE(false, true);
  CudaOptions options;
  options.allow_tf32 = tf32;
  Backends b(options);
  struct Dims { int m, n, k; };
  uint64_t seed = 0;
  for (const Dims d : {Dims{1, 1, 1}, Dims{7, 5, 3}, Dims{33, 17, 65}, Dims{64, 10, 576}}) {
    for (const bool ta : {false, true}) {
      for (const bool tb : {false, true}) {
        for (const float beta : {0.0f, 2.0f}) {
          CAPTURE(tf32, d.m, d.n, d.k, ta, tb, beta);
          // Row-major storage: op(A) is m x k, so A is stored k x m when transposed.
          const int a_rows = ta ? d.k : d.m, a_cols = ta ? d.m : d.k;
          const int b_rows = tb ? d.n : d.k, b_cols = tb ? d.k : d.n;
          const int lda = a_cols + 3, ldb = b_cols + 1, ldc = d.n + 2;
          const Mirror<float> a(b, random_floats(size_t(a_rows) * lda, ++seed));
          const Mirror<float> bm(b, random_floats(size_t(b_rows) * ldb, ++seed));
          // The padding of C must come back untouched: compared with the rest.
          const Mirror<float> c(b, random_floats(size_t(d.m) * ldc, ++seed));
          b.gpu->gemm(ta, tb, d.m, d.n, d.k, 0.5f, a.gpu(), lda, bm.gpu(), ldb, beta, c.gpu(), ldc);
          b.cpu->gemm(ta, tb, d.m, d.n, d.k, 0.5f, a.cpu(), lda, bm.cpu(), ldb, beta, c.cpu(), ldc);
          CHECK(c.error() < (tf32 ? kTf32 : kFp32));
        }
      }
    }
  }
}

// ---- bias, activations ------------------------------------------------------------------

struct BiasCase { int n, c, spatial; };
constexpr BiasCase kBiasCases[] = {{1, 1, 1}, {3, 5, 7}, {64, 10, 1}, {2, 32, 169}, {5, 3, 1000}};

TEST_CASE("cuda bias_activation_forward and bias_backward match the CPU", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  uint64_t seed = 0;
  for (const BiasCase bc : kBiasCases) {
    const size_t size = size_t(bc.n) * bc.c * bc.spatial;
    const Mirror<float> bias(b, random_floats(bc.c, ++seed));
    for (const Activation act : kActivations) {
      for (const bool with_bias : {false, true}) {
        CAPTURE(bc.n, bc.c, bc.spatial, name_of(act), with_bias);
        const Mirror<float> y(b, random_floats(size, ++seed, -3, 3));
        b.gpu->bias_activation_forward(y.gpu(), with_bias ? bias.gpu() : nullptr, bc.n, bc.c,
                                       bc.spatial, act);
        b.cpu->bias_activation_forward(y.cpu(), with_bias ? bias.cpu() : nullptr, bc.n, bc.c,
                                       bc.spatial, act);
        CHECK(y.error() < kFp32);
      }
    }
    CAPTURE(bc.n, bc.c, bc.spatial);
    const Mirror<float> dy(b, random_floats(size, ++seed));
    const Mirror<float> db(b, size_t(bc.c), 13.0f);
    b.gpu->bias_backward(dy.gpu(), db.gpu(), bc.n, bc.c, bc.spatial);
    b.cpu->bias_backward(dy.cpu(), db.cpu(), bc.n, bc.c, bc.spatial);
    CHECK(db.error() < kFp32);
  }
}

TEST_CASE("cuda bias_activation_backward matches the CPU, also in place", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  uint64_t seed = 100;
  for (const BiasCase bc : kBiasCases) {
    const size_t size = size_t(bc.n) * bc.c * bc.spatial;
    for (const Activation act : kActivations) {
      CAPTURE(bc.n, bc.c, bc.spatial, name_of(act));
      const Mirror<float> y(b, random_floats(size, ++seed, -3, 3));
      const Mirror<float> dy(b, random_floats(size, ++seed));
      const Mirror<float> dx(b, size, 13.0f);
      const Mirror<float> db(b, size_t(bc.c), 13.0f);
      b.gpu->bias_activation_backward(act, y.gpu(), dy.gpu(), dx.gpu(), db.gpu(), bc.n, bc.c, bc.spatial);
      b.cpu->bias_activation_backward(act, y.cpu(), dy.cpu(), dx.cpu(), db.cpu(), bc.n, bc.c, bc.spatial);
      CHECK(dx.error() < kFp32);
      CHECK(db.error() < kFp32);
      b.gpu->bias_activation_backward(act, y.gpu(), dy.gpu(), dy.gpu(), db.gpu(), bc.n, bc.c, bc.spatial);
      b.cpu->bias_activation_backward(act, y.cpu(), dy.cpu(), dy.cpu(), db.cpu(), bc.n, bc.c, bc.spatial);
      CHECK(dy.error() < kFp32);
      CHECK(db.error() < kFp32);
    }
  }
}

TEST_CASE("cuda activation forward and backward match the CPU, backward also in place",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  uint64_t seed = 0;
  for (const size_t n : {size_t{1}, size_t{1000}, size_t{70001}}) {
    for (const Activation act : kActivations) {
      CAPTURE(n, name_of(act));
      const Mirror<float> x(b, random_floats(n, ++seed, -4, 4));
      const Mirror<float> y(b, n, 13.0f);
      const Mirror<float> dy(b, random_floats(n, ++seed));
      const Mirror<float> dx(b, n, 13.0f);
      b.gpu->activation_forward(act, x.gpu(), y.gpu(), n);
      b.cpu->activation_forward(act, x.cpu(), y.cpu(), n);
      CHECK(y.error() < kFp32);
      // Backward from each backend's own forward output, so only the backward differs.
      b.gpu->activation_backward(act, y.gpu(), dy.gpu(), dx.gpu(), n);
      b.cpu->activation_backward(act, y.cpu(), dy.cpu(), dx.cpu(), n);
      CHECK(dx.error() < kFp32);
      b.gpu->activation_backward(act, y.gpu(), dy.gpu(), dy.gpu(), n);
      b.cpu->activation_backward(act, y.cpu(), dy.cpu(), dy.cpu(), n);
      CHECK(dy.error() < kFp32);
    }
  }
}

// ---- pooling ----------------------------------------------------------------------------

TEST_CASE("cuda maxpool: forward values and argmax equal the CPU's, backward matches",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  uint64_t seed = 0;
  for (const PoolShape s : {PoolShape{.n = 2, .c = 3, .h = 8, .w = 8},
                            PoolShape{.n = 1, .c = 2, .h = 7, .w = 9},  // odd: last row/col unused
                            PoolShape{.n = 2, .c = 2, .h = 9, .w = 9, .size = 3, .stride = 2},
                            PoolShape{.n = 1, .c = 1, .h = 5, .w = 6, .size = 3, .stride = 1},
                            PoolShape{.n = 3, .c = 1, .h = 4, .w = 4, .size = 4, .stride = 4}}) {
    CAPTURE(s.n, s.c, s.h, s.w, s.size, s.stride);
    const size_t in = size_t(s.n) * s.c * s.h * s.w, out = size_t(s.n) * s.c * s.out_h() * s.out_w();
    const Mirror<float> x(b, distinct_floats(in, ++seed));
    const Mirror<float> y(b, out, 13.0f);
    const Mirror<int32_t> argmax(b, out, -1);
    const Mirror<float> dy(b, random_floats(out, ++seed));
    const Mirror<float> dx(b, in, 13.0f);
    b.gpu->maxpool_forward(s, x.gpu(), y.gpu(), argmax.gpu());
    b.cpu->maxpool_forward(s, x.cpu(), y.cpu(), argmax.cpu());
    CHECK(y.on_gpu() == y.on_cpu());
    CHECK(argmax.on_gpu() == argmax.on_cpu());
    b.gpu->maxpool_backward(s, dy.gpu(), argmax.gpu(), dx.gpu());
    b.cpu->maxpool_backward(s, dy.cpu(), argmax.cpu(), dx.cpu());
    CHECK(dx.error() < kFp32);
  }
}

// ---- losses -----------------------------------------------------------------------------

const std::vector<float> kStatsStart = {1.0f, 2.0f, 3.0f, 4.0f};  // checks "accumulate into"

void check_stats(const Mirror<float>& stats) {
  const std::vector<float> gpu = stats.on_gpu(), cpu = stats.on_cpu();
  CHECK(std::fabs(gpu[kStatLossSum] - cpu[kStatLossSum]) <=
        kFp32 * std::max(1.0f, std::fabs(cpu[kStatLossSum])));
  CHECK(std::fabs(gpu[kStatCorrect] - cpu[kStatCorrect]) <=
        kFp32 * std::max(1.0f, std::fabs(cpu[kStatCorrect])));
  CHECK(gpu[kStatCount] == cpu[kStatCount]);
  CHECK(gpu[kStatNonFinite] == cpu[kStatNonFinite]);
}

TEST_CASE("cuda softmax_cross_entropy: probs, grad and stats match the CPU", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  uint64_t seed = 0;
  struct Case { int n, classes; };
  for (const Case c : {Case{1, 10}, Case{7, 3}, Case{64, 10}, Case{300, 37}, Case{5, 100},
                       Case{3, 1}, Case{2000, 10}}) {
    for (const bool outputs : {true, false}) {
      CAPTURE(c.n, c.classes, outputs);
      const size_t size = size_t(c.n) * c.classes;
      std::vector<float> logits = random_floats(size, ++seed, -5, 5);
      std::fill(logits.begin(), logits.begin() + c.classes, 0.5f);  // a tie: first index wins
      std::vector<int32_t> labels(c.n);
      for (int i = 0; i < c.n; ++i) labels[i] = static_cast<int32_t>((i * 7 + seed) % c.classes);
      if (c.n > 4) labels[3] = -1;  // out of range: no loss, no gradient, still counted
      const Mirror<float> z(b, logits);
      const Mirror<int32_t> y(b, labels);
      const Mirror<float> probs(b, size, 13.0f), grad(b, size, 13.0f), stats(b, kStatsStart);
      b.gpu->softmax_cross_entropy(z.gpu(), y.gpu(), c.n, c.classes, outputs ? probs.gpu() : nullptr,
                                   outputs ? grad.gpu() : nullptr, stats.gpu());
      b.cpu->softmax_cross_entropy(z.cpu(), y.cpu(), c.n, c.classes, outputs ? probs.cpu() : nullptr,
                                   outputs ? grad.cpu() : nullptr, stats.cpu());
      CHECK(probs.error() < kFp32);
      CHECK(grad.error() < kFp32);
      check_stats(stats);
    }
  }
}

TEST_CASE("cuda mse_loss and bce_loss: grad and stats match the CPU", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  uint64_t seed = 0;
  struct Case { int n, features; };
  for (const Case c : {Case{1, 1}, Case{5, 7}, Case{32, 784}, Case{1000, 300}}) {
    for (const bool with_grad : {true, false}) {
      CAPTURE(c.n, c.features, with_grad);
      const size_t size = size_t(c.n) * c.features;
      // BCE probabilities include the clamped ends 0 and 1; targets are 0/1 and soft.
      std::vector<float> p = random_floats(size, ++seed, 0, 1), t = random_floats(size, ++seed, 0, 1);
      for (size_t i = 0; i < size; i += 5) p[i] = (i / 5) % 2 ? 1.0f : 0.0f;
      for (size_t i = 1; i < size; i += 3) t[i] = t[i] > 0.5f ? 1.0f : 0.0f;
      const Mirror<float> pred(b, p), target(b, t);
      {
        const Mirror<float> grad(b, size, 13.0f), stats(b, kStatsStart);
        b.gpu->mse_loss(pred.gpu(), target.gpu(), c.n, c.features, with_grad ? grad.gpu() : nullptr, stats.gpu());
        b.cpu->mse_loss(pred.cpu(), target.cpu(), c.n, c.features, with_grad ? grad.cpu() : nullptr, stats.cpu());
        CHECK(grad.error() < kFp32);
        check_stats(stats);
      }
      {
        const Mirror<float> grad(b, size, 13.0f), stats(b, kStatsStart);
        b.gpu->bce_loss(pred.gpu(), target.gpu(), c.n, c.features, with_grad ? grad.gpu() : nullptr, stats.gpu());
        b.cpu->bce_loss(pred.cpu(), target.cpu(), c.n, c.features, with_grad ? grad.cpu() : nullptr, stats.cpu());
        CHECK(grad.error() < kFp32);
        check_stats(stats);
      }
    }
  }
}

TEST_CASE("cuda losses: stats are identical bit for bit when repeated", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  const int n = 4096, classes = 10;
  const Mirror<float> z(b, random_floats(size_t(n) * classes, 1, -5, 5));
  std::vector<int32_t> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = i % classes;
  const Mirror<int32_t> y(b, labels);
  const Mirror<float> x(b, random_floats(1 << 20, 2));
  std::vector<float> first_stats, first_norm;
  for (int run = 0; run < 3; ++run) {
    const Mirror<float> stats(b, kStatsStart), norm(b, std::vector<float>{0.0f});
    b.gpu->softmax_cross_entropy(z.gpu(), y.gpu(), n, classes, nullptr, nullptr, stats.gpu());
    b.gpu->sum_squares(x.gpu(), 1 << 20, norm.gpu());
    if (run == 0) {
      first_stats = stats.on_gpu();
      first_norm = norm.on_gpu();
    } else {
      CHECK(stats.on_gpu() == first_stats);
      CHECK(norm.on_gpu() == first_norm);
    }
  }
}

// ---- dropout, optimizer -----------------------------------------------------------------

TEST_CASE("cuda dropout: the mask and outputs equal the CPU's exactly", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  const size_t n = 100003;
  for (const float rate : {0.0f, 0.3f, 0.75f}) {
    CAPTURE(rate);
    const Mirror<float> x(b, random_floats(n, 1));
    const Mirror<float> y(b, n, 13.0f), mask(b, n, 13.0f);
    const Mirror<float> dy(b, random_floats(n, 2));
    const Mirror<int64_t> step(b, std::vector<int64_t>{5});
    b.gpu->dropout_forward(x.gpu(), y.gpu(), mask.gpu(), n, rate, 42, step.gpu());
    b.cpu->dropout_forward(x.cpu(), y.cpu(), mask.cpu(), n, rate, 42, step.cpu());
    CHECK(mask.on_gpu() == mask.on_cpu());
    CHECK(y.on_gpu() == y.on_cpu());
    b.gpu->dropout_backward(dy.gpu(), mask.gpu(), dy.gpu(), n);  // in place
    b.cpu->dropout_backward(dy.cpu(), mask.cpu(), dy.cpu(), n);
    CHECK(dy.on_gpu() == dy.on_cpu());
  }
}

TEST_CASE("cuda optimizer_update: every optimizer over several steps matches the CPU",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  struct Case { const char* name; OptimizerSpec spec; };
  std::vector<Case> cases;
  auto add = [&](const char* name, OptimizerKind kind, float momentum, bool nesterov) {
    OptimizerSpec s;
    s.kind = kind;
    s.lr = 0.01f;
    s.momentum = momentum;
    s.nesterov = nesterov;
    s.weight_decay = 0.01f;
    cases.push_back({name, s});
  };
  add("sgd", OptimizerKind::sgd, 0.0f, false);
  add("sgd momentum", OptimizerKind::sgd, 0.9f, false);
  add("sgd nesterov", OptimizerKind::sgd, 0.9f, true);
  add("adam", OptimizerKind::adam, 0.0f, false);
  add("adamw", OptimizerKind::adamw, 0.0f, false);
  add("rmsprop", OptimizerKind::rmsprop, 0.0f, false);
  const size_t n = 93322;  // the seed CNN's parameter count
  uint64_t seed = 0;
  for (const Case& c : cases) {
    for (const bool clipped : {false, true}) {
      CAPTURE(c.name, clipped);
      const Mirror<float> params(b, random_floats(n, ++seed));
      const Mirror<float> m(b, n, 0.0f), v(b, n, 0.0f);
      const Mirror<int64_t> step(b, std::vector<int64_t>{0});
      const Mirror<float> scale(b, std::vector<float>{0.5f});
      for (int s = 0; s < 3; ++s) {
        const Mirror<float> grads(b, random_floats(n, ++seed));
        b.gpu->increment(step.gpu());
        b.cpu->increment(step.cpu());
        b.gpu->optimizer_update(c.spec, params.gpu(), grads.gpu(), m.gpu(), v.gpu(), n, step.gpu(),
                                clipped ? scale.gpu() : nullptr);
        b.cpu->optimizer_update(c.spec, params.cpu(), grads.cpu(), m.cpu(), v.cpu(), n, step.cpu(),
                                clipped ? scale.cpu() : nullptr);
      }
      CHECK(step.on_gpu() == std::vector<int64_t>{3});
      CHECK(params.error() < kFp32);
      CHECK(m.error() < kFp32);
      CHECK(v.error() < kFp32);
    }
  }
}

// ---- reductions -------------------------------------------------------------------------

TEST_CASE("cuda reductions: sum_squares, clip_scale, count_nonfinite, accumulate", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  uint64_t seed = 0;
  for (const size_t n : {size_t{1}, size_t{1000}, (size_t{1} << 20) + 7}) {
    CAPTURE(n);
    std::vector<float> values = random_floats(n, ++seed);
    const Mirror<float> x(b, values);
    const Mirror<float> out(b, std::vector<float>{1.5f});
    b.gpu->sum_squares(x.gpu(), n, out.gpu());
    b.cpu->sum_squares(x.cpu(), n, out.cpu());
    CHECK(out.error() < kFp32);

    const Mirror<float> y(b, random_floats(n, ++seed));
    b.gpu->accumulate(x.gpu(), y.gpu(), n);
    b.cpu->accumulate(x.cpu(), y.cpu(), n);
    CHECK(y.on_gpu() == y.on_cpu());

    const float specials[] = {std::nanf(""), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
    for (size_t i = 0; i < n; i += 97) values[i] = specials[(i / 97) % 3];
    const Mirror<float> with_specials(b, values);
    const Mirror<float> stats(b, kStatsStart);
    b.gpu->count_nonfinite(with_specials.gpu(), n, stats.gpu());
    b.cpu->count_nonfinite(with_specials.cpu(), n, stats.cpu());
    CHECK(stats.on_gpu() == stats.on_cpu());
  }
  for (const float sum_sq : {0.0f, 0.25f, 4.0f, 1e6f}) {
    for (const float max_norm : {1.0f, 5.0f}) {
      CAPTURE(sum_sq, max_norm);
      const Mirror<float> s(b, std::vector<float>{sum_sq});
      const Mirror<float> scale(b, std::vector<float>{13.0f});
      b.gpu->clip_scale(s.gpu(), max_norm, scale.gpu());
      b.cpu->clip_scale(s.cpu(), max_norm, scale.cpu());
      CHECK(scale.error() < kFp32);
    }
  }
}

// ---- data -------------------------------------------------------------------------------

TEST_CASE("cuda gather_batch: normalised samples and labels equal the CPU's", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  const int count = 10, sample_size = 28 * 28 + 1;
  std::vector<uint8_t> images(size_t(count) * sample_size);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>((i * 131 + 7) % 256);
  std::vector<int32_t> labels(count);
  for (int i = 0; i < count; ++i) labels[i] = (i * 3) % 10;
  const Mirror<uint8_t> img(b, images);
  const Mirror<int32_t> lab(b, labels);
  const Mirror<int32_t> indices(b, std::vector<int32_t>{9, 0, 4, 4, 7, 1});
  const int batch = 6;
  for (const bool with_labels : {true, false}) {
    CAPTURE(with_labels);
    const Mirror<float> out(b, size_t(batch) * sample_size, 13.0f);
    const Mirror<int32_t> lab_out(b, size_t(batch), -1);
    b.gpu->gather_batch(img.gpu(), with_labels ? lab.gpu() : nullptr, indices.gpu(), batch,
                        sample_size, 0.2860f, 0.3530f, out.gpu(), with_labels ? lab_out.gpu() : nullptr);
    b.cpu->gather_batch(img.cpu(), with_labels ? lab.cpu() : nullptr, indices.cpu(), batch,
                        sample_size, 0.2860f, 0.3530f, out.cpu(), with_labels ? lab_out.cpu() : nullptr);
    CHECK(out.error() < kFp32);
    CHECK(lab_out.on_gpu() == lab_out.on_cpu());
  }
}

TEST_CASE("cuda augment: the same transform per sample as the CPU", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  Backends b;
  AugmentSpec spec;
  spec.max_shift = 2.0f;
  spec.max_rotate = 15.0f;
  spec.max_scale = 0.1f;
  spec.horizontal_flip = true;
  struct Case { int n, c, h, w; };
  uint64_t seed = 0;
  for (const Case c : {Case{3, 1, 28, 28}, Case{2, 3, 12, 17}, Case{1, 1, 1, 1}}) {
    for (const bool enabled : {true, false}) {
      CAPTURE(c.n, c.c, c.h, c.w, enabled);
      const size_t size = size_t(c.n) * c.c * c.h * c.w;
      const Mirror<float> in(b, random_floats(size, ++seed, 0, 1));
      const Mirror<float> out(b, size, 13.0f);
      std::vector<int32_t> ids(c.n);
      for (int i = 0; i < c.n; ++i) ids[i] = 5 + 118 * i;
      const Mirror<int32_t> sample_ids(b, ids);
      const AugmentSpec used = enabled ? spec : AugmentSpec{};
      b.gpu->augment(used, in.gpu(), out.gpu(), c.n, c.c, c.h, c.w, sample_ids.gpu(), 7);
      b.cpu->augment(used, in.cpu(), out.cpu(), c.n, c.c, c.h, c.w, sample_ids.cpu(), 7);
      // sinf/cosf may differ by an ulp between host and device; bilinear sampling is
      // continuous, so outputs differ by about as little.
      CHECK(out.error() < kFp32Conv);
      if (!enabled) CHECK(out.on_gpu() == in.on_gpu());
    }
  }
}

}  // namespace
}  // namespace plinth
