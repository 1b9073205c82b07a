// A first layer's convolution and max pool computed together in registers: one input
// channel, a 3x3 kernel with stride 1 and no padding, then a 2x2 max pool with stride 2 (the
// seed CNN's conv1 and pool1; any grey-image network's first layer shaped so).
//
// im2col + GEMM spends most of such a layer outside the multiplications: with an inner
// dimension of 9, the column matrix, the convolution's output planes and the bias, ReLU and
// pool passes over them cost more than the GEMM itself (conv1+pool1 ran at 20-42% of the
// GEMM rate). Here each pooled output row is one vector of pooled columns: the four input
// rows under it are loaded once, split into their even and odd columns, and every output
// channel's four window positions are summed from them in registers, biased, activated and
// pooled before anything is stored.
//
// The same arithmetic as im2col + GEMM then bias, activation and maxpool_plane, each output a
// chain of fused multiply-adds over the 9 taps in order from zero: OpenBLAS's AVX-512 kernels
// sum the inner dimension so (the same bits), its AVX2 kernels pair the taps differently (fp32
// rounding apart). Tested bit for bit against plain loops of this chain.
#pragma once

#include <cstdint>

#include "engine/backend.h"

namespace plinth::cpu {

// Whether conv_pool_direct computes this layer (float, AVX-512, the shapes above, output rows
// of at most 32 inputs, no activation or a ReLU).
bool conv_pool_direct_fits(const ConvShape& s, const PoolShape& pool, Activation act);

// Samples [first, first + count) of the batch: pool_y and argmax as conv2d_maxpool_forward
// writes them. b may be null.
void conv_pool_direct(const ConvShape& s, const PoolShape& pool, const float* x, const float* w,
                      const float* b, Activation act, int first, int count, float* pool_y,
                      int32_t* argmax);

// The filter gradient of those samples through a ReLU and that pool, as
// conv2d_maxpool_relu_backward's: sum = beta * sum + the samples' gradient (beta 0 or 1), where
// each pooled output whose y > 0 passes its dy to the window position argmax names. Each
// output channel's nine taps gather into sixteen float lanes (the pooled columns) over the
// samples, added up in a fixed order at the end: the same bits for any thread count. lanes is
// scratch of conv_pool_direct_lanes(s) floats.
size_t conv_pool_direct_lanes(const ConvShape& s);
void conv_pool_direct_filter_gradient(const ConvShape& s, const PoolShape& pool, const float* x,
                                      const float* dy, const int32_t* argmax, const float* pool_y,
                                      int first, int count, float beta, float* sum, float* lanes);

}  // namespace plinth::cpu
