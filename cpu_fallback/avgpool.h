// Average pooling: over square windows without padding, and over whole planes (global).
#pragma once

#include <cstddef>

#include "engine/backend.h"

namespace plinth::cpu {

template <typename T>
void avgpool_forward(int threads, const PoolShape& s, const T* x, T* y);

// dx = each dy spread evenly over its window (overwrites dx); overlapping windows add, in
// output order.
template <typename T>
void avgpool_backward(int threads, const PoolShape& s, const T* dy, T* dx);

// y[p] = the mean of plane p's `spatial` values, summed in double.
template <typename T>
void global_avgpool_forward(int threads, const T* x, T* y, size_t planes, int spatial);

template <typename T>
void global_avgpool_backward(int threads, const T* dy, T* dx, size_t planes, int spatial);

}  // namespace plinth::cpu
