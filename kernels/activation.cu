// Elementwise activations. The per-element math is elementwise.h, shared with the CPU
// backend.
#include "engine/elementwise.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

__global__ void activation_forward_kernel(Activation act, const float* x, float* y, size_t n) {
  PLINTH_GRID_STRIDE_LOOP(i, n) y[i] = activate(act, x[i]);
}

// dx may alias dy: each element is read before it is written, by the same thread.
__global__ void activation_backward_kernel(Activation act, const float* y, const float* dy,
                                           float* dx, size_t n) {
  PLINTH_GRID_STRIDE_LOOP(i, n) dx[i] = activation_grad(act, y[i], dy[i]);
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::activation_forward(Activation act, const float* x, float* y, size_t n) {
  if (n == 0) return;
  activation_forward_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(act, x, y, n);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::activation_backward(Activation act, const float* y, const float* dy, float* dx,
                                      size_t n) {
  if (n == 0) return;
  activation_backward_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(act, y, dy, dx, n);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace plinth
