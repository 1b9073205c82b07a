// Launch geometry and the deterministic block reduction shared by the kernel families.
// Included only by .cu files.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/backend.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"
#include "kernels/launchers.h"

namespace plinth::cuda {

inline constexpr int kThreads = 256;  // every 1-D kernel uses this block size (a power of 2)

// Blocks for a grid-stride loop over n elements. Capped because each thread loops; the
// cap keeps a launch well within gridDim.x limits and still fills every SM many times.
inline unsigned grid_for(size_t n, size_t max_blocks = 65535) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > max_blocks ? max_blocks : blocks));
}

// Blocks for a kernel that ends in block_sum_to_partials().
inline unsigned partial_grid_for(size_t n) { return grid_for(n, kMaxPartialBlocks); }

// Index math in 32 bits wherever a tensor allows it (below 2^32 - 2^24 elements, so that
// i + the grid's stride cannot wrap): a 64-bit division costs several times a 32-bit one.
// Kernels that divide an element's index to find its plane or channel are templates on
// their Index type, launched through PLINTH_LAUNCH_INDEXED.
inline bool fits_32bit_index(size_t n) { return n <= 0xffffffffull - size_t{65535} * kThreads; }

#define PLINTH_INDEX_LOOP(Index, i, n)                                      \
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; \
       i < static_cast<Index>(n); i += static_cast<Index>(blockDim.x) * gridDim.x)

// kernel<uint32_t> when `total` elements allow 32-bit indices, else kernel<uint64_t>, on a
// grid_for(total) grid.
#define PLINTH_LAUNCH_INDEXED(kernel, total, stream, ...)                                   \
  do {                                                                                      \
    const unsigned plinth_grid_ = ::plinth::cuda::grid_for(total);                          \
    if (::plinth::cuda::fits_32bit_index(total))                                            \
      kernel<uint32_t><<<plinth_grid_, ::plinth::cuda::kThreads, 0, stream>>>(__VA_ARGS__); \
    else                                                                                    \
      kernel<uint64_t><<<plinth_grid_, ::plinth::cuda::kThreads, 0, stream>>>(__VA_ARGS__); \
  } while (0)

#define PLINTH_GRID_STRIDE_LOOP(i, n)                                                  \
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<size_t>(blockDim.x) * gridDim.x)

// Sums v[j] over the kThreads threads of the block with a fixed tree, so the result
// does not depend on timing; the totals are left in v of thread 0. Every thread of the
// block must call it, with blockDim.x == kThreads.
template <int kValues>
__device__ void block_sum(double (&v)[kValues]) {
  __shared__ double shared[kValues][kThreads];
  const int t = static_cast<int>(threadIdx.x);
  for (int j = 0; j < kValues; ++j) shared[j][t] = v[j];
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (t < half)
      for (int j = 0; j < kValues; ++j) shared[j][t] += shared[j][t + half];
    __syncthreads();
  }
  if (t == 0)
    for (int j = 0; j < kValues; ++j) v[j] = shared[j][0];
}

// First pass of the deterministic reductions: the block's sums of v go to
// partials[blockIdx.x * kValues + j]; launch_finish_sums() adds the blocks up.
template <int kValues>
__device__ void block_sum_to_partials(double (&v)[kValues], double* partials) {
  static_assert(kValues <= kMaxPartialValues, "enlarge kMaxPartialValues");
  block_sum(v);
  if (threadIdx.x == 0)
    for (int j = 0; j < kValues; ++j) partials[blockIdx.x * kValues + j] = v[j];
}

}  // namespace plinth::cuda
