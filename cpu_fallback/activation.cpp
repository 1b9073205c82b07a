#include "cpu_fallback/activation.h"

#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"

namespace plinth::cpu {

template <typename T>
void activation_forward(int threads, Activation act, const T* x, T* y, size_t n) {
  with_activation(act, [&](auto kind) {
    parallel_for(threads, n, [&](size_t i) { y[i] = activate(kind(), x[i]); });
  });
}

template <typename T>
void activation_backward(int threads, Activation act, const T* y, const T* dy, T* dx, size_t n) {
  with_activation(act, [&](auto kind) {
    parallel_for(threads, n, [&](size_t i) { dx[i] = activation_grad(kind(), y[i], dy[i]); });
  });
}

template void activation_forward<float>(int, Activation, const float*, float*, size_t);
template void activation_forward<double>(int, Activation, const double*, double*, size_t);
template void activation_backward<float>(int, Activation, const float*, const float*, float*,
                                         size_t);
template void activation_backward<double>(int, Activation, const double*, const double*, double*,
                                          size_t);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::activation_forward(Activation act, const float* x, float* y, size_t n) {
  cpu::activation_forward(threads_, act, x, y, n);
}

void CpuBackend::activation_backward(Activation act, const float* y, const float* dy, float* dx,
                                     size_t n) {
  cpu::activation_backward(threads_, act, y, dy, dx, n);
}

}  // namespace plinth
