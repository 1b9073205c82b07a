// Unfolding image patches into GEMM operands for a chunk of consecutive samples.
//
// The column matrix of a chunk of `count` samples is [C*R*S, count*P] (P = OH*OW): row
// (c, r, s) holds, for each sample and output pixel, the input value under kernel tap
// (r, s) of channel c, or zero where the tap falls in the padding. Sample j occupies
// columns [j*P, (j+1)*P), so one GEMM covers the whole chunk.
#pragma once

#include <cstring>

#include "engine/backend.h"

namespace plinth::cpu {

// Copies the short rows of small images (a 3x3 convolution of a 13x13 input copies rows of
// 11; conv3's per-sample planes are 9 long) with at most two overlapping fixed-size block
// moves instead of a library call or a loop with a scalar tail.
template <typename T>
inline void copy_row(const T* src, int n, T* dst) {
  constexpr int k32 = 32 / sizeof(T), k64 = 64 / sizeof(T);
  if (n < k32) {
    for (int i = 0; i < n; ++i) dst[i] = src[i];  // inline: a memcpy call costs more
  } else if (n <= 2 * k32) {
    std::memcpy(dst, src, 32);
    std::memcpy(dst + n - k32, src + n - k32, 32);
  } else if (n > 2 * k32 && n <= 2 * k64) {
    std::memcpy(dst, src, 64);
    std::memcpy(dst + n - k64, src + n - k64, 64);
  } else {
    std::memcpy(dst, src, n * sizeof(T));
  }
}

// x points to the chunk's first sample [C, H, W].
template <typename T>
void im2col(const ConvShape& s, const T* x, int count, T* col);

// The adjoint of im2col: adds every column entry back onto the input pixel it came from.
// dx (the chunk's first sample) is overwritten.
template <typename T>
void col2im(const ConvShape& s, const T* col, int count, T* dx);

// The same for a stride-1 convolution without padding, but of only its first oh rows and ow
// columns of outputs (those a max pool after it reads): oh * ow columns per sample. col2im
// overwrites every dx of the chunk (0 where no used output reads it).
template <typename T>
void im2col_top_left(const ConvShape& s, const T* x, int count, T* col, int oh, int ow);
template <typename T>
void col2im_top_left(const ConvShape& s, const T* col, int count, T* dx, int oh, int ow);

}  // namespace plinth::cpu
