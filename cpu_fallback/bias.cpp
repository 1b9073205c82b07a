#include "cpu_fallback/bias.h"

#include "cpu_fallback/activation.h"
#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"

namespace plinth::cpu {

template <typename T>
void bias_activation_forward(int threads, T* y, const T* b, int n, int c, int spatial,
                             Activation act) {
  const size_t planes = static_cast<size_t>(n) * c;
  with_activation(act, [&](auto kind) {
    parallel_for(threads, planes, spatial, [&](size_t i) {
      const T bias = b ? b[i % c] : T(0);
      T* row = y + i * spatial;
      for (int q = 0; q < spatial; ++q) row[q] = activate(kind(), row[q] + bias);
    });
  });
}

template <typename T>
void bias_backward(int threads, const T* dy, T* db, int n, int c, int spatial) {
  const size_t per_channel = static_cast<size_t>(n) * spatial;
  parallel_for(threads, c, per_channel, [&](size_t k) {
    LaneSum sum;
    for (int i = 0; i < n; ++i) {
      const T* row = dy + (static_cast<size_t>(i) * c + k) * spatial;
      sum.add(spatial, [&](size_t q) { return row[q]; });
    }
    db[k] = static_cast<T>(sum.total());
  });
}

template <typename T>
void bias_activation_backward(int threads, Activation act, const T* y, const T* dy, T* dx, T* db,
                              int n, int c, int spatial) {
  const size_t per_channel = static_cast<size_t>(n) * spatial;
  with_activation(act, [&](auto kind) {
    parallel_for(threads, c, per_channel, [&](size_t k) {
      LaneSum sum;
      for (int i = 0; i < n; ++i) {
        const size_t at = (static_cast<size_t>(i) * c + k) * spatial;
        const T* yr = y + at;
        const T* g = dy + at;
        T* d = dx + at;
        for (int q = 0; q < spatial; ++q) d[q] = activation_grad(kind(), yr[q], g[q]);
        sum.add(spatial, [&](size_t q) { return d[q]; });
      }
      db[k] = static_cast<T>(sum.total());
    });
  });
}

template void bias_activation_forward<float>(int, float*, const float*, int, int, int, Activation);
template void bias_activation_forward<double>(int, double*, const double*, int, int, int,
                                              Activation);
template void bias_backward<float>(int, const float*, float*, int, int, int);
template void bias_backward<double>(int, const double*, double*, int, int, int);
template void bias_activation_backward<float>(int, Activation, const float*, const float*, float*,
                                              float*, int, int, int);
template void bias_activation_backward<double>(int, Activation, const double*, const double*,
                                               double*, double*, int, int, int);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::bias_activation_forward(float* y, const float* b, int n, int c, int spatial,
                                         Activation act) {
  cpu::bias_activation_forward(threads_, y, b, n, c, spatial, act);
}

void CpuBackend::bias_backward(const float* dy, float* db, int n, int c, int spatial) {
  cpu::bias_backward(threads_, dy, db, n, c, spatial);
}

void CpuBackend::bias_activation_backward(Activation act, const float* y, const float* dy,
                                          float* dx, float* db, int n, int c, int spatial) {
  cpu::bias_activation_backward(threads_, act, y, dy, dx, db, n, c, spatial);
}

}  // namespace plinth
