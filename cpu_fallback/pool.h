// Max pooling over square windows without padding.
#pragma once

#include <cstdint>

#include "engine/backend.h"

namespace plinth::cpu {

// argmax records, per output, the flat index within its (n, c) plane of the first maximum
// in row-major window order.
template <typename T>
void maxpool_forward(int threads, const PoolShape& s, const T* x, T* y, int32_t* argmax);

// One (n, c) plane of maxpool_forward: x is s.h x s.w, y and argmax s.out_h() x s.out_w().
// argmax indexes rows of index_width (s.w, or the width of a plane x is the top left of).
template <typename T>
void maxpool_plane(const PoolShape& s, const T* x, T* y, int32_t* argmax, int index_width);

// dx = scatter-add of dy through argmax (overwrites dx); overlapping windows accumulate.
template <typename T>
void maxpool_backward(int threads, const PoolShape& s, const T* dy, const int32_t* argmax, T* dx);

// The pool's and a ReLU's backward in one (y the pool's output): dx = scatter-add of
// dy * (y > 0) through argmax, and, when db is not null, db[c] = the sum of dx over n and
// positions. Bit for bit what maxpool_backward then bias_activation_backward(relu) give.
template <typename T>
void maxpool_relu_backward(int threads, const PoolShape& s, const T* dy, const int32_t* argmax,
                           const T* y, T* dx, T* db);

}  // namespace plinth::cpu
