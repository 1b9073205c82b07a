// Every CUDA runtime call and every kernel launch goes through these macros, so a failure
// becomes a plinth::Error naming the call, where it was made and what the driver said.
// cuDNN and cuBLAS have their own macros in their adapters, built on library_error().
#pragma once

#include <cuda_runtime_api.h>

namespace plinth::cuda {

// Throws plinth::Error("<library> error in <call> at <file>:<line>: <message>").
[[noreturn]] void library_error(const char* library, const char* call, const char* file, int line,
                                const char* message);

// The debugging switch behind CudaOptions::sync_launches and PLINTH_SYNC_LAUNCHES=1: while
// it is on, every launch waits for the device, so that a fault inside a kernel is reported
// at the launch that caused it instead of at the next checked call. It is process-wide
// (launchers know their stream, not their backend) and, once on, stays on.
void enable_sync_launches();
bool sync_launches();

// After a kernel launch or a library call that queues work, `what` being the launching
// function: throws for a bad launch configuration at once and, with sync_launches(), for
// a fault inside the kernel.
void check_launch(const char* what, const char* file, int line);

}  // namespace plinth::cuda

#define PLINTH_CUDA_CHECK(call)                                               \
  do {                                                                        \
    const cudaError_t plinth_cuda_status_ = (call);                           \
    if (plinth_cuda_status_ != cudaSuccess)                                   \
      ::plinth::cuda::library_error("CUDA", #call, __FILE__, __LINE__,        \
                                    cudaGetErrorString(plinth_cuda_status_)); \
  } while (0)

// After each <<<...>>> launch. Errors inside a running kernel surface at the next
// synchronising call (download, synchronize), or at once with sync_launches().
#define PLINTH_CUDA_CHECK_LAUNCH() ::plinth::cuda::check_launch(__func__, __FILE__, __LINE__)
