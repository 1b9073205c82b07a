// Average pooling over square 'valid' windows and over whole planes. The backward passes
// gather: each input element sums the shares of the outputs whose window covers it, in
// output order, so no atomics are needed and the result does not depend on timing.
#include "engine/op_shapes.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

// PoolShape's out_h()/out_w() are host functions: the launcher passes their values.
template <typename Index>
__global__ void avgpool_forward_kernel(const float* x, float* y, size_t total, PoolShape s,
                                       int out_h, int out_w) {
  const Index out_plane = static_cast<Index>(out_h) * out_w;
  const float area = static_cast<float>(s.size * s.size);
  PLINTH_INDEX_LOOP(Index, i, total) {
    const Index plane = i / out_plane;
    const int o = static_cast<int>(i - plane * out_plane);
    const float* window = x + static_cast<size_t>(plane) * s.h * s.w +
                          static_cast<size_t>(o / out_w) * s.stride * s.w +
                          static_cast<size_t>(o % out_w) * s.stride;
    float sum = 0.0f;
    for (int dy = 0; dy < s.size; ++dy)
      for (int dx = 0; dx < s.size; ++dx) sum += window[dy * s.w + dx];
    y[i] = sum / area;
  }
}

template <typename Index>
__global__ void avgpool_backward_kernel(const float* dy, float* dx, size_t total, PoolShape s,
                                        int out_h, int out_w) {
  const Index in_plane = static_cast<Index>(s.h) * s.w;
  const size_t out_plane = static_cast<size_t>(out_h) * out_w;
  const float area = static_cast<float>(s.size * s.size);
  PLINTH_INDEX_LOOP(Index, i, total) {
    const Index plane = i / in_plane;
    const int pos = static_cast<int>(i - plane * in_plane);
    const int iy = pos / s.w, ix = pos % s.w;
    // Windows covering row iy: oy * stride <= iy <= oy * stride + size - 1.
    const int oy_first = iy >= s.size ? (iy - s.size) / s.stride + 1 : 0;
    const int oy_last = min(iy / s.stride, out_h - 1);
    const int ox_first = ix >= s.size ? (ix - s.size) / s.stride + 1 : 0;
    const int ox_last = min(ix / s.stride, out_w - 1);
    const float* dyp = dy + static_cast<size_t>(plane) * out_plane;
    float sum = 0.0f;
    for (int oy = oy_first; oy <= oy_last; ++oy)
      for (int ox = ox_first; ox <= ox_last; ++ox) sum += dyp[oy * out_w + ox] / area;
    dx[i] = sum;
  }
}

// One thread per plane, summing in double in index order as the CPU does.
__global__ void global_avgpool_forward_kernel(const float* x, float* y, size_t planes,
                                              int spatial) {
  PLINTH_GRID_STRIDE_LOOP(p, planes) {
    const float* xp = x + p * spatial;
    double sum = 0.0;
    for (int i = 0; i < spatial; ++i) sum += xp[i];
    y[p] = static_cast<float>(sum / spatial);
  }
}

template <typename Index>
__global__ void global_avgpool_backward_kernel(const float* dy, float* dx, size_t total,
                                               int spatial) {
  PLINTH_INDEX_LOOP(Index, i, total) {
    dx[i] = dy[i / static_cast<Index>(spatial)] / static_cast<float>(spatial);
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::avgpool_forward(const PoolShape& shape, const float* x, float* y) {
  check_pool_shape(shape, "avgpool_forward");
  const size_t total = shape.output_elements();
  if (total == 0) return;
  PLINTH_LAUNCH_INDEXED(avgpool_forward_kernel, total, ctx_->stream, x, y, total, shape,
                        shape.out_h(), shape.out_w());
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::avgpool_backward(const PoolShape& shape, const float* dy, float* dx) {
  check_pool_shape(shape, "avgpool_backward");
  const size_t total = shape.input_elements();
  if (total == 0) return;
  PLINTH_LAUNCH_INDEXED(avgpool_backward_kernel, total, ctx_->stream, dy, dx, total, shape,
                        shape.out_h(), shape.out_w());
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::global_avgpool_forward(const float* x, float* y, size_t planes, int spatial) {
  if (planes == 0 || spatial <= 0) return;
  global_avgpool_forward_kernel<<<grid_for(planes), kThreads, 0, ctx_->stream>>>(x, y, planes,
                                                                                 spatial);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::global_avgpool_backward(const float* dy, float* dx, size_t planes, int spatial) {
  const size_t total = planes * static_cast<size_t>(spatial < 0 ? 0 : spatial);
  if (total == 0) return;
  PLINTH_LAUNCH_INDEXED(global_avgpool_backward_kernel, total, ctx_->stream, dy, dx, total,
                        spatial);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace plinth
