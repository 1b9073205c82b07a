// Reductions to one value: sum of squares (global-norm clipping), the clip scale, and the
// count of non-finite values; the bookkeeping ops accumulate and increment; and the
// second pass that every deterministic reduction (these and the losses) ends with.
// Partial sums are doubles: the gradient norm of a whole model stays accurate and the
// result does not depend on the block count.
#include <cmath>

#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

__global__ void finish_sums_kernel(const double* partials, unsigned blocks, int values, float* out,
                                   float* count_out, float count) {
  double v[kMaxPartialValues] = {};
  for (unsigned b = threadIdx.x; b < blocks; b += kThreads)
    for (int j = 0; j < values; ++j) v[j] += partials[b * values + j];
  block_sum(v);
  if (threadIdx.x == 0) {
    for (int j = 0; j < values; ++j) out[j] += static_cast<float>(v[j]);
    if (count_out) *count_out += count;
  }
}

__global__ void sum_squares_kernel(const float* x, size_t n, double* partials) {
  double v[1] = {0.0};
  PLINTH_GRID_STRIDE_LOOP(i, n) {
    const double xi = x[i];
    v[0] += xi * xi;
  }
  block_sum_to_partials(v, partials);
}

__global__ void count_nonfinite_kernel(const float* x, size_t n, double* partials) {
  double v[1] = {0.0};
  PLINTH_GRID_STRIDE_LOOP(i, n) {
    if (!isfinite(x[i])) v[0] += 1.0;
  }
  block_sum_to_partials(v, partials);
}

__global__ void accumulate_kernel(const float* x, float* y, size_t n) {
  PLINTH_GRID_STRIDE_LOOP(i, n) y[i] += x[i];
}

__global__ void increment_kernel(int64_t* counter, const float* skip) {
  if (!skip || *skip == 0.0f) *counter += 1;
}

__global__ void clip_scale_kernel(const float* sum_sq, float max_norm, float* scale) {
  // A NaN norm gives 1 (fminf ignores NaN), as std::min(1.0f, NaN) does on the CPU.
  *scale = fminf(1.0f, max_norm / sqrtf(*sum_sq));
}

}  // namespace

void launch_finish_sums(cudaStream_t stream, const double* partials, unsigned blocks, int values,
                        float* out, float* count_out, float count) {
  finish_sums_kernel<<<1, kThreads, 0, stream>>>(partials, blocks, values, out, count_out, count);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda

using namespace cuda;

void CudaBackend::sum_squares(const float* x, size_t n, float* out) {
  if (n == 0) return;
  const unsigned blocks = partial_grid_for(n);
  sum_squares_kernel<<<blocks, kThreads, 0, ctx_->stream>>>(x, n, ctx_->partials);
  PLINTH_CUDA_CHECK_LAUNCH();
  launch_finish_sums(ctx_->stream, ctx_->partials, blocks, 1, out, nullptr, 0.0f);
}

void CudaBackend::clip_scale(const float* sum_sq, float max_norm, float* scale) {
  clip_scale_kernel<<<1, 1, 0, ctx_->stream>>>(sum_sq, max_norm, scale);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::count_nonfinite(const float* x, size_t n, float* stats) {
  if (n == 0) return;
  const unsigned blocks = partial_grid_for(n);
  count_nonfinite_kernel<<<blocks, kThreads, 0, ctx_->stream>>>(x, n, ctx_->partials);
  PLINTH_CUDA_CHECK_LAUNCH();
  launch_finish_sums(ctx_->stream, ctx_->partials, blocks, 1, stats + kStatNonFinite, nullptr,
                     0.0f);
}

void CudaBackend::accumulate(const float* x, float* y, size_t n) {
  if (n == 0) return;
  accumulate_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(x, y, n);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::increment(int64_t* counter, const float* skip) {
  increment_kernel<<<1, 1, 0, ctx_->stream>>>(counter, skip);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace plinth
