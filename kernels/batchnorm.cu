// Batch normalisation per channel of [n, c, spatial]. Statistics and gradient sums are
// one block per channel, summed in double with launch.cuh's fixed tree, so repeated runs
// give identical bits; the elementwise passes share elementwise.h's math with the CPU.
#include <cmath>

#include "engine/elementwise.h"
#include "engine/op_shapes.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

// Element j of a channel's n * spatial values.
template <typename Index>
__device__ size_t channel_element(const BatchNormShape& s, int channel, Index j) {
  const Index sample = j / static_cast<Index>(s.spatial);
  const Index pos = j - sample * static_cast<Index>(s.spatial);
  return (static_cast<size_t>(sample) * s.c + channel) * s.spatial + pos;
}

// Channel of element i of [n, c, spatial].
template <typename Index>
__device__ int channel_of(const BatchNormShape& s, Index i) {
  return static_cast<int>(i / static_cast<Index>(s.spatial) % static_cast<Index>(s.c));
}

// One block per channel: the batch's mean and invstd, and the running estimates' step.
template <typename Index>
__global__ void batch_statistics_kernel(BatchNormShape s, const float* x, float* running_mean,
                                        float* running_var, float* saved_mean,
                                        float* saved_invstd) {
  const int k = blockIdx.x;
  const size_t m = s.per_channel();
  double v[2] = {0.0, 0.0};
  for (Index j = threadIdx.x; j < static_cast<Index>(m); j += kThreads) {
    const double xj = x[channel_element(s, k, j)];
    v[0] += xj;
    v[1] += xj * xj;
  }
  block_sum(v);
  if (threadIdx.x != 0) return;
  const double mean = v[0] / static_cast<double>(m);
  const double var = fmax(0.0, v[1] / static_cast<double>(m) - mean * mean);
  saved_mean[k] = static_cast<float>(mean);
  saved_invstd[k] = static_cast<float>(1.0 / sqrt(var + s.eps));
  running_mean[k] = running_average(running_mean[k], mean, s.momentum);
  running_var[k] = running_average(running_var[k], unbiased_variance(var, m), s.momentum);
}

__global__ void running_statistics_kernel(BatchNormShape s, const float* running_mean,
                                          const float* running_var, float* saved_mean,
                                          float* saved_invstd) {
  PLINTH_GRID_STRIDE_LOOP(k, static_cast<size_t>(s.c)) {
    saved_mean[k] = running_mean[k];
    saved_invstd[k] = static_cast<float>(1.0 / sqrt(static_cast<double>(running_var[k]) + s.eps));
  }
}

template <typename Index>
__global__ void normalize_kernel(BatchNormShape s, const float* x, const float* weight,
                                 const float* bias, const float* mean, const float* invstd,
                                 float* y, Activation act) {
  PLINTH_INDEX_LOOP(Index, i, s.elements()) {
    const int k = channel_of(s, i);
    const float scale = weight[k] * invstd[k], shift = bias[k] - mean[k] * scale;
    y[i] = activate(act, x[i] * scale + shift);
  }
}

// One block per channel: dbias = sum of dz, dweight = sum of dz * xhat.
template <typename Index>
__global__ void gradient_sums_kernel(BatchNormShape s, Activation act, const float* x,
                                     const float* y, const float* dy, const float* mean,
                                     const float* invstd, float* dweight, float* dbias) {
  const int k = blockIdx.x;
  const size_t m = s.per_channel();
  double v[2] = {0.0, 0.0};
  for (Index j = threadIdx.x; j < static_cast<Index>(m); j += kThreads) {
    const size_t i = channel_element(s, k, j);
    const float dz = activation_grad(act, y[i], dy[i]);
    v[0] += dz;
    v[1] += dz * ((x[i] - mean[k]) * invstd[k]);
  }
  block_sum(v);
  if (threadIdx.x != 0) return;
  dbias[k] = static_cast<float>(v[0]);
  dweight[k] = static_cast<float>(v[1]);
}

// dx may alias dy: each element is read before it is written, by the same thread.
template <typename Index>
__global__ void input_gradient_kernel(BatchNormShape s, bool training, Activation act,
                                      const float* x, const float* y, const float* dy,
                                      const float* weight, const float* mean, const float* invstd,
                                      const float* dweight, const float* dbias, float* dx) {
  const float m = static_cast<float>(s.per_channel());
  PLINTH_INDEX_LOOP(Index, i, s.elements()) {
    const int k = channel_of(s, i);
    const BatchNormInputGrad<float> g =
        batchnorm_input_grad(training, weight[k], invstd[k], dbias[k] / m, dweight[k] / m);
    dx[i] = g.a * activation_grad(act, y[i], dy[i]) + g.b * (x[i] - mean[k]) + g.c;
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::batchnorm_forward(const BatchNormShape& shape, bool training, const float* x,
                                    const float* weight, const float* bias, float* running_mean,
                                    float* running_var, float* saved_mean, float* saved_invstd,
                                    float* y, Activation act) {
  check_batchnorm_shape(shape, "batchnorm_forward");
  const size_t total = shape.elements();
  if (total == 0) return;
  if (!training)
    running_statistics_kernel<<<grid_for(shape.c), kThreads, 0, ctx_->stream>>>(
        shape, running_mean, running_var, saved_mean, saved_invstd);
  else if (fits_32bit_index(total))
    batch_statistics_kernel<uint32_t><<<shape.c, kThreads, 0, ctx_->stream>>>(
        shape, x, running_mean, running_var, saved_mean, saved_invstd);
  else
    batch_statistics_kernel<uint64_t><<<shape.c, kThreads, 0, ctx_->stream>>>(
        shape, x, running_mean, running_var, saved_mean, saved_invstd);
  PLINTH_CUDA_CHECK_LAUNCH();
  PLINTH_LAUNCH_INDEXED(normalize_kernel, total, ctx_->stream, shape, x, weight, bias, saved_mean,
                        saved_invstd, y, act);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::batchnorm_backward(const BatchNormShape& shape, bool training, Activation act,
                                     const float* x, const float* y, const float* dy,
                                     const float* weight, const float* saved_mean,
                                     const float* saved_invstd, float* dx, float* dweight,
                                     float* dbias) {
  check_batchnorm_shape(shape, "batchnorm_backward");
  const size_t total = shape.elements();
  if (total == 0) return;
  if (fits_32bit_index(total))
    gradient_sums_kernel<uint32_t><<<shape.c, kThreads, 0, ctx_->stream>>>(
        shape, act, x, y, dy, saved_mean, saved_invstd, dweight, dbias);
  else
    gradient_sums_kernel<uint64_t><<<shape.c, kThreads, 0, ctx_->stream>>>(
        shape, act, x, y, dy, saved_mean, saved_invstd, dweight, dbias);
  PLINTH_CUDA_CHECK_LAUNCH();
  if (!dx) return;
  PLINTH_LAUNCH_INDEXED(input_gradient_kernel, total, ctx_->stream, shape, training, act, x, y, dy,
                        weight, saved_mean, saved_invstd, dweight, dbias, dx);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace plinth
