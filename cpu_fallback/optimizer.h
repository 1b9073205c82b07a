// One optimizer update of a contiguous run of parameters (per-element math in
// engine/elementwise.h optimizer_element).
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/backend.h"

namespace plinth::cpu {

// *step counts from 1 and the learning rate is schedule's at *step - 1 (spec.lr its peak);
// grad_scale (may be null) multiplies every gradient; m and v may be null when the
// optimizer does not use them (sgd without momentum uses neither, sgd with momentum only
// m, rmsprop only v); a non-zero *skip (skip may be null) leaves everything as it is.
template <typename T>
void optimizer_update(int threads, const OptimizerSpec& spec, const LrSchedule& schedule, T* params,
                      const T* grads, T* m, T* v, size_t n, const int64_t* step,
                      const T* grad_scale, const T* skip);

}  // namespace plinth::cpu
