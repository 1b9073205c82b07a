// 2-D convolution (cross-correlation) as chunked im2col + GEMM or, for stride-1 3x3
// kernels, Winograd (winograd.h); see conv_workspace.h for how the batch is chunked and
// the algorithm chosen. Each chunk is one single-threaded GEMM on one thread, the
// chunks run in parallel, and every scratch buffer is per-thread and preallocated.
#pragma once

#include "cpu_fallback/conv_workspace.h"
#include "engine/backend.h"

namespace plinth::cpu {

// Plans the shape and, under ConvPolicy::fastest, times each direction's algorithms on one
// chunk and keeps the faster (a shape used unprepared runs im2col + GEMM).
template <typename T>
void conv2d_prepare(ConvWorkspace& ws, const ConvShape& s);

// y = act(conv(x, w) + b); b may be null.
template <typename T>
void conv2d_forward(ConvWorkspace& ws, const ConvShape& s, const T* x, const T* w, const T* b, T* y,
                    Activation act);

// The forward and the max pool over its output in one (Backend::conv2d_maxpool_forward), with
// conv_y left unwritten where the plan is im2col + GEMM. The same bits as the two ops where the
// pool reads every output; where it leaves rows or columns (conv2's 11x11 under a 2x2 pool)
// only the rest is computed, and OpenBLAS may round the narrower GEMM differently.
template <typename T>
void conv2d_maxpool_forward(ConvWorkspace& ws, const ConvShape& s, const PoolShape& pool,
                            const T* x, const T* w, const T* b, Activation act, T* conv_y,
                            T* pool_y, int32_t* argmax);

// The backward of conv2d_maxpool_forward with a ReLU (Backend::conv2d_maxpool_relu_backward):
// the convolution's output gradient is built chunk by chunk in GEMM rows, never whole.
template <typename T>
void conv2d_maxpool_relu_backward(ConvWorkspace& ws, const ConvShape& s, const PoolShape& pool,
                                  const T* x, const T* w, const T* pool_dy, const int32_t* argmax,
                                  const T* pool_y, T* conv_dy, T* dx, T* dw, T* db);

// dx = conv_transpose(dy, w) (overwrites dx).
template <typename T>
void conv2d_backward_data(ConvWorkspace& ws, const ConvShape& s, const T* dy, const T* w, T* dx);

// dw = correlation of x with dy (overwrites dw), summed over chunks in a fixed order.
template <typename T>
void conv2d_backward_filter(ConvWorkspace& ws, const ConvShape& s, const T* x, const T* dy, T* dw);

}  // namespace plinth::cpu
