// Validation of the shapes ops receive, with the one-line errors users see. Kept in a
// .cpp so that .cu files never format messages (nvcc's front end rejects fmt's
// compile-time format-string checks).
#pragma once

#include "engine/backend.h"

namespace plinth::cuda {

void check_conv_shape(const ConvShape& shape);
void check_pool_shape(const PoolShape& shape, const char* op);
// The native convolution indexes with int; a shape past that must use cuDNN.
[[noreturn]] void fail_native_conv_too_large(const ConvShape& shape);

}  // namespace plinth::cuda
