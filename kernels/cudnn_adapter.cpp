#include "kernels/cudnn_adapter.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "engine/error.h"

namespace plinth {

namespace {

std::string loaded_version(int* major = nullptr, int* minor = nullptr) {
  int v[3] = {0, 0, 0};
  PLINTH_CUDNN_CHECK(cudnnGetProperty(MAJOR_VERSION, &v[0]));
  PLINTH_CUDNN_CHECK(cudnnGetProperty(MINOR_VERSION, &v[1]));
  PLINTH_CUDNN_CHECK(cudnnGetProperty(PATCH_LEVEL, &v[2]));
  if (major) *major = v[0];
  if (minor) *minor = v[1];
  return fmt::format("{}.{}.{}", v[0], v[1], v[2]);
}

}  // namespace

std::string cudnn_build_version() {
  return fmt::format("{}.{}.{}", CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
}

std::string cudnn_loaded_version() { return loaded_version(); }

// cuDNN keeps its API within a major version and a library may be newer than the headers
// it is used with, not older: an older minor can lack what the headers declare.
void check_cudnn_version() {
  int major = 0, minor = 0;
  const std::string loaded = loaded_version(&major, &minor);
  if (major != CUDNN_MAJOR)
    fail(
        "cuDNN version mismatch: plinth was built with cuDNN {} but the loaded libcudnn is {}; "
        "install cuDNN {}.x or rebuild plinth",
        cudnn_build_version(), loaded, CUDNN_MAJOR);
  if (minor < CUDNN_MINOR)
    fail(
        "cuDNN {} loaded at run time is older than the cuDNN {} headers plinth was built with; "
        "put cuDNN {}.{} or newer first on the library path (LD_LIBRARY_PATH) or rebuild plinth "
        "against the older headers (-DPLINTH_CUDNN_ROOT=...)",
        loaded, cudnn_build_version(), CUDNN_MAJOR, CUDNN_MINOR);
}

// Descriptors and chosen algorithms of one shape. Each direction has its own convolution
// descriptor because cuDNN reads the math type (FMA or tensor cores) from it, and that
// belongs to the algorithm chosen for the direction.
struct CudnnConvolutions::Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t fwd = nullptr, bwd_data = nullptr, bwd_filter = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {  // destructors must not throw: statuses are ignored here
    for (cudnnConvolutionDescriptor_t d : {fwd, bwd_data, bwd_filter})
      if (d) cudnnDestroyConvolutionDescriptor(d);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
};

CudnnConvolutions::CudnnConvolutions(cudaStream_t stream, bool allow_tf32, bool deterministic)
    : allow_tf32_(allow_tf32), deterministic_(deterministic) {
  PLINTH_CUDNN_CHECK(cudnnCreate(&handle_));
  try {
    PLINTH_CUDNN_CHECK(cudnnSetStream(handle_, stream));
  } catch (...) {
    cudnnDestroy(handle_);
    throw;
  }
}

CudnnConvolutions::~CudnnConvolutions() {
  plans_.clear();  // descriptors before the handle
  if (handle_) cudnnDestroy(handle_);
}

CudnnConvolutions::Key CudnnConvolutions::key_of(const ConvShape& s) {
  return {s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride, s.pad};
}

bool CudnnConvolutions::prepared(const ConvShape& shape) const {
  return plans_.count(key_of(shape)) != 0;
}

const CudnnConvolutions::Plan& CudnnConvolutions::plan(const ConvShape& shape) const {
  const auto it = plans_.find(key_of(shape));
  if (it == plans_.end())
    fail("cuDNN convolution: shape n={} c={} h={} w={} k={} was not prepared", shape.n, shape.c,
         shape.h, shape.w, shape.k);
  return *it->second;
}

size_t CudnnConvolutions::prepare(const ConvShape& s, size_t workspace_limit) {
  const Key key = key_of(s);
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    auto p = std::make_unique<Plan>();
    PLINTH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
    PLINTH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
    PLINTH_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    PLINTH_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.n, s.c, s.h, s.w));
    PLINTH_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.n,
                                                  s.k, s.out_h(), s.out_w()));
    PLINTH_CUDNN_CHECK(
        cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.k, s.c, s.r, s.s));
    // Without TF32, FMA math keeps every algorithm in true fp32.
    const cudnnMathType_t math = allow_tf32_ ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    for (cudnnConvolutionDescriptor_t* d : {&p->fwd, &p->bwd_data, &p->bwd_filter}) {
      PLINTH_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(d));
      PLINTH_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
          *d, s.pad, s.pad, s.stride, s.stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
      PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(*d, math));
    }
    int on = 0, ok = 0, oh = 0, ow = 0;
    PLINTH_CUDNN_CHECK(
        cudnnGetConvolution2dForwardOutputDim(p->fwd, p->x, p->w, &on, &ok, &oh, &ow));
    if (on != s.n || ok != s.k || oh != s.out_h() || ow != s.out_w())
      fail("cuDNN convolution: output {}x{}x{}x{} differs from plinth's {}x{}x{}x{}", on, ok, oh,
           ow, s.n, s.k, s.out_h(), s.out_w());
    choose_forward(*p, workspace_limit);
    choose_backward_data(*p, workspace_limit);
    choose_backward_filter(*p, workspace_limit);
    it = plans_.emplace(key, std::move(p)).first;
  }
  const Plan& p = *it->second;
  return std::max({p.fwd_bytes, p.bwd_data_bytes, p.bwd_filter_bytes});
}

bool CudnnConvolutions::acceptable(cudnnStatus_t status, cudnnDeterminism_t determinism,
                                   cudnnMathType_t math) const {
  if (status != CUDNN_STATUS_SUCCESS) return false;
  if (deterministic_ && determinism != CUDNN_DETERMINISTIC) return false;
  if (!allow_tf32_ && math != CUDNN_FMA_MATH) return false;
  return true;
}

// Each choose_* takes the first heuristic result (best first) that our options accept
// and whose workspace fits; if none does, a deterministic FMA algorithm that needs little
// or no workspace.
void CudnnConvolutions::choose_forward(Plan& p, size_t limit) {
  int count = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle_, &count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> results(std::max(count, 1));
  int returned = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p.x, p.w, p.fwd, p.y, count,
                                                            &returned, results.data()));
  for (int i = 0; i < returned; ++i) {
    const cudnnConvolutionFwdAlgoPerf_t& r = results[i];
    if (!acceptable(r.status, r.determinism, r.mathType)) continue;
    PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.fwd, r.mathType));
    size_t bytes = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(handle_, p.x, p.w, p.fwd, p.y, r.algo, &bytes) ==
            CUDNN_STATUS_SUCCESS &&
        bytes <= limit) {
      p.fwd_algo = r.algo;
      p.fwd_bytes = bytes;
      return;
    }
  }
  PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.fwd, CUDNN_FMA_MATH));
  p.fwd_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle_, p.x, p.w, p.fwd, p.y,
                                                             p.fwd_algo, &p.fwd_bytes));
}

void CudnnConvolutions::choose_backward_data(Plan& p, size_t limit) {
  int count = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle_, &count));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> results(std::max(count, 1));
  int returned = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p.w, p.y, p.bwd_data, p.x,
                                                                 count, &returned, results.data()));
  for (int i = 0; i < returned; ++i) {
    const cudnnConvolutionBwdDataAlgoPerf_t& r = results[i];
    if (!acceptable(r.status, r.determinism, r.mathType)) continue;
    PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_data, r.mathType));
    size_t bytes = 0;
    if (cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, p.w, p.y, p.bwd_data, p.x, r.algo,
                                                     &bytes) == CUDNN_STATUS_SUCCESS &&
        bytes <= limit) {
      p.bwd_data_algo = r.algo;
      p.bwd_data_bytes = bytes;
      return;
    }
  }
  PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_data, CUDNN_FMA_MATH));
  p.bwd_data_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
      handle_, p.w, p.y, p.bwd_data, p.x, p.bwd_data_algo, &p.bwd_data_bytes));
}

void CudnnConvolutions::choose_backward_filter(Plan& p, size_t limit) {
  int count = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle_, &count));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> results(std::max(count, 1));
  int returned = 0;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      handle_, p.x, p.y, p.bwd_filter, p.w, count, &returned, results.data()));
  for (int i = 0; i < returned; ++i) {
    const cudnnConvolutionBwdFilterAlgoPerf_t& r = results[i];
    if (!acceptable(r.status, r.determinism, r.mathType)) continue;
    PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_filter, r.mathType));
    size_t bytes = 0;
    if (cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, p.x, p.y, p.bwd_filter, p.w, r.algo,
                                                       &bytes) == CUDNN_STATUS_SUCCESS &&
        bytes <= limit) {
      p.bwd_filter_algo = r.algo;
      p.bwd_filter_bytes = bytes;
      return;
    }
  }
  PLINTH_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_filter, CUDNN_FMA_MATH));
  p.bwd_filter_algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  PLINTH_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
      handle_, p.x, p.y, p.bwd_filter, p.w, p.bwd_filter_algo, &p.bwd_filter_bytes));
}

// alpha = 1, beta = 0: every call overwrites its output, as the op interface requires.
void CudnnConvolutions::forward(const ConvShape& shape, const float* x, const float* w, float* y,
                                void* workspace) {
  const Plan& p = plan(shape);
  const float one = 1.0f, zero = 0.0f;
  PLINTH_CUDNN_CHECK(cudnnConvolutionForward(handle_, &one, p.x, x, p.w, w, p.fwd, p.fwd_algo,
                                             workspace, p.fwd_bytes, &zero, p.y, y));
}

void CudnnConvolutions::backward_data(const ConvShape& shape, const float* dy, const float* w,
                                      float* dx, void* workspace) {
  const Plan& p = plan(shape);
  const float one = 1.0f, zero = 0.0f;
  PLINTH_CUDNN_CHECK(cudnnConvolutionBackwardData(handle_, &one, p.w, w, p.y, dy, p.bwd_data,
                                                  p.bwd_data_algo, workspace, p.bwd_data_bytes,
                                                  &zero, p.x, dx));
}

void CudnnConvolutions::backward_filter(const ConvShape& shape, const float* x, const float* dy,
                                        float* dw, void* workspace) {
  const Plan& p = plan(shape);
  const float one = 1.0f, zero = 0.0f;
  PLINTH_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle_, &one, p.x, x, p.y, dy, p.bwd_filter,
                                                    p.bwd_filter_algo, workspace,
                                                    p.bwd_filter_bytes, &zero, p.w, dw));
}

}  // namespace plinth
