// Batch normalisation per channel of [n, c, spatial] (engine/backend.h says what each op
// computes). Each channel's sums are taken by one thread in a fixed order, in double, so
// the results do not depend on the thread count.
#pragma once

#include "engine/backend.h"

namespace plinth::cpu {

template <typename T>
void batchnorm_forward(int threads, const BatchNormShape& s, bool training, const T* x,
                       const T* weight, const T* bias, T* running_mean, T* running_var,
                       T* saved_mean, T* saved_invstd, T* y, Activation act);

template <typename T>
void batchnorm_backward(int threads, const BatchNormShape& s, bool training, Activation act,
                        const T* x, const T* y, const T* dy, const T* weight, const T* saved_mean,
                        const T* saved_invstd, T* dx, T* dweight, T* dbias);

}  // namespace plinth::cpu
