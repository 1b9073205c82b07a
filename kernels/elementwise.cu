// Elementwise kernels: fill, bias + activation, activations, dropout, accumulate,
// increment, and the per-channel bias gradient. The per-element math is elementwise.h,
// shared with the CPU backend.
#include "engine/elementwise.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

__global__ void fill_kernel(float* x, size_t n, float value) {
  PLINTH_GRID_STRIDE_LOOP(i, n) x[i] = value;
}

__global__ void bias_activation_kernel(float* y, const float* b, size_t total, int c,
                                       int spatial, Activation act) {
  PLINTH_GRID_STRIDE_LOOP(i, total) {
    const float bias = b ? b[(i / spatial) % c] : 0.0f;
    y[i] = activate(act, y[i] + bias);
  }
}

__global__ void activation_forward_kernel(Activation act, const float* x, float* y, size_t n) {
  PLINTH_GRID_STRIDE_LOOP(i, n) y[i] = activate(act, x[i]);
}

// dx may alias dy: each element is read before it is written, by the same thread.
__global__ void activation_backward_kernel(Activation act, const float* y, const float* dy,
                                           float* dx, size_t n) {
  PLINTH_GRID_STRIDE_LOOP(i, n) dx[i] = activation_grad(act, y[i], dy[i]);
}

__global__ void dropout_forward_kernel(const float* x, float* y, float* mask, size_t n,
                                       float rate, uint64_t seed, const int64_t* step) {
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

__global__ void accumulate_kernel(const float* x, float* y, size_t n) {
  PLINTH_GRID_STRIDE_LOOP(i, n) y[i] += x[i];
}

__global__ void increment_kernel(int64_t* counter) { *counter += 1; }

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

void CudaBackend::fill(float* x, size_t n, float value) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(x, n, value);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::bias_activation_forward(float* y, const float* b, int n, int c, int spatial,
                                          Activation act) {
  launch_bias_activation(ctx_->stream, y, b, n, c, spatial, act);
}

void CudaBackend::activation_forward(Activation act, const float* x, float* y, size_t n) {
  if (n == 0) return;
  activation_forward_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(act, x, y, n);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::activation_backward(Activation act, const float* y, const float* dy,
                                      float* dx, size_t n) {
  if (n == 0) return;
  activation_backward_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(act, y, dy, dx, n);
  PLINTH_CUDA_CHECK_LAUNCH();
}

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

void CudaBackend::accumulate(const float* x, float* y, size_t n) {
  if (n == 0) return;
  accumulate_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(x, y, n);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::increment(int64_t* counter) {
  increment_kernel<<<1, 1, 0, ctx_->stream>>>(counter);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::bias_backward(const float* dy, float* db, int n, int c, int spatial) {
  if (c <= 0) return;
  // With no samples the gradient is zero; the kernel writes it (its loop is empty).
  bias_backward_kernel<<<c, kThreads, 0, ctx_->stream>>>(dy, db, n < 0 ? 0 : n, c,
                                                         spatial < 0 ? 0 : spatial);
  PLINTH_CUDA_CHECK_LAUNCH();
}

// The two kernels in turn: on a GPU the second read of dy comes from L2 and costs little.
void CudaBackend::bias_activation_backward(Activation act, const float* y, const float* dy, float* dx,
                                           float* db, int n, int c, int spatial) {
  activation_backward(act, y, dy, dx, static_cast<size_t>(n < 0 ? 0 : n) * c * (spatial < 0 ? 0 : spatial));
  bias_backward(dx, db, n, c, spatial);
}

}  // namespace plinth
