// Every CUDA runtime call and every kernel launch goes through these macros, so a failure
// becomes a plinth::Error naming the call, where it was made and what the driver said.
// cuDNN and cuBLAS have their own macros in their adapters, built on library_error().
#pragma once

#include <cuda_runtime_api.h>

namespace plinth::cuda {

// Throws plinth::Error("<library> error in <call> at <file>:<line>: <message>").
[[noreturn]] void library_error(const char* library, const char* call, const char* file, int line,
                                const char* message);

}  // namespace plinth::cuda

#define PLINTH_CUDA_CHECK(call)                                               \
  do {                                                                        \
    const cudaError_t plinth_cuda_status_ = (call);                           \
    if (plinth_cuda_status_ != cudaSuccess)                                   \
      ::plinth::cuda::library_error("CUDA", #call, __FILE__, __LINE__,        \
                                    cudaGetErrorString(plinth_cuda_status_)); \
  } while (0)

// After each <<<...>>> launch: catches bad launch configurations at once. Errors inside a
// running kernel surface at the next synchronising call (download, synchronize).
#define PLINTH_CUDA_CHECK_LAUNCH() PLINTH_CUDA_CHECK(cudaGetLastError())
