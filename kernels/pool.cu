// Max pooling over square 'valid' windows. The backward pass gathers: each input element
// sums the gradients of the outputs whose window covers it and chose it, in output order.
// That works whether windows overlap (stride < size) or not, needs no atomics, and adds
// in the same order as the CPU's scatter.
#include "engine/op_shapes.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

// PoolShape's out_h()/out_w() are host functions: the launcher passes their values.
template <typename Index>
__global__ void maxpool_forward_kernel(const float* x, float* y, int32_t* argmax, size_t total,
                                       PoolShape s, int out_h, int out_w) {
  const Index out_plane = static_cast<Index>(out_h) * out_w;
  PLINTH_INDEX_LOOP(Index, i, total) {
    const Index plane = i / out_plane;
    const int o = static_cast<int>(i - plane * out_plane);
    const int y0 = (o / out_w) * s.stride, x0 = (o % out_w) * s.stride;
    const float* in = x + static_cast<size_t>(plane) * s.h * s.w;
    int best_index = y0 * s.w + x0;
    float best = in[best_index];
    for (int dy = 0; dy < s.size; ++dy) {
      for (int dx = 0; dx < s.size; ++dx) {
        const int index = (y0 + dy) * s.w + (x0 + dx);
        if (in[index] > best) {
          best = in[index];
          best_index = index;
        }
      }
    }
    y[i] = best;
    if (argmax) argmax[i] = best_index;
  }
}

// With y (the pool's output) not null, each output's gradient counts only where y > 0:
// the backward of a ReLU before the pool, taken at the window's maximum.
template <typename Index>
__global__ void maxpool_backward_kernel(const float* dy, const int32_t* argmax, const float* y,
                                        float* dx, size_t total, PoolShape s, int out_h,
                                        int out_w) {
  const Index in_plane = static_cast<Index>(s.h) * s.w;
  const size_t out_plane = static_cast<size_t>(out_h) * out_w;
  PLINTH_INDEX_LOOP(Index, i, total) {
    const Index plane = i / in_plane;
    const int pos = static_cast<int>(i - plane * in_plane);
    const int iy = pos / s.w, ix = pos % s.w;
    // Windows covering row iy: oy * stride <= iy <= oy * stride + size - 1.
    const int oy_first = iy >= s.size ? (iy - s.size) / s.stride + 1 : 0;
    const int oy_last = min(iy / s.stride, out_h - 1);
    const int ox_first = ix >= s.size ? (ix - s.size) / s.stride + 1 : 0;
    const int ox_last = min(ix / s.stride, out_w - 1);
    const size_t base = plane * out_plane;
    float sum = 0.0f;
    for (int oy = oy_first; oy <= oy_last; ++oy) {
      for (int ox = ox_first; ox <= ox_last; ++ox) {
        const size_t o = base + static_cast<size_t>(oy) * out_w + ox;
        if (argmax[o] == pos && (!y || y[o] > 0.0f)) sum += dy[o];
      }
    }
    dx[i] = sum;
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::maxpool_forward(const PoolShape& shape, const float* x, float* y,
                                  int32_t* argmax) {
  check_pool_shape(shape, "maxpool_forward");
  const size_t total = static_cast<size_t>(shape.n) * shape.c * shape.out_h() * shape.out_w();
  if (total == 0) return;
  PLINTH_LAUNCH_INDEXED(maxpool_forward_kernel, total, ctx_->stream, x, y, argmax, total, shape,
                        shape.out_h(), shape.out_w());
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::maxpool_backward(const PoolShape& shape, const float* dy, const int32_t* argmax,
                                   float* dx) {
  check_pool_shape(shape, "maxpool_backward");
  const size_t total = static_cast<size_t>(shape.n) * shape.c * shape.h * shape.w;
  if (total == 0) return;
  PLINTH_LAUNCH_INDEXED(maxpool_backward_kernel, total, ctx_->stream, dy, argmax, nullptr, dx,
                        total, shape, shape.out_h(), shape.out_w());
  PLINTH_CUDA_CHECK_LAUNCH();
}

// dx from the pool's outputs, then the bias gradient summed over the pool's outputs
// rather than its inputs: each input position's gradient is one output's (or, where
// windows overlap, several outputs'), so the sums agree and the pass reads a quarter as
// much for 2x2 windows.
void CudaBackend::maxpool_relu_backward(const PoolShape& shape, const float* dy,
                                        const int32_t* argmax, const float* y, float* dx,
                                        float* db) {
  check_pool_shape(shape, "maxpool_relu_backward");
  const size_t total = static_cast<size_t>(shape.n) * shape.c * shape.h * shape.w;
  if (total > 0) {
    PLINTH_LAUNCH_INDEXED(maxpool_backward_kernel, total, ctx_->stream, dy, argmax, y, dx, total,
                          shape, shape.out_h(), shape.out_w());
    PLINTH_CUDA_CHECK_LAUNCH();
  }
  if (db)
    launch_relu_masked_channel_sum(ctx_->stream, ctx_->partials, dy, y, db, shape.n, shape.c,
                                   shape.out_h() * shape.out_w());
}

}  // namespace plinth
