// Inverted dropout with the counter-based mask of elementwise.h (dropout_mask), so that
// the CPU and CUDA backends draw the same mask for the same (seed, step, index).
#include "engine/elementwise.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

__global__ void dropout_forward_kernel(const float* x, float* y, float* mask, size_t n, float rate,
                                       uint64_t seed, const int64_t* step) {
  const int64_t s = *step;
  PLINTH_GRID_STRIDE_LOOP(i, n) {
    const float m = dropout_mask(seed, s, i, rate);
    if (mask) mask[i] = m;
    y[i] = x[i] * m;
  }
}

__global__ void multiply_kernel(const float* a, const float* b, float* out, size_t n) {
  PLINTH_GRID_STRIDE_LOOP(i, n) out[i] = a[i] * b[i];
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::dropout_forward(const float* x, float* y, float* mask, size_t n, float rate,
                                  uint64_t seed, const int64_t* step) {
  if (n == 0) return;
  dropout_forward_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(x, y, mask, n, rate, seed,
                                                                     step);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::dropout_backward(const float* dy, const float* mask, float* dx, size_t n) {
  if (n == 0) return;
  multiply_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(dy, mask, dx, n);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace plinth
