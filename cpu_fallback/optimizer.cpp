#include "cpu_fallback/optimizer.h"

#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"
#include "engine/elementwise.h"

namespace plinth::cpu {
namespace {

// The loop for one optimizer kind and one combination of present state buffers: with
// these fixed at compile time the switch inside optimizer_element folds away and the loop
// vectorises.
template <OptimizerKind kKind, bool kHasM, bool kHasV, typename T>
void update_loop(int threads, const OptimizerSpec& spec, const AdamCorrection& correction,
                 T* params, const T* grads, T* m, T* v, size_t n, T scale) {
  parallel_ranges(threads, n, 1, [&](size_t lo, size_t hi) {
    // Local copies: the compiler sees constants, not memory a parameter store might alias.
    OptimizerSpec s = spec;
    s.kind = kKind;
    const AdamCorrection c = correction;
    const T g_scale = scale;
    T* p = params;
    const T* g = grads;
    for (size_t i = lo; i < hi; ++i) {
      T unused_m = 0, unused_v = 0;
      optimizer_element(s, c, p[i], g[i] * g_scale, kHasM ? m[i] : unused_m,
                        kHasV ? v[i] : unused_v);
    }
  });
}

template <OptimizerKind kKind, typename T>
void update_kind(int threads, const OptimizerSpec& spec, const AdamCorrection& correction,
                 T* params, const T* grads, T* m, T* v, size_t n, T scale) {
  if (m && v)
    update_loop<kKind, true, true>(threads, spec, correction, params, grads, m, v, n, scale);
  else if (m)
    update_loop<kKind, true, false>(threads, spec, correction, params, grads, m, v, n, scale);
  else if (v)
    update_loop<kKind, false, true>(threads, spec, correction, params, grads, m, v, n, scale);
  else
    update_loop<kKind, false, false>(threads, spec, correction, params, grads, m, v, n, scale);
}

}  // namespace

template <typename T>
void optimizer_update(int threads, const OptimizerSpec& peak, const LrSchedule& schedule, T* params,
                      const T* grads, T* m, T* v, size_t n, const int64_t* step,
                      const T* grad_scale, const T* skip) {
  if (skip && *skip != T(0)) return;
  OptimizerSpec spec = peak;
  spec.lr = step_lr(peak, schedule, *step - 1);
  const AdamCorrection c = adam_correction(spec, *step);  // once, not per element
  const T scale = grad_scale ? *grad_scale : T(1);
  switch (spec.kind) {
    case OptimizerKind::sgd:
      update_kind<OptimizerKind::sgd>(threads, spec, c, params, grads, m, v, n, scale);
      break;
    case OptimizerKind::adam:
      update_kind<OptimizerKind::adam>(threads, spec, c, params, grads, m, v, n, scale);
      break;
    case OptimizerKind::adamw:
      update_kind<OptimizerKind::adamw>(threads, spec, c, params, grads, m, v, n, scale);
      break;
    case OptimizerKind::rmsprop:
      update_kind<OptimizerKind::rmsprop>(threads, spec, c, params, grads, m, v, n, scale);
      break;
  }
}

template void optimizer_update<float>(int, const OptimizerSpec&, const LrSchedule&, float*,
                                      const float*, float*, float*, size_t, const int64_t*,
                                      const float*, const float*);
template void optimizer_update<double>(int, const OptimizerSpec&, const LrSchedule&, double*,
                                       const double*, double*, double*, size_t, const int64_t*,
                                       const double*, const double*);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::optimizer_update(const OptimizerSpec& spec, const LrSchedule& schedule,
                                  float* params, const float* grads, float* m, float* v, size_t n,
                                  const int64_t* step, const float* grad_scale, const float* skip) {
  cpu::optimizer_update(threads_, spec, schedule, params, grads, m, v, n, step, grad_scale, skip);
}

}  // namespace plinth
