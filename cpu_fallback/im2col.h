// Unfolding image patches into GEMM operands for a chunk of consecutive samples.
//
// The column matrix of a chunk of `count` samples is [C*R*S, count*P] (P = OH*OW): row
// (c, r, s) holds, for each sample and output pixel, the input value under kernel tap
// (r, s) of channel c, or zero where the tap falls in the padding. Sample j occupies
// columns [j*P, (j+1)*P), so one GEMM covers the whole chunk.
#pragma once

#include "engine/backend.h"

namespace plinth::cpu {

// x points to the chunk's first sample [C, H, W].
template <typename T>
void im2col(const ConvShape& s, const T* x, int count, T* col);

// The adjoint of im2col: adds every column entry back onto the input pixel it came from.
// dx (the chunk's first sample) is overwritten.
template <typename T>
void col2im(const ConvShape& s, const T* col, int count, T* dx);

}  // namespace plinth::cpu
