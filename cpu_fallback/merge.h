// Merging branches of a graph: the elementwise sum of two tensors with an activation fused
// (add layers sum more inputs pairwise), and the strided row copies of concatenation.
#pragma once

#include <cstddef>

#include "engine/backend.h"

namespace plinth::cpu {

// y = act(a + b); y may alias a or b.
template <typename T>
void add_forward(int threads, const T* a, const T* b, T* y, size_t n, Activation act);

// dst[r * dst_stride + i] = src[r * src_stride + i] for r < rows, i < width.
template <typename T>
void copy_rows(int threads, T* dst, size_t dst_stride, const T* src, size_t src_stride,
               size_t width, size_t rows);

}  // namespace plinth::cpu
