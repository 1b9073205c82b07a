// Per-channel bias: the fused bias + activation of dense layers and the bias gradient.
#pragma once

#include "engine/backend.h"

namespace plinth::cpu {

// y[n, c, spatial] = act(y + b[c]) in place; b may be null.
template <typename T>
void bias_activation_forward(int threads, T* y, const T* b, int n, int c, int spatial,
                             Activation act);

// db[c] = sum over n and spatial of dy[n, c, spatial] (overwrites db). Each channel is
// summed by one thread in a fixed order, so the result does not depend on the thread count.
template <typename T>
void bias_backward(int threads, const T* dy, T* db, int n, int c, int spatial);

// dx = dy * act'(y) (dx may alias dy) and db = bias_backward of dx, in one pass and with the
// same sums in the same order as the two separate calls.
template <typename T>
void bias_activation_backward(int threads, Activation act, const T* y, const T* dy, T* dx, T* db,
                              int n, int c, int spatial);

}  // namespace plinth::cpu
