// Hand-written convolutions (CudaOptions::native_conv), without cuDNN. Forward,
// backward-data and backward-filter are implicit GEMMs over a shared-memory tiled kernel
// (the im2col matrix is never stored); a first layer with few input channels uses a
// direct kernel. All are deterministic. Launchers queue work on the given stream.
#pragma once

#include <cstddef>

#include <cuda_runtime_api.h>

#include "engine/backend.h"

namespace plinth::cuda {

// The kernels index with int; a shape past that fails with this message, which names
// the way out (cuDNN). Defined in conv.cpp: .cu files never format messages (nvcc's front
// end rejects fmt's compile-time format-string checks).
[[noreturn]] void fail_native_conv_too_large(const ConvShape& shape);

// Workspace the backward-filter pass needs for shape (its split-K partial sums).
size_t native_conv_workspace_bytes(const ConvShape& shape);

void native_conv_forward(cudaStream_t stream, const ConvShape& shape, const float* x,
                         const float* w, const float* b, float* y, Activation act);
void native_conv_backward_data(cudaStream_t stream, const ConvShape& shape, const float* dy,
                               const float* w, float* dx);
// workspace holds at least native_conv_workspace_bytes(shape).
void native_conv_backward_filter(cudaStream_t stream, const ConvShape& shape, const float* x,
                                 const float* dy, float* dw, float* workspace);

}  // namespace plinth::cuda
