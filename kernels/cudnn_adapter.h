// Every cuDNN call of plinth lives behind this adapter. cuDNN changed its API between
// major versions, so the version is checked here and only here: at compile time below,
// and at run time (the loaded library against the headers) by check_cudnn_version().
// The convolution uses the legacy descriptor API, present in cuDNN 8 and 9.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "engine/backend.h"
#include "kernels/cuda_check.h"

#if !defined(CUDNN_MAJOR) || CUDNN_MAJOR < 8
// Install cuDNN 8 or 9, or configure with -DPLINTH_CUDA=OFF.
#error "plinth needs cuDNN 8 or newer (cudnn_version.h says otherwise)"
#endif

#define PLINTH_CUDNN_CHECK(call)                                                \
  do {                                                                          \
    const cudnnStatus_t plinth_cudnn_status_ = (call);                          \
    if (plinth_cudnn_status_ != CUDNN_STATUS_SUCCESS)                           \
      ::plinth::cuda::library_error("cuDNN", #call, __FILE__, __LINE__,         \
                                    cudnnGetErrorString(plinth_cudnn_status_)); \
  } while (0)

namespace plinth {

// "9.19.0": the headers plinth was compiled with, and the library loaded at run time.
std::string cudnn_build_version();
std::string cudnn_loaded_version();
// Throws plinth::Error when the loaded cuDNN's major version differs from the headers', or
// when it is older than the headers (a lower minor version).
void check_cudnn_version();

// Convolutions through cuDNN, NCHW float32, cross-correlation. Per shape, prepare()
// creates the descriptors and picks the forward, backward-data and backward-filter
// algorithms once (heuristics, honouring determinism, TF32 and the workspace limit).
class CudnnConvolutions {
 public:
  CudnnConvolutions(cudaStream_t stream, bool allow_tf32, bool deterministic);
  ~CudnnConvolutions();
  CudnnConvolutions(const CudnnConvolutions&) = delete;
  CudnnConvolutions& operator=(const CudnnConvolutions&) = delete;

  // Returns the workspace the chosen algorithms need (at most workspace_limit unless no
  // algorithm fits, then the smallest fallback's). Cheap for a shape already prepared.
  size_t prepare(const ConvShape& shape, size_t workspace_limit);
  bool prepared(const ConvShape& shape) const;

  // The shape must be prepared and workspace must hold what prepare() returned.
  void forward(const ConvShape& shape, const float* x, const float* w, float* y, void* workspace);
  void backward_data(const ConvShape& shape, const float* dy, const float* w, float* dx,
                     void* workspace);
  void backward_filter(const ConvShape& shape, const float* x, const float* dy, float* dw,
                       void* workspace);

 private:
  struct Plan;
  using Key = std::array<int, 9>;
  static Key key_of(const ConvShape& s);
  const Plan& plan(const ConvShape& shape) const;
  void choose_forward(Plan& plan, size_t limit);
  void choose_backward_data(Plan& plan, size_t limit);
  void choose_backward_filter(Plan& plan, size_t limit);
  bool acceptable(cudnnStatus_t status, cudnnDeterminism_t determinism, cudnnMathType_t math) const;

  cudnnHandle_t handle_ = nullptr;
  bool allow_tf32_, deterministic_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace plinth
