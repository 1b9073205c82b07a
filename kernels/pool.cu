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
__global__ void maxpool_forward_kernel(const float* x, float* y, int32_t* argmax, size_t total,
                                       PoolShape s, int out_h, int out_w) {
  const size_t out_plane = static_cast<size_t>(out_h) * out_w;
  PLINTH_GRID_STRIDE_LOOP(i, total) {
    const size_t plane = i / out_plane;
    const int o = static_cast<int>(i % out_plane);
    const int y0 = (o / out_w) * s.stride, x0 = (o % out_w) * s.stride;
    const float* in = x + plane * s.h * s.w;
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

__global__ void maxpool_backward_kernel(const float* dy, const int32_t* argmax, float* dx,
                                        size_t total, PoolShape s, int out_h, int out_w) {
  const size_t in_plane = static_cast<size_t>(s.h) * s.w;
  const size_t out_plane = static_cast<size_t>(out_h) * out_w;
  PLINTH_GRID_STRIDE_LOOP(i, total) {
    const size_t plane = i / in_plane;
    const int pos = static_cast<int>(i % in_plane);
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
        if (argmax[o] == pos) sum += dy[o];
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
  maxpool_forward_kernel<<<grid_for(total), kThreads, 0, ctx_->stream>>>(
      x, y, argmax, total, shape, shape.out_h(), shape.out_w());
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::maxpool_backward(const PoolShape& shape, const float* dy, const int32_t* argmax,
                                   float* dx) {
  check_pool_shape(shape, "maxpool_backward");
  const size_t total = static_cast<size_t>(shape.n) * shape.c * shape.h * shape.w;
  if (total == 0) return;
  maxpool_backward_kernel<<<grid_for(total), kThreads, 0, ctx_->stream>>>(
      dy, argmax, dx, total, shape, shape.out_h(), shape.out_w());
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace plinth
