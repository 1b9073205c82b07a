// Winograd F(2x2, 3x3) for stride-1 3x3 convolutions (Lavin and Gray, 2015): each 2x2 block
// of output comes from one 4x4 input tile with 16 multiplications per channel pair instead
// of 36. Tiles are transformed (V = B^T d B), the 16 element-wise products of a chunk of
// tiles are summed over channels as 16 GEMMs, and the products are transformed back
// (Y = A^T M A). The input gradient is the same correlation of dy with the filter rotated
// by 180 degrees and its channels swapped, padded by 2 - pad; the filter gradient sums
// (A dy A^T) * (B^T d B) over tiles as 16 GEMMs and transforms with G^T . G.
#pragma once

#include <cstddef>

#include "engine/backend.h"

namespace plinth::cpu {

inline constexpr int kWinogradElems = 16;  // a transformed 4x4 tile

// The distance between the 16 matrices of transformed tiles (or filters), in elements:
// whole cache lines plus one, so that 16 streams a power of two apart do not fall into the
// same cache sets and evict each other.
inline size_t winograd_stride(size_t matrix_elems) { return (matrix_elems + 15) / 16 * 16 + 16; }

// 3x3 kernel, stride 1 and padding at most 2 (the input gradient's padding is 2 - pad).
bool winograd_fits(const ConvShape& s);

// One 3x3 correlation of a zero-padded [channels, in_h, in_w] plane into [out_h, out_w],
// cut into 2x2 output tiles.
struct WinogradGrid {
  int in_h = 0, in_w = 0, pad = 0, out_h = 0, out_w = 0;
  int tiles_h() const { return (out_h + 1) / 2; }
  int tiles_w() const { return (out_w + 1) / 2; }
  int tiles() const { return tiles_h() * tiles_w(); }
};

WinogradGrid forward_grid(const ConvShape& s);        // x -> y (and x, dy -> dw)
WinogradGrid backward_data_grid(const ConvShape& s);  // dy -> dx

// Per-thread scratch elements for a chunk of `samples` samples, any direction.
size_t winograd_scratch_elems(const ConvShape& s, int samples);

// u = the transformed filter: for the forward pass u[e][k][c] from w[k][c]; for the input
// gradient (rotated) u[e][c][k] from w[k][c] rotated by 180 degrees.
template <typename T>
void winograd_filter(const ConvShape& s, const T* w, bool rotated, T* u);

// y = act(conv + bias) for `count` consecutive samples of cin-channel planes x, written to
// cout-channel planes y, with u from winograd_filter; bias may be null.
template <typename T>
void winograd_conv_chunk(const WinogradGrid& g, int cin, int cout, const T* u, const T* x,
                         int count, const T* bias, Activation act, T* y, T* scratch);

// acc[e][k][c] = beta * acc + the chunk's transformed filter gradient.
template <typename T>
void winograd_filter_gradient_chunk(const ConvShape& s, const T* x, const T* dy, int count, T beta,
                                    T* acc, T* scratch);

// dw[k][c] = G^T acc[.][k][c] G (overwrites dw).
template <typename T>
void winograd_filter_gradient_finish(const ConvShape& s, const T* acc, T* dw);

}  // namespace plinth::cpu
