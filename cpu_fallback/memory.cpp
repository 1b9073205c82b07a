// CpuBackend's memory ops: host memory is device memory here, 64-byte aligned.
#include <cstring>

#include "cpu_fallback/aligned_buffer.h"
#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"

namespace plinth {

void* CpuBackend::allocate(size_t bytes) { return cpu::aligned_allocate(bytes); }
void CpuBackend::deallocate(void* ptr) noexcept { cpu::aligned_free(ptr); }

// Zero-byte copies may come with null pointers, which memcpy does not accept.
void CpuBackend::upload(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes) std::memcpy(device_dst, host_src, bytes);
}
void CpuBackend::download(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes) std::memcpy(host_dst, device_src, bytes);
}
void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::fill(float* x, size_t n, float value) {
  cpu::parallel_for(threads_, n, [&](size_t i) { x[i] = value; });
}

// Every op has finished when it returns.
void CpuBackend::synchronize() {}

}  // namespace plinth
