#include "cpu_fallback/batchnorm.h"

#include <algorithm>
#include <cmath>

#include "cpu_fallback/activation.h"
#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"
#include "engine/op_shapes.h"

namespace plinth::cpu {
namespace {

// A channel is n rows of `spatial` values, one row per sample.
template <typename T>
const T* row(const T* data, const BatchNormShape& s, int sample, size_t channel) {
  return data + (static_cast<size_t>(sample) * s.c + channel) * s.spatial;
}
template <typename T>
T* row(T* data, const BatchNormShape& s, int sample, size_t channel) {
  return data + (static_cast<size_t>(sample) * s.c + channel) * s.spatial;
}

}  // namespace

// One channel per task: its statistics, then its normalised rows while they are in cache.
template <typename T>
void batchnorm_forward(int threads, const BatchNormShape& s, bool training, const T* x,
                       const T* weight, const T* bias, T* running_mean, T* running_var,
                       T* saved_mean, T* saved_invstd, T* y, Activation act) {
  const size_t m = s.per_channel();
  with_activation(act, [&](auto kind) {
    parallel_for(threads, s.c, m, [&](size_t k) {
      T mean, invstd;
      if (training) {
        LaneSum sum, squares;
        for (int i = 0; i < s.n; ++i) {
          const T* xr = row(x, s, i, k);
          sum.add(s.spatial, [&](size_t q) { return xr[q]; });
          squares.add(s.spatial, [&](size_t q) { return static_cast<double>(xr[q]) * xr[q]; });
        }
        const double batch_mean = sum.total() / static_cast<double>(m);
        const double var =
            std::max(0.0, squares.total() / static_cast<double>(m) - batch_mean * batch_mean);
        mean = static_cast<T>(batch_mean);
        invstd = static_cast<T>(1.0 / std::sqrt(var + s.eps));
        running_mean[k] = running_average(running_mean[k], batch_mean, s.momentum);
        running_var[k] = running_average(running_var[k], unbiased_variance(var, m), s.momentum);
      } else {
        mean = running_mean[k];
        invstd = static_cast<T>(1.0 / std::sqrt(static_cast<double>(running_var[k]) + s.eps));
      }
      saved_mean[k] = mean;
      saved_invstd[k] = invstd;
      const T scale = weight[k] * invstd, shift = bias[k] - mean * scale;
      for (int i = 0; i < s.n; ++i) {
        const T* xr = row(x, s, i, k);
        T* yr = row(y, s, i, k);
        for (int q = 0; q < s.spatial; ++q) yr[q] = activate(kind(), xr[q] * scale + shift);
      }
    });
  });
}

// One channel per task: the sums of dz and dz * xhat, then dx from them. Rows go in chunks
// whose dz and dz * xhat are stack arrays, so every loop is a plain loop that vectorises
// (ReLU's derivative inside a reduction's term would branch on every value).
template <typename T>
void batchnorm_backward(int threads, const BatchNormShape& s, bool training, Activation act,
                        const T* x, const T* y, const T* dy, const T* weight, const T* saved_mean,
                        const T* saved_invstd, T* dx, T* dweight, T* dbias) {
  constexpr int kChunk = 256;
  const size_t m = s.per_channel();
  with_activation(act, [&](auto kind) {
    parallel_for(threads, s.c, m, [&](size_t k) {
      const T mean = saved_mean[k], invstd = saved_invstd[k];
      LaneSum sum_dz, sum_dz_xhat;
      T dz[kChunk], dz_xhat[kChunk];
      for (int i = 0; i < s.n; ++i) {
        const T *xr = row(x, s, i, k), *yr = row(y, s, i, k), *g = row(dy, s, i, k);
        for (int first = 0; first < s.spatial; first += kChunk) {
          const int count = std::min(kChunk, s.spatial - first);
          for (int q = 0; q < count; ++q) {
            dz[q] = activation_grad(kind(), yr[first + q], g[first + q]);
            dz_xhat[q] = dz[q] * ((xr[first + q] - mean) * invstd);
          }
          sum_dz.add(count, [&](size_t q) { return dz[q]; });
          sum_dz_xhat.add(count, [&](size_t q) { return dz_xhat[q]; });
        }
      }
      dbias[k] = static_cast<T>(sum_dz.total());
      dweight[k] = static_cast<T>(sum_dz_xhat.total());
      if (!dx) return;
      const auto [a, b, c] = batchnorm_input_grad(
          training, weight[k], invstd, static_cast<T>(sum_dz.total() / static_cast<double>(m)),
          static_cast<T>(sum_dz_xhat.total() / static_cast<double>(m)));
      for (int i = 0; i < s.n; ++i) {
        const T *xr = row(x, s, i, k), *yr = row(y, s, i, k), *g = row(dy, s, i, k);
        T* d = row(dx, s, i, k);
        for (int q = 0; q < s.spatial; ++q)
          d[q] = a * activation_grad(kind(), yr[q], g[q]) + b * (xr[q] - mean) + c;
      }
    });
  });
}

#define PLINTH_INSTANTIATE_BATCHNORM(T)                                                         \
  template void batchnorm_forward<T>(int, const BatchNormShape&, bool, const T*, const T*,      \
                                     const T*, T*, T*, T*, T*, T*, Activation);                 \
  template void batchnorm_backward<T>(int, const BatchNormShape&, bool, Activation, const T*,   \
                                      const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                      T*);
PLINTH_INSTANTIATE_BATCHNORM(float)
PLINTH_INSTANTIATE_BATCHNORM(double)
#undef PLINTH_INSTANTIATE_BATCHNORM

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::batchnorm_forward(const BatchNormShape& shape, bool training, const float* x,
                                   const float* weight, const float* bias, float* running_mean,
                                   float* running_var, float* saved_mean, float* saved_invstd,
                                   float* y, Activation act) {
  check_batchnorm_shape(shape, "batchnorm_forward");
  cpu::batchnorm_forward(threads_, shape, training, x, weight, bias, running_mean, running_var,
                         saved_mean, saved_invstd, y, act);
}

void CpuBackend::batchnorm_backward(const BatchNormShape& shape, bool training, Activation act,
                                    const float* x, const float* y, const float* dy,
                                    const float* weight, const float* saved_mean,
                                    const float* saved_invstd, float* dx, float* dweight,
                                    float* dbias) {
  check_batchnorm_shape(shape, "batchnorm_backward");
  cpu::batchnorm_backward(threads_, shape, training, act, x, y, dy, weight, saved_mean,
                          saved_invstd, dx, dweight, dbias);
}

}  // namespace plinth
