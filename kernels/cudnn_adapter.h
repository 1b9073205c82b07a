// Every cuDNN call of plinth lives behind this adapter. cuDNN changed its API between
// major versions, so the version is checked here and only here: at compile time below,
// and at run time (the loaded library against the headers) by check_cudnn_version(), whose
// comparison is kernels/library_version.h.
// The convolution uses the legacy descriptor API, present in cuDNN 8 and 9.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
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

// Convolutions through cuDNN, NCHW float32 tensors, cross-correlation. Per shape,
// prepare() creates the descriptors and ranks each direction's algorithms once
// (heuristics, honouring determinism, the precision and the workspace limit). An
// algorithm that fails when it runs is dropped for the next one, as PyTorch does, so
// that a cuDNN refusal costs speed, not the run; `log` hears each choice and each drop.
class CudnnConvolutions {
 public:
  struct Settings {
    Precision precision = Precision::fp32;
    bool deterministic = false;
    std::function<void(const std::string&)> log;  // may be empty
    int injected_failures = 0;                    // CudaOptions::injected_algorithm_failures
  };
  CudnnConvolutions(cudaStream_t stream, Settings settings);
  ~CudnnConvolutions();
  CudnnConvolutions(const CudnnConvolutions&) = delete;
  CudnnConvolutions& operator=(const CudnnConvolutions&) = delete;

  // Returns the workspace the shape needs: enough for every ranked algorithm (each at most
  // workspace_limit, unless none fits and the last resort needs more) and, in bf16, the
  // operands' bfloat16 copies. Cheap for a shape already prepared.
  size_t prepare(const ConvShape& shape, size_t workspace_limit);
  bool prepared(const ConvShape& shape) const;

  // The shape must be prepared and workspace must hold what prepare() returned.
  // y = act(conv(x, w) + b), b may be null: one cuDNN call where cuDNN fuses the bias and
  // the activation (ReLU with a bias, outside bf16), else the convolution and then
  // bias.cu's kernel.
  void forward(const ConvShape& shape, const float* x, const float* w, const float* b, float* y,
               Activation act, void* workspace);
  void backward_data(const ConvShape& shape, const float* dy, const float* w, float* dx,
                     void* workspace);
  void backward_filter(const ConvShape& shape, const float* x, const float* dy, float* dw,
                       void* workspace);

 private:
  struct Ranking;
  struct Plan;
  using Key = std::array<int, 9>;
  static Key key_of(const ConvShape& s);
  Plan& plan(const ConvShape& shape);
  void rank_forward(Plan& plan, size_t limit);
  void rank_backward_data(Plan& plan, size_t limit);
  void rank_backward_filter(Plan& plan, size_t limit);
  bool acceptable(cudnnStatus_t status, cudnnDeterminism_t determinism, cudnnMathType_t math) const;
  template <typename Run>
  void run_ranked(const Plan& plan, Ranking& ranking, cudnnConvolutionDescriptor_t desc,
                  const char* direction, Run&& run);
  void say(const std::string& line) const;

  cudaStream_t stream_ = nullptr;
  cudnnHandle_t handle_ = nullptr;
  cudnnActivationDescriptor_t relu_ = nullptr;
  Settings settings_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace plinth
