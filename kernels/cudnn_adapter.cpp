#include "kernels/cudnn_adapter.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "engine/error.h"
#include "kernels/launchers.h"
#include "kernels/library_version.h"

namespace plinth {

namespace {

LibraryVersion loaded_version() {
  LibraryVersion v;
  PLINTH_CUDNN_CHECK(cudnnGetProperty(MAJOR_VERSION, &v.major));
  PLINTH_CUDNN_CHECK(cudnnGetProperty(MINOR_VERSION, &v.minor));
  PLINTH_CUDNN_CHECK(cudnnGetProperty(PATCH_LEVEL, &v.patch));
  return v;
}

// Each direction ranks at most this many algorithms from the heuristics, then the last
// resort: enough to survive a refusal or two, few enough that the workspace reserved for
// all of them stays small.
constexpr size_t kRankedPerDirection = 3;

const char* forward_name(int algo) {
  static const char* const names[] = {
      "IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
      "WINOGRAD",      "WINOGRAD_NONFUSED"};
  return algo >= 0 && algo < 8 ? names[algo] : "?";
}
const char* backward_data_name(int algo) {
  static const char* const names[] = {"ALGO_0",     "ALGO_1",   "FFT",
                                      "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  return algo >= 0 && algo < 6 ? names[algo] : "?";
}
const char* backward_filter_name(int algo) {
  static const char* const names[] = {
      "ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"};
  return algo >= 0 && algo < 7 ? names[algo] : "?";
}

std::string shape_name(const ConvShape& s) {
  return fmt::format("n={} c={} {}x{} k={} {}x{} stride {} pad {}", s.n, s.c, s.h, s.w, s.k, s.r,
                     s.s, s.stride, s.pad);
}

size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

struct AlgorithmChoice {
  int algo;
  cudnnMathType_t math;
  size_t bytes;
};

}  // namespace

std::string cudnn_build_version() {
  return fmt::format("{}.{}.{}", CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
}

std::string cudnn_loaded_version() {
  const LibraryVersion v = loaded_version();
  return fmt::format("{}.{}.{}", v.major, v.minor, v.patch);
}

void check_cudnn_version() {
  const std::string problem =
      cudnn_version_problem({CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL}, loaded_version());
  if (!problem.empty()) fail("{}", problem);
}

// One direction's algorithms, best first; the last is the last resort. `current` moves on
// when the one in use fails at run time, and stays there.
struct CudnnConvolutions::Ranking {
  using Choice = AlgorithmChoice;
  std::vector<Choice> choices;
  size_t current = 0;
  int injected_failures = 0;  // left to inject (tests)
  const char* (*name)(int) = nullptr;

  const Choice& chosen() const { return choices[current]; }
  size_t most_bytes() const {
    size_t most = 0;
    for (const Choice& c : choices) most = std::max(most, c.bytes);
    return most;
  }
};

// Descriptors and ranked algorithms of one shape. Each direction has its own convolution
// descriptor because cuDNN reads the math type (FMA or tensor cores) from it, and that
// belongs to the algorithm in use for the direction. In bf16 the tensor descriptors are
// bfloat16 and the workspace ends with the operands' bfloat16 copies.
struct CudnnConvolutions::Plan {
  ConvShape shape;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t fwd = nullptr, bwd_data = nullptr, bwd_filter = nullptr;
  Ranking forward, backward_data, backward_filter;
  bool fuse = true;  // bias and ReLU inside cuDNN's call, until cuDNN refuses it once
  size_t algorithm_bytes = 0;
  size_t x16_at = 0, y16_at = 0, w16_at = 0, total_bytes = 0;  // bf16 copies' offsets

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {  // destructors must not throw: statuses are ignored here
    for (cudnnConvolutionDescriptor_t d : {fwd, bwd_data, bwd_filter})
      if (d) cudnnDestroyConvolutionDescriptor(d);
    if (w) cudnnDestroyFilterDescriptor(w);
    for (cudnnTensorDescriptor_t d : {bias, y, x})
      if (d) cudnnDestroyTensorDescriptor(d);
  }
};

CudnnConvolutions::CudnnConvolutions(cudaStream_t stream, Settings settings)
    : stream_(stream), settings_(std::move(settings)) {
  PLINTH_CUDNN_CHECK(cudnnCreate(&handle_));
  try {
    PLINTH_CUDNN_CHECK(cudnnSetStream(handle_, stream));
    PLINTH_CUDNN_CHECK(cudnnCreateActivationDescriptor(&relu_));
    // Not propagating NaN maps it to 0, as bias.cu's ReLU (x > 0 ? x : 0) does.
    PLINTH_CUDNN_CHECK(
        cudnnSetActivationDescriptor(relu_, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  } catch (...) {
    if (relu_) cudnnDestroyActivationDescriptor(relu_);
    cudnnDestroy(handle_);
    throw;
  }
}

CudnnConvolutions::~CudnnConvolutions() {
  plans_.clear();  // descriptors before the handle
  if (relu_) cudnnDestroyActivationDescriptor(relu_);
  if (handle_) cudnnDestroy(handle_);
}

void CudnnConvolutions::say(const std::string& line) const {
  if (settings_.log) settings_.log(line);
}

CudnnConvolutions::Key CudnnConvolutions::key_of(const ConvShape& s) {
  return {s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride, s.pad};
}

bool CudnnConvolutions::prepared(const ConvShape& shape) const {
  return plans_.count(key_of(shape)) != 0;
}

CudnnConvolutions::Plan& CudnnConvolutions::plan(const ConvShape& shape) {
  const auto it = plans_.find(key_of(shape));
  if (it == plans_.end()) fail("cuDNN convolution: shape {} was not prepared", shape_name(shape));
  return *it->second;
}

size_t CudnnConvolutions::prepare(const ConvShape& s, size_t workspace_limit) {
  const Key key = key_of(s);
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second->total_bytes;
  auto p = std::make_unique<Plan>();
  p->shape = s;
  const bool bf16 = settings_.precision == Precision::bf16;
  const cudnnDataType_t data = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  PLINTH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  PLINTH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  PLINTH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias));
  PLINTH_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  PLINTH_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, data, s.n, s.c, s.h, s.w));
  PLINTH_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, data, s.n, s.k, s.out_h(), s.out_w()));
  PLINTH_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s.k, 1, 1));
  PLINTH_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, data, CUDNN_TENSOR_NCHW, s.k, s.c, s.r, s.s));
  // Without TF32, FMA math keeps every algorithm in true fp32; bf16 sums in fp32 too.
  const cudnnMathType_t math =
      settings_.precision == Precision::fp32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  for (cudnnConvolutionDescriptor_t* d : {&p->fwd, &p->bwd_data, &p->bwd_filter}) {
    PLINTH_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(d));
    PLINTH_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(*d, s.pad, s.pad, s.stride, s.stride, 1, 1,
                                                       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(*d, math));
  }
  int on = 0, ok = 0, oh = 0, ow = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->fwd, p->x, p->w, &on, &ok, &oh, &ow));
  if (on != s.n || ok != s.k || oh != s.out_h() || ow != s.out_w())
    fail("cuDNN convolution: output {}x{}x{}x{} differs from plinth's {}x{}x{}x{}", on, ok, oh, ow,
         s.n, s.k, s.out_h(), s.out_w());
  rank_forward(*p, workspace_limit);
  rank_backward_data(*p, workspace_limit);
  rank_backward_filter(*p, workspace_limit);
  p->algorithm_bytes = std::max(
      {p->forward.most_bytes(), p->backward_data.most_bytes(), p->backward_filter.most_bytes()});
  p->total_bytes = aligned(p->algorithm_bytes);
  if (bf16) {  // 2 bytes per value
    p->x16_at = p->total_bytes;
    p->y16_at = p->x16_at + aligned(2 * s.input_elements());
    p->w16_at = p->y16_at + aligned(2 * s.output_elements());
    p->total_bytes = p->w16_at + aligned(2 * s.weight_elements());
  }
  say(fmt::format(
      "cuDNN conv {} ({}): forward {}, backward-data {}, backward-filter {}; "
      "workspace {:.1f} MiB",
      shape_name(s), precision_name(settings_.precision), forward_name(p->forward.chosen().algo),
      backward_data_name(p->backward_data.chosen().algo),
      backward_filter_name(p->backward_filter.chosen().algo),
      static_cast<double>(p->total_bytes) / (1 << 20)));
  return plans_.emplace(key, std::move(p)).first->second->total_bytes;
}

bool CudnnConvolutions::acceptable(cudnnStatus_t status, cudnnDeterminism_t determinism,
                                   cudnnMathType_t math) const {
  if (status != CUDNN_STATUS_SUCCESS) return false;
  if (settings_.deterministic && determinism != CUDNN_DETERMINISTIC) return false;
  if (settings_.precision == Precision::fp32 && math != CUDNN_FMA_MATH) return false;
  return true;
}

namespace {

// Fills a ranking from cuDNN's heuristic results (best first): the acceptable algorithms
// whose workspace fits, up to kRankedPerDirection, then the last resort (deterministic,
// little or no workspace) unless it is already ranked. bytes_of(algo, math) sets the
// descriptor's math type and returns the workspace, or false when cuDNN cannot say.
template <typename Perf, typename Acceptable, typename BytesOf>
void fill_ranking(std::vector<AlgorithmChoice>& out, const std::vector<Perf>& results, int returned,
                  size_t limit, Acceptable&& acceptable, BytesOf&& bytes_of, int last_resort,
                  cudnnMathType_t last_resort_math) {
  for (int i = 0; i < returned && out.size() < kRankedPerDirection; ++i) {
    const Perf& r = results[i];
    if (!acceptable(r.status, r.determinism, r.mathType)) continue;
    size_t bytes = 0;
    if (bytes_of(static_cast<int>(r.algo), r.mathType, bytes) && bytes <= limit)
      out.push_back({static_cast<int>(r.algo), r.mathType, bytes});
  }
  const bool ranked = std::any_of(out.begin(), out.end(), [&](const AlgorithmChoice& c) {
    return c.algo == last_resort && c.math == last_resort_math;
  });
  if (ranked) return;
  size_t bytes = 0;
  if (!bytes_of(last_resort, last_resort_math, bytes))
    fail("cuDNN convolution: no workspace size for the last-resort algorithm");
  out.push_back({last_resort, last_resort_math, bytes});
}

}  // namespace

void CudnnConvolutions::rank_forward(Plan& p, size_t limit) {
  int count = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle_, &count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> results(std::max(count, 1));
  int returned = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p.x, p.w, p.fwd, p.y, count,
                                                            &returned, results.data()));
  auto bytes_of = [&](int algo, cudnnMathType_t math, size_t& bytes) {
    PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.fwd, math));
    return cudnnGetConvolutionForwardWorkspaceSize(handle_, p.x, p.w, p.fwd, p.y,
                                                   static_cast<cudnnConvolutionFwdAlgo_t>(algo),
                                                   &bytes) == CUDNN_STATUS_SUCCESS;
  };
  auto ok = [&](auto... a) { return acceptable(a...); };
  fill_ranking(p.forward.choices, results, returned, limit, ok, bytes_of,
               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_FMA_MATH);
  p.forward.name = forward_name;
  p.forward.injected_failures = settings_.injected_failures;
  PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.fwd, p.forward.chosen().math));
}

void CudnnConvolutions::rank_backward_data(Plan& p, size_t limit) {
  int count = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle_, &count));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> results(std::max(count, 1));
  int returned = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p.w, p.y, p.bwd_data, p.x,
                                                                 count, &returned, results.data()));
  auto bytes_of = [&](int algo, cudnnMathType_t math, size_t& bytes) {
    PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_data, math));
    return cudnnGetConvolutionBackwardDataWorkspaceSize(
               handle_, p.w, p.y, p.bwd_data, p.x, static_cast<cudnnConvolutionBwdDataAlgo_t>(algo),
               &bytes) == CUDNN_STATUS_SUCCESS;
  };
  auto ok = [&](auto... a) { return acceptable(a...); };
  fill_ranking(p.backward_data.choices, results, returned, limit, ok, bytes_of,
               CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_FMA_MATH);
  p.backward_data.name = backward_data_name;
  p.backward_data.injected_failures = settings_.injected_failures;
  PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_data, p.backward_data.chosen().math));
}

void CudnnConvolutions::rank_backward_filter(Plan& p, size_t limit) {
  int count = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle_, &count));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> results(std::max(count, 1));
  int returned = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      handle_, p.x, p.y, p.bwd_filter, p.w, count, &returned, results.data()));
  auto bytes_of = [&](int algo, cudnnMathType_t math, size_t& bytes) {
    PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_filter, math));
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(
               handle_, p.x, p.y, p.bwd_filter, p.w,
               static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), &bytes) == CUDNN_STATUS_SUCCESS;
  };
  auto ok = [&](auto... a) { return acceptable(a...); };
  fill_ranking(p.backward_filter.choices, results, returned, limit, ok, bytes_of,
               CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_FMA_MATH);
  p.backward_filter.name = backward_filter_name;
  p.backward_filter.injected_failures = settings_.injected_failures;
  PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_filter, p.backward_filter.chosen().math));
}

// Runs the direction's algorithm in use; when it fails, drops it for the next ranked one
// (for good: a refusal is not retried) and runs that, until one works or none is left.
template <typename Run>
void CudnnConvolutions::run_ranked(const Plan& p, Ranking& r, cudnnConvolutionDescriptor_t desc,
                                   const char* direction, Run&& run) {
  for (;;) {
    cudnnStatus_t status = CUDNN_STATUS_EXECUTION_FAILED;
    if (r.injected_failures > 0)
      --r.injected_failures;
    else
      status = run(r.chosen());
    if (status == CUDNN_STATUS_SUCCESS) {
      cuda::check_launch(direction, __FILE__, __LINE__);
      return;
    }
    const char* failed = r.name(r.chosen().algo);
    if (r.current + 1 == r.choices.size())
      fail("cuDNN convolution {}: every {} algorithm failed, the last ({}) with {}",
           shape_name(p.shape), direction, failed, cudnnGetErrorString(status));
    ++r.current;
    PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(desc, r.chosen().math));
    say(fmt::format("cuDNN conv {}: {} algorithm {} failed ({}); using {}", shape_name(p.shape),
                    direction, failed, cudnnGetErrorString(status), r.name(r.chosen().algo)));
  }
}

// alpha = 1, beta = 0: every call overwrites its output, as the op interface requires.
void CudnnConvolutions::forward(const ConvShape& shape, const float* x, const float* w,
                                const float* b, float* y, Activation act, void* workspace) {
  Plan& p = plan(shape);
  const float one = 1.0f, zero = 0.0f;
  const int spatial = shape.out_h() * shape.out_w();
  char* bytes = static_cast<char*>(workspace);
  if (settings_.precision == Precision::bf16) {
    void *x16 = bytes + p.x16_at, *y16 = bytes + p.y16_at, *w16 = bytes + p.w16_at;
    cuda::launch_to_bf16(stream_, x, x16, shape.input_elements());
    cuda::launch_to_bf16(stream_, w, w16, shape.weight_elements());
    run_ranked(p, p.forward, p.fwd, "forward", [&](const Ranking::Choice& c) {
      return cudnnConvolutionForward(handle_, &one, p.x, x16, p.w, w16, p.fwd,
                                     static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), workspace,
                                     c.bytes, &zero, p.y, y16);
    });
    cuda::launch_from_bf16(stream_, y16, y, shape.output_elements());
    if (b || act != Activation::none)
      cuda::launch_bias_activation(stream_, y, b, shape.n, shape.k, spatial, act);
    return;
  }
  run_ranked(p, p.forward, p.fwd, "forward", [&](const Ranking::Choice& c) {
    const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(c.algo);
    if (p.fuse && b && act == Activation::relu) {
      // y = relu(conv + 0 * z + b), z being y (cuDNN wants a valid z even when unread).
      const cudnnStatus_t fused = cudnnConvolutionBiasActivationForward(
          handle_, &one, p.x, x, p.w, w, p.fwd, algo, workspace, c.bytes, &zero, p.y, y, p.bias, b,
          relu_, p.y, y);
      if (fused == CUDNN_STATUS_SUCCESS) return fused;
      p.fuse = false;
      say(
          fmt::format("cuDNN conv {}: fused bias + ReLU refused with {} by {}; bias.cu's kernel "
                      "follows the convolution instead",
                      shape_name(p.shape), cudnnGetErrorString(fused), forward_name(c.algo)));
    }
    const cudnnStatus_t status = cudnnConvolutionForward(handle_, &one, p.x, x, p.w, w, p.fwd, algo,
                                                         workspace, c.bytes, &zero, p.y, y);
    if (status == CUDNN_STATUS_SUCCESS && (b || act != Activation::none))
      cuda::launch_bias_activation(stream_, y, b, shape.n, shape.k, spatial, act);
    return status;
  });
}

void CudnnConvolutions::backward_data(const ConvShape& shape, const float* dy, const float* w,
                                      float* dx, void* workspace) {
  Plan& p = plan(shape);
  const float one = 1.0f, zero = 0.0f;
  const void *dy_in = dy, *w_in = w;
  void* dx_out = dx;
  char* bytes = static_cast<char*>(workspace);
  const bool bf16 = settings_.precision == Precision::bf16;
  if (bf16) {
    dy_in = bytes + p.y16_at;
    w_in = bytes + p.w16_at;
    dx_out = bytes + p.x16_at;
    cuda::launch_to_bf16(stream_, dy, bytes + p.y16_at, shape.output_elements());
    cuda::launch_to_bf16(stream_, w, bytes + p.w16_at, shape.weight_elements());
  }
  run_ranked(p, p.backward_data, p.bwd_data, "backward-data", [&](const Ranking::Choice& c) {
    return cudnnConvolutionBackwardData(handle_, &one, p.w, w_in, p.y, dy_in, p.bwd_data,
                                        static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo),
                                        workspace, c.bytes, &zero, p.x, dx_out);
  });
  if (bf16) cuda::launch_from_bf16(stream_, dx_out, dx, shape.input_elements());
}

void CudnnConvolutions::backward_filter(const ConvShape& shape, const float* x, const float* dy,
                                        float* dw, void* workspace) {
  Plan& p = plan(shape);
  const float one = 1.0f, zero = 0.0f;
  const void *x_in = x, *dy_in = dy;
  void* dw_out = dw;
  char* bytes = static_cast<char*>(workspace);
  const bool bf16 = settings_.precision == Precision::bf16;
  if (bf16) {
    x_in = bytes + p.x16_at;
    dy_in = bytes + p.y16_at;
    dw_out = bytes + p.w16_at;
    cuda::launch_to_bf16(stream_, x, bytes + p.x16_at, shape.input_elements());
    cuda::launch_to_bf16(stream_, dy, bytes + p.y16_at, shape.output_elements());
  }
  run_ranked(p, p.backward_filter, p.bwd_filter, "backward-filter", [&](const Ranking::Choice& c) {
    return cudnnConvolutionBackwardFilter(handle_, &one, p.x, x_in, p.y, dy_in, p.bwd_filter,
                                          static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo),
                                          workspace, c.bytes, &zero, p.w, dw_out);
  });
  if (bf16) cuda::launch_from_bf16(stream_, dw_out, dw, shape.weight_elements());
}

}  // namespace plinth
