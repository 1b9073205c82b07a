// The optimizer update: one launch over a contiguous run of parameters. The per-element
// rule is optimizer_element() in elementwise.h, shared with the CPU backend.
#include "engine/elementwise.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

// step, grad_scale and skip are read on the device so that a captured graph replays
// correctly. Each thread derives the learning rate and the Adam bias correction itself:
// the same double arithmetic in every thread gives every element the same value, without
// a second launch.
__global__ void optimizer_kernel(OptimizerSpec spec, LrSchedule schedule, float* params,
                                 const float* grads, float* m, float* v, size_t n,
                                 const int64_t* step, const float* grad_scale, const float* skip) {
  if (skip && *skip != 0.0f) return;
  spec.lr = step_lr(spec, schedule, *step - 1);
  const bool adam = spec.kind == OptimizerKind::adam || spec.kind == OptimizerKind::adamw;
  const AdamCorrection correction = adam ? adam_correction(spec, *step) : AdamCorrection{0, 0};
  const float scale = grad_scale ? *grad_scale : 1.0f;
  PLINTH_GRID_STRIDE_LOOP(i, n) {
    float p = params[i];
    float mi = m ? m[i] : 0.0f;
    float vi = v ? v[i] : 0.0f;
    optimizer_element(spec, correction, p, grads[i] * scale, mi, vi);
    params[i] = p;
    if (m) m[i] = mi;
    if (v) v[i] = vi;
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::optimizer_update(const OptimizerSpec& spec, const LrSchedule& schedule,
                                   float* params, const float* grads, float* m, float* v, size_t n,
                                   const int64_t* step, const float* grad_scale,
                                   const float* skip) {
  if (n == 0) return;
  optimizer_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(spec, schedule, params, grads, m, v,
                                                               n, step, grad_scale, skip);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace plinth
