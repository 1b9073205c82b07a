// Kernel launchers that one kernel family offers to another file, including host-only
// .cpp files (so this header names only runtime-API types).
#pragma once

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

}  // namespace plinth::cuda
