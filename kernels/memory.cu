// CudaBackend's memory ops: device allocations (through the context's allocator, whose
// out-of-memory error users can act on), copies queued on the backend's stream, and fill.
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

__global__ void fill_kernel(float* x, size_t n, float value) {
  PLINTH_GRID_STRIDE_LOOP(i, n) x[i] = value;
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void* CudaBackend::allocate(size_t bytes) {
  return bytes == 0 ? nullptr : allocate_device_memory(bytes);
}

void CudaBackend::deallocate(void* ptr) noexcept {
  if (ptr) cudaFree(ptr);  // waits for the device; a failure here cannot be reported
}

// Host memory from the engine is pageable: cudaMemcpyAsync stages it before returning,
// so the caller may reuse its buffer at once.
void CudaBackend::upload(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes == 0) return;
  PLINTH_CUDA_CHECK(
      cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, ctx_->stream));
}

void CudaBackend::download(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes == 0) return;
  PLINTH_CUDA_CHECK(
      cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, ctx_->stream));
  PLINTH_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  PLINTH_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_->stream));
}

void CudaBackend::fill(float* x, size_t n, float value) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(x, n, value);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::synchronize() { PLINTH_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream)); }

}  // namespace plinth
