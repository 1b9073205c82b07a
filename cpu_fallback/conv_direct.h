// Direct convolution for layers with one input channel and stride 1 (the first layer on
// grey images). As im2col + GEMM such a layer is a product whose inner dimension is only
// r * s (9 for 3x3), too thin for the BLAS to reach its rate, and its column matrix is r * s
// times the input. Here each sample's zero-padded plane stays in L1 and each output plane is
// the sum of r * s shifted copies of it, weighted by the taps.
//
// The planes are laid out "wide": output row y is stored with the padded input's row width,
// so tap (i, j) is the same flat offset i * width + j for every output pixel and the pixel
// loop is one contiguous, vectorisable loop; the columns past out_w are computed and dropped.
#pragma once

#include <cstddef>

#include "engine/backend.h"

namespace plinth::cpu {

// One input channel, stride 1, any padding and a kernel of at most 49 taps (7x7).
bool direct_fits(const ConvShape& s);

// Per-thread scratch elements (the padded input plane and one wide plane).
size_t direct_scratch_elems(const ConvShape& s);

// y = act(conv(x, w) + bias) for `count` consecutive samples; bias may be null.
template <typename T>
void direct_conv_chunk(const ConvShape& s, const T* x, const T* w, const T* bias, Activation act,
                       int count, T* y, T* scratch);

// dw = beta * dw + the chunk's filter gradient (beta 0 overwrites dw).
template <typename T>
void direct_filter_gradient_chunk(const ConvShape& s, const T* x, const T* dy, int count, T beta,
                                  T* dw, T* scratch);

}  // namespace plinth::cpu
