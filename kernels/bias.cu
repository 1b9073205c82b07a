// Per-channel bias: the fused bias + activation that follows cuDNN's convolution and the
// dense layers' GEMM, and the bias gradient. The per-element math is elementwise.h,
// shared with the CPU backend.
#include "engine/elementwise.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

__global__ void bias_activation_kernel(float* y, const float* b, size_t total, int c, int spatial,
                                       Activation act) {
  PLINTH_GRID_STRIDE_LOOP(i, total) {
    const float bias = b ? b[(i / spatial) % c] : 0.0f;
    y[i] = activate(act, y[i] + bias);
  }
}

// One block per channel; a fixed summation order keeps the gradient reproducible.
__global__ void bias_backward_kernel(const float* dy, float* db, int n, int c, int spatial) {
  const int channel = blockIdx.x;
  const size_t count = static_cast<size_t>(n) * spatial;
  double sum[1] = {0.0};
  for (size_t i = threadIdx.x; i < count; i += kThreads) {
    const size_t sample = i / spatial, pos = i % spatial;
    sum[0] += dy[(sample * c + channel) * spatial + pos];
  }
  block_sum(sum);
  if (threadIdx.x == 0) db[channel] = static_cast<float>(sum[0]);
}

}  // namespace

void launch_bias_activation(cudaStream_t stream, float* y, const float* b, int n, int c,
                            int spatial, Activation act) {
  const size_t total = static_cast<size_t>(n) * c * spatial;
  if (total == 0) return;
  bias_activation_kernel<<<grid_for(total), kThreads, 0, stream>>>(y, b, total, c, spatial, act);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda

using namespace cuda;

void CudaBackend::bias_activation_forward(float* y, const float* b, int n, int c, int spatial,
                                          Activation act) {
  launch_bias_activation(ctx_->stream, y, b, n, c, spatial, act);
}

void CudaBackend::bias_backward(const float* dy, float* db, int n, int c, int spatial) {
  if (c <= 0) return;
  // With no samples the gradient is zero; the kernel writes it (its loop is empty).
  bias_backward_kernel<<<c, kThreads, 0, ctx_->stream>>>(dy, db, n < 0 ? 0 : n, c,
                                                         spatial < 0 ? 0 : spatial);
  PLINTH_CUDA_CHECK_LAUNCH();
}

// The two kernels in turn: on a GPU the second read of dy comes from L2 and costs little.
void CudaBackend::bias_activation_backward(Activation act, const float* y, const float* dy,
                                           float* dx, float* db, int n, int c, int spatial) {
  activation_backward(act, y, dy, dx,
                      static_cast<size_t>(n < 0 ? 0 : n) * c * (spatial < 0 ? 0 : spatial));
  bias_backward(dx, db, n, c, spatial);
}

}  // namespace plinth
