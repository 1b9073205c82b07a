// What one CudaBackend owns on the device: its stream (every op is queued on it), the
// library handles bound to that stream, and the scratch memory that ops reuse so that no
// op ever allocates. Only kernels/ includes this header.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <cuda_runtime_api.h>

#include "engine/device.h"

namespace plinth {

class CublasGemm;
class CudnnConvolutions;

// The deterministic reductions (losses, sum_squares, count_nonfinite) write one partial
// sum per block and value here, then one block adds the partials in a fixed order.
inline constexpr int kMaxPartialBlocks = 1024;
inline constexpr int kMaxPartialValues = 2;

struct CudaContext {
  CudaDeviceInfo device;
  std::string cudnn_version;  // of the loaded library

  cudaStream_t stream = nullptr;
  double* partials = nullptr;  // kMaxPartialBlocks * kMaxPartialValues
  void* workspace = nullptr;   // convolution workspace, grown only by reserve_workspace
  size_t workspace_bytes = 0;
  void* blas_workspace = nullptr;  // given to cuBLAS so that it never allocates
  std::unique_ptr<CublasGemm> blas;
  std::unique_ptr<CudnnConvolutions> cudnn;  // null when the native convolution is used

  CudaContext() = default;
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  ~CudaContext();  // frees whatever was created, in reverse order; never throws

  // Grows the workspace to at least bytes (waits for queued work before freeing the old).
  void reserve_workspace(size_t bytes);
};

// cudaMalloc that throws the out-of-memory message users can act on.
void* allocate_device_memory(size_t bytes);

namespace cuda {
// Number of CUDA devices; 0 with reason set to one line when there is none or no driver.
int device_count(std::string& reason);
// Properties and free memory of one device (this creates its context); on failure
// returns false with error set to one line.
bool query_device(int index, CudaDeviceInfo& info, std::string& error);
}  // namespace cuda

}  // namespace plinth
