// Hand-written convolutions as implicit GEMMs. With p = (sample, output pixel) and
// q = (input channel, kernel row, kernel column):
//   forward          y[k, p]  = sum_q  w[k, q] * X[q, p]      X = im2col(x), 0 in the padding
//   backward data    dx[c, p'] = sum_(k,r,s) w[k, c, r, s] * dy at the output whose tap
//                    (r, s) lands on input pixel p' (0 where none does)
//   backward filter  dw[k, q] = sum_p  dy[k, p] * X[q, p]
// One tiled kernel computes all three; small functors say how to read A and B and where
// to write C, so the matrices are never stored. The filter gradient's reduction runs
// over the batch and is split across blocks (split-K) into the workspace, then summed in
// a fixed order: deterministic, no atomics.
#include <algorithm>
#include <climits>

#include "engine/elementwise.h"
#include "kernels/conv_native.h"
#include "kernels/launch.cuh"

namespace plinth::cuda {
namespace {

constexpr int kTile = 16;           // the GEMM kernel's block is kTile x kTile threads
constexpr int kDirectMaxTaps = 32;  // direct forward when c * r * s is at most this
constexpr long long kFilterTargetBlocks = 1024;
constexpr int kMaxFilterSplits = 64;

long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

// The shape with its output size, as plain ints that device code can read.
struct Dims {
  int n, c, h, w, k, r, s, stride, pad, out_h, out_w;
};

Dims dims_of(const ConvShape& s) {
  return {s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride, s.pad, s.out_h(), s.out_w()};
}

// X[q, p]: the input value that tap q = (c, r, s) of output pixel p = (n, oy, ox) reads.
__device__ __forceinline__ float im2col(const float* x, const Dims& d, int q, int p) {
  const int taps = d.r * d.s;
  const int c = q / taps, r = (q % taps) / d.s, s = q % d.s;
  const int plane = d.out_h * d.out_w;
  const int sample = p / plane, o = p % plane;
  const int iy = (o / d.out_w) * d.stride - d.pad + r;
  const int ix = (o % d.out_w) * d.stride - d.pad + s;
  if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) return 0.0f;
  return x[((static_cast<size_t>(sample) * d.c + c) * d.h + iy) * d.w + ix];
}

// ---- forward: A = w as [k, c*r*s], B = X, C -> y with bias and activation -------------
struct WeightRows {
  const float* w;
  int cols;
  __device__ float operator()(int k, int q) const { return w[static_cast<size_t>(k) * cols + q]; }
};

struct Im2col {
  const float* x;
  Dims d;
  __device__ float operator()(int q, int p) const { return im2col(x, d, q, p); }
};

struct ForwardStore {
  float* y;
  const float* b;
  Dims d;
  Activation act;
  __device__ void operator()(int /*split*/, int k, int p, float acc) const {
    const int plane = d.out_h * d.out_w;
    const int sample = p / plane, o = p % plane;
    y[(static_cast<size_t>(sample) * d.k + k) * plane + o] = activate(act, acc + (b ? b[k] : 0.0f));
  }
};

// ---- backward data: A[c, (k, r, s)] = w[k, c, r, s], B = dy gathered per input pixel --
struct WeightColumns {
  const float* w;
  Dims d;
  __device__ float operator()(int c, int q) const {
    const int taps = d.r * d.s;
    const int k = q / taps, rs = q % taps;
    return w[(static_cast<size_t>(k) * d.c + c) * taps + rs];
  }
};

struct GradientAtTap {
  const float* dy;
  Dims d;
  // Tap (r, s) of output (oy, ox) reads input (oy*stride - pad + r, ox*stride - pad + s);
  // invert that for input pixel p = (n, iy, ix).
  __device__ float operator()(int q, int p) const {
    const int taps = d.r * d.s;
    const int k = q / taps, r = (q % taps) / d.s, s = q % d.s;
    const int plane = d.h * d.w;
    const int sample = p / plane, pos = p % plane;
    const int ty = pos / d.w + d.pad - r, tx = pos % d.w + d.pad - s;
    if (ty < 0 || tx < 0 || ty % d.stride != 0 || tx % d.stride != 0) return 0.0f;
    const int oy = ty / d.stride, ox = tx / d.stride;
    if (oy >= d.out_h || ox >= d.out_w) return 0.0f;
    return dy[((static_cast<size_t>(sample) * d.k + k) * d.out_h + oy) * d.out_w + ox];
  }
};

struct DataStore {
  float* dx;
  Dims d;
  __device__ void operator()(int /*split*/, int c, int p, float acc) const {
    const int plane = d.h * d.w;
    const int sample = p / plane, pos = p % plane;
    dx[(static_cast<size_t>(sample) * d.c + c) * plane + pos] = acc;
  }
};

// ---- backward filter: A[k, p] = dy, B[p, q] = X[q, p], C -> dw or split partials ------
struct GradientRows {
  const float* dy;
  Dims d;
  __device__ float operator()(int k, int p) const {
    const int plane = d.out_h * d.out_w;
    const int sample = p / plane, o = p % plane;
    return dy[(static_cast<size_t>(sample) * d.k + k) * plane + o];
  }
};

struct Im2colTransposed {
  const float* x;
  Dims d;
  __device__ float operator()(int p, int q) const { return im2col(x, d, q, p); }
};

// out is dw itself (one split) or the workspace holding [splits, rows, cols].
struct SplitStore {
  float* out;
  int rows, cols;
  __device__ void operator()(int split, int row, int col, float acc) const {
    out[(static_cast<size_t>(split) * rows + row) * cols + col] = acc;
  }
};

// C[row, col] = sum over kk in this block's split of A(row, kk) * B(kk, col). Each thread
// computes one element of a kTile x kTile output tile; tiles of A and B pass through
// shared memory so each global value is read once per tile. Out-of-range rows, columns
// and kk read as 0, so any size works.
template <class LoadA, class LoadB, class Store>
__global__ void __launch_bounds__(kTile* kTile)
    tiled_gemm_kernel(int rows, int cols, int depth, int depth_per_split, LoadA load_a,
                      LoadB load_b, Store store) {
  __shared__ float a_tile[kTile][kTile + 1];
  __shared__ float b_tile[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * kTile + ty;
  const int col = blockIdx.x * kTile + tx;
  const long long split_begin = static_cast<long long>(blockIdx.z) * depth_per_split;
  const int begin = static_cast<int>(min(split_begin, static_cast<long long>(depth)));
  const int end =
      static_cast<int>(min(split_begin + depth_per_split, static_cast<long long>(depth)));
  float acc = 0.0f;
  // begin and end are the same for the whole block, so every thread reaches each barrier.
  for (int k0 = begin; k0 < end; k0 += kTile) {
    const int ka = k0 + tx, kb = k0 + ty;
    a_tile[ty][tx] = (row < rows && ka < end) ? load_a(row, ka) : 0.0f;
    b_tile[ty][tx] = (kb < end && col < cols) ? load_b(kb, col) : 0.0f;
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTile; ++kk) acc += a_tile[ty][kk] * b_tile[kk][tx];
    __syncthreads();
  }
  if (row < rows && col < cols) store(blockIdx.z, row, col, acc);
}

template <class LoadA, class LoadB, class Store>
void launch_tiled_gemm(cudaStream_t stream, int rows, int cols, int depth, int splits,
                       int depth_per_split, LoadA load_a, LoadB load_b, Store store) {
  const dim3 block(kTile, kTile);
  const dim3 grid(static_cast<unsigned>(ceil_div(cols, kTile)),
                  static_cast<unsigned>(ceil_div(rows, kTile)), static_cast<unsigned>(splits));
  tiled_gemm_kernel<<<grid, block, 0, stream>>>(rows, cols, depth, depth_per_split, load_a, load_b,
                                                store);
  PLINTH_CUDA_CHECK_LAUNCH();
}

// One thread per output value; for layers with few input channels (the first layer has
// one), where a GEMM tile would be mostly padding.
__global__ void direct_forward_kernel(const float* x, const float* w, const float* b, float* y,
                                      Dims d, Activation act, size_t total) {
  PLINTH_GRID_STRIDE_LOOP(i, total) {
    const int ox = static_cast<int>(i % d.out_w);
    const int oy = static_cast<int>((i / d.out_w) % d.out_h);
    const int k = static_cast<int>((i / (static_cast<size_t>(d.out_w) * d.out_h)) % d.k);
    const size_t sample = i / (static_cast<size_t>(d.out_w) * d.out_h * d.k);
    float acc = 0.0f;
    for (int c = 0; c < d.c; ++c) {
      const float* plane = x + (sample * d.c + c) * d.h * d.w;
      const float* taps = w + (static_cast<size_t>(k) * d.c + c) * d.r * d.s;
      for (int r = 0; r < d.r; ++r) {
        const int iy = oy * d.stride - d.pad + r;
        if (iy < 0 || iy >= d.h) continue;
        for (int s = 0; s < d.s; ++s) {
          const int ix = ox * d.stride - d.pad + s;
          if (ix < 0 || ix >= d.w) continue;
          acc += plane[iy * d.w + ix] * taps[r * d.s + s];
        }
      }
    }
    y[i] = activate(act, acc + (b ? b[k] : 0.0f));
  }
}

__global__ void sum_splits_kernel(const float* partials, int splits, size_t count, float* out) {
  PLINTH_GRID_STRIDE_LOOP(i, count) {
    float sum = 0.0f;
    for (int z = 0; z < splits; ++z) sum += partials[static_cast<size_t>(z) * count + i];
    out[i] = sum;
  }
}

// The kernels index GEMM rows, columns and depth with int (with room for a tile step).
int checked_int(long long value, const ConvShape& shape) {
  if (value > INT_MAX / 2) fail_native_conv_too_large(shape);
  return static_cast<int>(value);
}

struct FilterSplit {
  int splits, depth_per_split;
};

// Splits the filter gradient's reduction (n * out_h * out_w long) so that about
// kFilterTargetBlocks blocks run, each with at least 4 tiles of depth. Depends only on
// the shape, so the summation order, and the result, is the same on every run.
FilterSplit filter_split(const ConvShape& shape) {
  const long long rows = shape.k, cols = static_cast<long long>(shape.c) * shape.r * shape.s;
  const long long depth = static_cast<long long>(shape.n) * shape.out_h() * shape.out_w();
  const long long tiles = ceil_div(rows, kTile) * ceil_div(cols, kTile);
  long long splits = std::max(1LL, kFilterTargetBlocks / tiles);
  splits = std::min({splits, std::max(1LL, ceil_div(depth, kTile) / 4),
                     static_cast<long long>(kMaxFilterSplits)});
  const long long per_split = ceil_div(ceil_div(depth, splits), kTile) * kTile;
  return {static_cast<int>(ceil_div(depth, per_split)), static_cast<int>(per_split)};
}

}  // namespace

size_t native_conv_workspace_bytes(const ConvShape& shape) {
  const FilterSplit split = filter_split(shape);
  if (split.splits <= 1) return 0;
  return static_cast<size_t>(split.splits) * shape.k * shape.c * shape.r * shape.s * sizeof(float);
}

void native_conv_forward(cudaStream_t stream, const ConvShape& shape, const float* x,
                         const float* w, const float* b, float* y, Activation act) {
  const Dims d = dims_of(shape);
  const int taps = checked_int(static_cast<long long>(d.c) * d.r * d.s, shape);
  const int pixels = checked_int(static_cast<long long>(d.n) * d.out_h * d.out_w, shape);
  if (taps <= kDirectMaxTaps) {
    const size_t total = static_cast<size_t>(pixels) * d.k;
    direct_forward_kernel<<<grid_for(total), kThreads, 0, stream>>>(x, w, b, y, d, act, total);
    PLINTH_CUDA_CHECK_LAUNCH();
    return;
  }
  launch_tiled_gemm(stream, d.k, pixels, taps, 1, taps, WeightRows{w, taps}, Im2col{x, d},
                    ForwardStore{y, b, d, act});
}

void native_conv_backward_data(cudaStream_t stream, const ConvShape& shape, const float* dy,
                               const float* w, float* dx) {
  const Dims d = dims_of(shape);
  const int depth = checked_int(static_cast<long long>(d.k) * d.r * d.s, shape);
  const int pixels = checked_int(static_cast<long long>(d.n) * d.h * d.w, shape);
  launch_tiled_gemm(stream, d.c, pixels, depth, 1, depth, WeightColumns{w, d}, GradientAtTap{dy, d},
                    DataStore{dx, d});
}

void native_conv_backward_filter(cudaStream_t stream, const ConvShape& shape, const float* x,
                                 const float* dy, float* dw, float* workspace) {
  const Dims d = dims_of(shape);
  const int cols = checked_int(static_cast<long long>(d.c) * d.r * d.s, shape);
  const int depth = checked_int(static_cast<long long>(d.n) * d.out_h * d.out_w, shape);
  const FilterSplit split = filter_split(shape);
  float* out = split.splits > 1 ? workspace : dw;
  launch_tiled_gemm(stream, d.k, cols, depth, split.splits, split.depth_per_split,
                    GradientRows{dy, d}, Im2colTransposed{x, d}, SplitStore{out, d.k, cols});
  if (split.splits > 1) {
    const size_t count = static_cast<size_t>(d.k) * cols;
    sum_splits_kernel<<<grid_for(count), kThreads, 0, stream>>>(workspace, split.splits, count, dw);
    PLINTH_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace plinth::cuda
