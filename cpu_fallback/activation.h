// Elementwise activations (per-element math from engine/elementwise.h).
#pragma once

#include <cstddef>
#include <type_traits>

#include "engine/backend.h"
#include "engine/elementwise.h"

namespace plinth::cpu {

// Calls f with the activation as a compile-time constant (f(kind) where kind() is the
// Activation), so the switch inside activate() folds away and inner loops vectorise.
template <typename F>
void with_activation(Activation act, F&& f) {
  switch (act) {
    case Activation::relu:
      f(std::integral_constant<Activation, Activation::relu>{});
      break;
    case Activation::sigmoid:
      f(std::integral_constant<Activation, Activation::sigmoid>{});
      break;
    case Activation::tanh:
      f(std::integral_constant<Activation, Activation::tanh>{});
      break;
    default:
      f(std::integral_constant<Activation, Activation::none>{});
      break;
  }
}

template <typename T>
void activation_forward(int threads, Activation act, const T* x, T* y, size_t n);

// dx = dy * act'(y); dx may alias dy.
template <typename T>
void activation_backward(int threads, Activation act, const T* y, const T* dy, T* dx, size_t n);

}  // namespace plinth::cpu
