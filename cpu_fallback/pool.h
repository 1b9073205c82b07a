// Max pooling over square windows without padding.
#pragma once

#include <cstdint>

#include "engine/backend.h"

namespace plinth::cpu {

// argmax records, per output, the flat index within its (n, c) plane of the first maximum
// in row-major window order.
template <typename T>
void maxpool_forward(int threads, const PoolShape& s, const T* x, T* y, int32_t* argmax);

// dx = scatter-add of dy through argmax (overwrites dx); overlapping windows accumulate.
template <typename T>
void maxpool_backward(int threads, const PoolShape& s, const T* dy, const int32_t* argmax, T* dx);

}  // namespace plinth::cpu
