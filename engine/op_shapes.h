// Which convolution, pooling and batch-normalisation geometries plinth runs, decided in one place
// with one wording. Both backends check the shapes their ops receive, and the conv2d and maxpool2d
// layers check the shapes they build (so a model file with an impossible layer fails when
// it is read, naming the layer). Out_h() = (h + 2 pad - r) / stride + 1 rounds down, so a
// window larger than its input can still "produce" one output; these checks refuse it.
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/backend.h"

namespace plinth {

// The most elements one sample's tensor may hold (input, output, a weight tensor, a
// column of im2col taps): shapes are ints, and the kernels index a sample, a plane or a
// GEMM operand with int32. Whole-batch counts are 64-bit everywhere: a batch (an int) of
// samples within this limit stays below 2^62 elements.
inline constexpr int64_t kMaxElementsPerSample = INT32_MAX;

// Throw plinth::Error("<who>: <what is wrong> (<the shape>)") unless every backend can
// run shape. who is the op ("conv2d_forward") or the layer ("layer conv1") asking.
void check_conv_shape(const ConvShape& shape, std::string_view who);
void check_pool_shape(const PoolShape& shape, std::string_view who);
void check_batchnorm_shape(const BatchNormShape& shape, std::string_view who);
// Both shapes, and that the pool's input is the convolution's output (conv2d_maxpool_forward).
void check_conv_pool_shapes(const ConvShape& conv, const PoolShape& pool, std::string_view who);

}  // namespace plinth
