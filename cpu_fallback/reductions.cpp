#include "cpu_fallback/reductions.h"

#include <algorithm>
#include <cmath>

#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"
#include "engine/backend.h"

namespace plinth::cpu {
namespace {

constexpr size_t kMinBlock = 4096;

}  // namespace

template <typename T>
void sum_squares(int threads, const T* x, size_t n, T* out) {
  const double sum = block_reduce<double>(threads, n, kMinBlock, [&](size_t lo, size_t hi) {
    LaneSum s;
    s.add(hi - lo, [&](size_t i) { return static_cast<double>(x[lo + i]) * x[lo + i]; });
    return s.total();
  });
  *out += static_cast<T>(sum);
}

template <typename T>
void clip_scale(const T* sum_sq, float max_norm, T* scale) {
  // A zero norm gives max_norm / 0 = inf, hence scale 1.
  *scale = std::min(T(1), static_cast<T>(max_norm) / std::sqrt(*sum_sq));
}

template <typename T>
void count_nonfinite(int threads, const T* x, size_t n, T* stats) {
  const size_t count = block_reduce<size_t>(threads, n, kMinBlock, [&](size_t lo, size_t hi) {
    size_t c = 0;
    for (size_t i = lo; i < hi; ++i) c += !std::isfinite(x[i]);
    return c;
  });
  stats[kStatNonFinite] += static_cast<T>(count);
}

template <typename T>
void accumulate(int threads, const T* x, T* y, size_t n) {
  parallel_for(threads, n, [&](size_t i) { y[i] += x[i]; });
}

template void sum_squares<float>(int, const float*, size_t, float*);
template void sum_squares<double>(int, const double*, size_t, double*);
template void clip_scale<float>(const float*, float, float*);
template void clip_scale<double>(const double*, float, double*);
template void count_nonfinite<float>(int, const float*, size_t, float*);
template void count_nonfinite<double>(int, const double*, size_t, double*);
template void accumulate<float>(int, const float*, float*, size_t);
template void accumulate<double>(int, const double*, double*, size_t);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::sum_squares(const float* x, size_t n, float* out) {
  cpu::sum_squares(threads_, x, n, out);
}

void CpuBackend::clip_scale(const float* sum_sq, float max_norm, float* scale) {
  cpu::clip_scale(sum_sq, max_norm, scale);
}

void CpuBackend::count_nonfinite(const float* x, size_t n, float* stats) {
  cpu::count_nonfinite(threads_, x, n, stats);
}

void CpuBackend::accumulate(const float* x, float* y, size_t n) {
  cpu::accumulate(threads_, x, y, n);
}

void CpuBackend::increment(int64_t* counter, const float* skip) {
  if (!skip || *skip == 0.0f) ++*counter;
}

}  // namespace plinth
