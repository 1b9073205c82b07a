#include "cpu_fallback/dropout.h"

#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"
#include "engine/elementwise.h"

namespace plinth::cpu {

template <typename T>
void dropout_forward(int threads, const T* x, T* y, T* mask, size_t n, float rate, uint64_t seed,
                     const int64_t* step) {
  const int64_t now = *step;
  parallel_for(threads, n, [&](size_t i) {
    mask[i] = static_cast<T>(dropout_mask(seed, now, i, rate));
    y[i] = x[i] * mask[i];
  });
}

template <typename T>
void dropout_backward(int threads, const T* dy, const T* mask, T* dx, size_t n) {
  parallel_for(threads, n, [&](size_t i) { dx[i] = dy[i] * mask[i]; });
}

template void dropout_forward<float>(int, const float*, float*, float*, size_t, float, uint64_t,
                                     const int64_t*);
template void dropout_forward<double>(int, const double*, double*, double*, size_t, float, uint64_t,
                                      const int64_t*);
template void dropout_backward<float>(int, const float*, const float*, float*, size_t);
template void dropout_backward<double>(int, const double*, const double*, double*, size_t);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::dropout_forward(const float* x, float* y, float* mask, size_t n, float rate,
                                 uint64_t seed, const int64_t* step) {
  cpu::dropout_forward(threads_, x, y, mask, n, rate, seed, step);
}

void CpuBackend::dropout_backward(const float* dy, const float* mask, float* dx, size_t n) {
  cpu::dropout_backward(threads_, dy, mask, dx, n);
}

}  // namespace plinth
