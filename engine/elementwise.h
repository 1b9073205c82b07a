// Per-element math shared by the CPU and CUDA backends (see hd.h). Each backend supplies
// only the loop or the kernel launch around these functions.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/backend.h"
#include "engine/hd.h"
#include "engine/rng.h"

namespace plinth {

#if !defined(__CUDACC__)
// Unqualified math calls below then pick std's float overloads for float on the host
// (nvcc provides float overloads of its own).
using std::cos;
using std::exp;
using std::log;
using std::pow;
using std::sqrt;
using std::tanh;
#endif

template <typename T>
PLINTH_HD T activate(Activation act, T x) {
  switch (act) {
    case Activation::relu:
      return x > T(0) ? x : T(0);
    case Activation::sigmoid:
      return T(1) / (T(1) + exp(-x));
    case Activation::tanh:
      return tanh(x);
    default:
      return x;
  }
}

// Derivative expressed through the forward output y.
template <typename T>
PLINTH_HD T activation_grad(Activation act, T y, T dy) {
  switch (act) {
    case Activation::relu:
      return y > T(0) ? dy : T(0);
    case Activation::sigmoid:
      return dy * y * (T(1) - y);
    case Activation::tanh:
      return dy * (T(1) - y * y);
    default:
      return dy;
  }
}

PLINTH_HD float dropout_mask(uint64_t seed, int64_t step, uint64_t i, float rate) {
  const float u = uniform01(hash_combine(seed, static_cast<uint64_t>(step)), i);
  return u < rate ? 0.0f : 1.0f / (1.0f - rate);
}

// The learning rate of an optimizer step in double, `step` being the number of steps taken
// before it: lr (the peak) along the schedule over `total` steps. The trainer's reports and
// both backends' updates share it.
PLINTH_HD double scheduled_lr(const Schedule& s, double lr, int epoch, int64_t step, double total) {
  const double fraction = static_cast<double>(step) / (1.0 < total ? total : 1.0);
  const double t = fraction < 1.0 ? fraction : 1.0;
  constexpr double pi = 3.14159265358979323846;
  switch (s.kind) {
    case ScheduleKind::step:
      return lr * pow(static_cast<double>(s.gamma), static_cast<double>(epoch / s.step_epochs));
    case ScheduleKind::cosine:
      return s.min_lr + (lr - s.min_lr) * 0.5 * (1 + cos(pi * t));
    case ScheduleKind::one_cycle: {
      if (t < s.warmup) return lr * (s.start_factor + (1 - s.start_factor) * t / s.warmup);
      const double u = (t - s.warmup) / (1 - s.warmup);
      return s.min_lr + (lr - s.min_lr) * 0.5 * (1 + cos(pi * u));
    }
    default:
      return lr;
  }
}

// The learning rate the update of optimizer step `step` (counted from 0) uses.
PLINTH_HD float step_lr(const OptimizerSpec& spec, const LrSchedule& r, int64_t step) {
  const double lr = scheduled_lr(r.schedule, spec.lr, r.epoch, step, r.total_steps);
  return static_cast<float>(lr * r.multiplier);
}

// Bias corrections for step t (from 1), computed once per update in double on the host
// side of a kernel/loop so every element uses the same value.
struct AdamCorrection {
  float step_size;  // lr * sqrt(1 - beta2^t) / (1 - beta1^t)
  float eps_hat;    // eps * sqrt(1 - beta2^t): Keras adds epsilon before bias correction
};

PLINTH_HD AdamCorrection adam_correction(const OptimizerSpec& s, int64_t t) {
  const double b1 = 1.0 - pow(static_cast<double>(s.beta1), static_cast<double>(t));
  const double b2 = 1.0 - pow(static_cast<double>(s.beta2), static_cast<double>(t));
  return {static_cast<float>(s.lr * sqrt(b2) / b1), static_cast<float>(s.eps * sqrt(b2))};
}

// One optimizer update of one parameter. g is the raw gradient (already clipped).
template <typename T>
PLINTH_HD void optimizer_element(const OptimizerSpec& s, const AdamCorrection& c, T& p, T g, T& m,
                                 T& v) {
  switch (s.kind) {
    case OptimizerKind::sgd: {
      g += T(s.weight_decay) * p;
      if (s.momentum == 0.0f) {
        p -= T(s.lr) * g;
      } else {
        m = T(s.momentum) * m + g;  // PyTorch's formulation (dampening 0)
        p -= T(s.lr) * (s.nesterov ? g + T(s.momentum) * m : m);
      }
      break;
    }
    case OptimizerKind::adam:
    case OptimizerKind::adamw: {
      if (s.kind == OptimizerKind::adam)
        g += T(s.weight_decay) * p;
      else
        p -= T(s.lr) * T(s.weight_decay) * p;
      m = T(s.beta1) * m + (T(1) - T(s.beta1)) * g;
      v = T(s.beta2) * v + (T(1) - T(s.beta2)) * g * g;
      p -= T(c.step_size) * m / (sqrt(v) + T(c.eps_hat));
      break;
    }
    case OptimizerKind::rmsprop: {
      g += T(s.weight_decay) * p;
      v = T(s.beta2) * v + (T(1) - T(s.beta2)) * g * g;  // beta2 is rho
      p -= T(s.lr) * g / (sqrt(v) + T(s.eps));
      break;
    }
  }
}

inline constexpr float kBceEpsilon = 1e-7f;

// Binary cross-entropy of one element and its gradient with respect to p.
template <typename T>
PLINTH_HD T bce_element(T p, T t, T* dp) {
  const T lo = T(kBceEpsilon), hi = T(1) - T(kBceEpsilon);
  const T q = p < lo ? lo : (p > hi ? hi : p);
  if (dp) *dp = (p < lo || p > hi) ? T(0) : (q - t) / (q * (T(1) - q));
  return -(t * log(q) + (T(1) - t) * log(T(1) - q));
}

}  // namespace plinth
