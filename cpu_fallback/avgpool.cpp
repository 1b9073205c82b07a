#include "cpu_fallback/avgpool.h"

#include <algorithm>

#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"
#include "engine/op_shapes.h"

namespace plinth::cpu {

template <typename T>
void avgpool_forward(int threads, const PoolShape& s, const T* x, T* y) {
  const size_t in_plane = static_cast<size_t>(s.h) * s.w;
  const int oh = s.out_h(), ow = s.out_w();
  const T area = static_cast<T>(s.size * s.size);
  parallel_for(threads, static_cast<size_t>(s.n) * s.c, in_plane, [&](size_t p) {
    const T* xp = x + p * in_plane;
    T* yp = y + p * oh * ow;
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        const T* window = xp + static_cast<size_t>(oy) * s.stride * s.w + ox * s.stride;
        T sum = 0;
        for (int dy = 0; dy < s.size; ++dy)
          for (int dx = 0; dx < s.size; ++dx) sum += window[dy * s.w + dx];
        yp[oy * ow + ox] = sum / area;
      }
  });
}

template <typename T>
void avgpool_backward(int threads, const PoolShape& s, const T* dy, T* dx) {
  const size_t in_plane = static_cast<size_t>(s.h) * s.w;
  const int oh = s.out_h(), ow = s.out_w();
  const T area = static_cast<T>(s.size * s.size);
  parallel_for(threads, static_cast<size_t>(s.n) * s.c, in_plane, [&](size_t p) {
    T* dxp = dx + p * in_plane;
    const T* dyp = dy + p * oh * ow;
    std::fill(dxp, dxp + in_plane, T(0));
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        T* window = dxp + static_cast<size_t>(oy) * s.stride * s.w + ox * s.stride;
        const T share = dyp[oy * ow + ox] / area;
        for (int dy = 0; dy < s.size; ++dy)
          for (int dx = 0; dx < s.size; ++dx) window[dy * s.w + dx] += share;
      }
  });
}

template <typename T>
void global_avgpool_forward(int threads, const T* x, T* y, size_t planes, int spatial) {
  parallel_for(threads, planes, spatial, [&](size_t p) {
    const T* xp = x + p * spatial;
    LaneSum sum;
    sum.add(spatial, [&](size_t i) { return xp[i]; });
    y[p] = static_cast<T>(sum.total() / spatial);
  });
}

template <typename T>
void global_avgpool_backward(int threads, const T* dy, T* dx, size_t planes, int spatial) {
  parallel_for(threads, planes, spatial, [&](size_t p) {
    const T share = dy[p] / static_cast<T>(spatial);
    std::fill(dx + p * spatial, dx + (p + 1) * spatial, share);
  });
}

#define PLINTH_INSTANTIATE_AVGPOOL(T)                                      \
  template void avgpool_forward<T>(int, const PoolShape&, const T*, T*);   \
  template void avgpool_backward<T>(int, const PoolShape&, const T*, T*);  \
  template void global_avgpool_forward<T>(int, const T*, T*, size_t, int); \
  template void global_avgpool_backward<T>(int, const T*, T*, size_t, int);
PLINTH_INSTANTIATE_AVGPOOL(float)
PLINTH_INSTANTIATE_AVGPOOL(double)
#undef PLINTH_INSTANTIATE_AVGPOOL

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::avgpool_forward(const PoolShape& shape, const float* x, float* y) {
  check_pool_shape(shape, "avgpool_forward");
  cpu::avgpool_forward(threads_, shape, x, y);
}

void CpuBackend::avgpool_backward(const PoolShape& shape, const float* dy, float* dx) {
  check_pool_shape(shape, "avgpool_backward");
  cpu::avgpool_backward(threads_, shape, dy, dx);
}

void CpuBackend::global_avgpool_forward(const float* x, float* y, size_t planes, int spatial) {
  cpu::global_avgpool_forward(threads_, x, y, planes, spatial);
}

void CpuBackend::global_avgpool_backward(const float* dy, float* dx, size_t planes, int spatial) {
  cpu::global_avgpool_backward(threads_, dy, dx, planes, spatial);
}

}  // namespace plinth
