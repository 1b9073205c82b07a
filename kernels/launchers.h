// Kernel launchers that one kernel family offers to another file, including host-only
// .cpp files (so this header names only runtime-API types).
#pragma once

#include <cstddef>

#include <cuda_runtime_api.h>

#include "engine/backend.h"

namespace plinth::cuda {

// Second pass of the deterministic reductions: out[j] += sum over blocks of
// partials[b * values + j] (j < values), then *count_out += count when count_out is not
// null. One block adds in a fixed order, so repeated runs give identical bits.
// Defined in reductions.cu.
void launch_finish_sums(cudaStream_t stream, const double* partials, unsigned blocks, int values,
                        float* out, float* count_out, float count);

// y[n, c, spatial] = act(y + b[c]) in place (b may be null). Defined in bias.cu;
// also runs after cuDNN's convolution forward.
void launch_bias_activation(cudaStream_t stream, float* y, const float* b, int n, int c,
                            int spatial, Activation act);

// db[c] = the sum over n and spatial of g[n, c, spatial] where y > 0 (overwrites db), with
// the bias gradient's deterministic reduction. Defined in bias.cu; maxpool_relu_backward
// takes it over the pool's output.
void launch_relu_masked_channel_sum(cudaStream_t stream, double* partials, const float* g,
                                    const float* y, float* db, int n, int c, int spatial);

// out[i] = in[i] rounded to bfloat16 (to nearest even), and back to float, for n values;
// the bfloat16 buffers are raw 2-byte values. Defined in precision.cu.
void launch_to_bf16(cudaStream_t stream, const float* in, void* out, size_t n);
void launch_from_bf16(cudaStream_t stream, const void* in, float* out, size_t n);

}  // namespace plinth::cuda
