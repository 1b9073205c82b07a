// Small reductions and bookkeeping ops. Sums are reduced in fixed blocks, so results do
// not depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>

namespace plinth::cpu {

// *out += sum of x[i]^2.
template <typename T>
void sum_squares(int threads, const T* x, size_t n, T* out);

// *scale = min(1, max_norm / sqrt(*sum_sq)).
template <typename T>
void clip_scale(const T* sum_sq, float max_norm, T* scale);

// stats[kStatNonFinite] += number of NaN/Inf values in x.
template <typename T>
void count_nonfinite(int threads, const T* x, size_t n, T* stats);

// y += x
template <typename T>
void accumulate(int threads, const T* x, T* y, size_t n);

}  // namespace plinth::cpu
