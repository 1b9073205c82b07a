// Inverted dropout with a counter-based mask (engine/elementwise.h dropout_mask), so the
// CPU and CUDA backends draw the same mask for the same (seed, step, index).
#pragma once

#include <cstddef>
#include <cstdint>

namespace plinth::cpu {

// mask[i] = dropout_mask(seed, *step, i, rate); y = x * mask.
template <typename T>
void dropout_forward(int threads, const T* x, T* y, T* mask, size_t n, float rate, uint64_t seed,
                     const int64_t* step);

// dx = dy * mask; dx may alias dy.
template <typename T>
void dropout_backward(int threads, const T* dy, const T* mask, T* dx, size_t n);

}  // namespace plinth::cpu
