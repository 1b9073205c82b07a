#include "cpu_fallback/merge.h"

#include <algorithm>

#include "cpu_fallback/activation.h"
#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"

namespace plinth::cpu {

template <typename T>
void add_forward(int threads, const T* a, const T* b, T* y, size_t n, Activation act) {
  with_activation(act, [&](auto kind) {
    parallel_ranges(threads, n, 1, [&](size_t lo, size_t hi) {
      for (size_t i = lo; i < hi; ++i) y[i] = activate(kind(), a[i] + b[i]);
    });
  });
}

template <typename T>
void copy_rows(int threads, T* dst, size_t dst_stride, const T* src, size_t src_stride,
               size_t width, size_t rows) {
  parallel_for(threads, rows, width, [&](size_t r) {
    const T* from = src + r * src_stride;
    std::copy(from, from + width, dst + r * dst_stride);
  });
}

template void add_forward<float>(int, const float*, const float*, float*, size_t, Activation);
template void add_forward<double>(int, const double*, const double*, double*, size_t, Activation);
template void copy_rows<float>(int, float*, size_t, const float*, size_t, size_t, size_t);
template void copy_rows<double>(int, double*, size_t, const double*, size_t, size_t, size_t);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::add_forward(const float* a, const float* b, float* y, size_t n, Activation act) {
  cpu::add_forward(threads_, a, b, y, n, act);
}

void CpuBackend::copy_rows(float* dst, size_t dst_stride, const float* src, size_t src_stride,
                           size_t width, size_t rows) {
  cpu::copy_rows(threads_, dst, dst_stride, src, src_stride, width, rows);
}

}  // namespace plinth
