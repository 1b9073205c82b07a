// CPU activations and dropout: values and gradients.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu_fallback/activation.h"
#include "cpu_fallback/dropout.h"
#include "engine/elementwise.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

TEST_CASE("cpu activation: forward values", "[cpu]") {
  const std::vector<double> x = {-2, -0.5, 0, 0.5, 2};
  std::vector<double> y(x.size());
  cpu::activation_forward(1, Activation::relu, x.data(), y.data(), x.size());
  CHECK(y == std::vector<double>{0, 0, 0, 0.5, 2});
  cpu::activation_forward(1, Activation::none, x.data(), y.data(), x.size());
  CHECK(y == x);
  cpu::activation_forward(1, Activation::sigmoid, x.data(), y.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i)
    CHECK(y[i] == Approx(1 / (1 + std::exp(-x[i]))).epsilon(1e-15));
  cpu::activation_forward(1, Activation::tanh, x.data(), y.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) CHECK(y[i] == Approx(std::tanh(x[i])).epsilon(1e-15));
}

TEST_CASE("cpu activation: gradients match finite differences", "[cpu]") {
  for (Activation act :
       {Activation::none, Activation::relu, Activation::sigmoid, Activation::tanh}) {
    CAPTURE(static_cast<int>(act));
    std::vector<double> x = test::random_values(50, 53, -3, 3);
    const std::vector<double> g = test::random_values(50, 54);
    std::vector<double> y(50), dx(50);
    auto loss = [&] {
      cpu::activation_forward(1, act, x.data(), y.data(), x.size());
      return test::dot(g, y);
    };
    loss();
    cpu::activation_backward(1, act, y.data(), g.data(), dx.data(), x.size());
    test::check_gradient(loss, x, dx);
  }
}

TEST_CASE("cpu activation: the threaded path equals the serial one, in place too", "[cpu]") {
  const size_t n = 40000;  // above the threshold for a parallel region
  const std::vector<double> x = test::random_values(n, 55, -3, 3);
  const std::vector<double> g = test::random_values(n, 56);
  for (Activation act :
       {Activation::none, Activation::relu, Activation::sigmoid, Activation::tanh}) {
    CAPTURE(static_cast<int>(act));
    std::vector<double> y1(n), y2(n), dx1(n), dx2 = g;
    cpu::activation_forward(1, act, x.data(), y1.data(), n);
    cpu::activation_forward(2, act, x.data(), y2.data(), n);
    CHECK(y1 == y2);
    cpu::activation_backward(1, act, y1.data(), g.data(), dx1.data(), n);
    cpu::activation_backward(2, act, y1.data(), dx2.data(), dx2.data(), n);  // dx aliases dy
    CHECK(dx1 == dx2);
  }
}

TEST_CASE("cpu dropout: mask from the counter-based generator, gradient through it", "[cpu]") {
  const size_t n = 20000;
  const float rate = 0.3f;
  const uint64_t seed = 77;
  const int64_t step = 5;
  std::vector<double> x = test::random_values(n, 61);
  std::vector<double> y(n), mask(n);
  cpu::dropout_forward(2, x.data(), y.data(), mask.data(), n, rate, seed, &step);
  size_t dropped = 0, wrong_mask = 0, wrong_y = 0;
  for (size_t i = 0; i < n; ++i) {
    wrong_mask += mask[i] != static_cast<double>(dropout_mask(seed, step, i, rate));
    wrong_y += y[i] != x[i] * mask[i];
    dropped += mask[i] == 0;
  }
  CHECK(wrong_mask == 0);
  CHECK(wrong_y == 0);
  CHECK(dropped == Approx(rate * n).margin(4 * std::sqrt(n * rate * (1 - rate))));

  const int64_t next = step + 1;
  std::vector<double> other(n), other_mask(n);
  cpu::dropout_forward(2, x.data(), other.data(), other_mask.data(), n, rate, seed, &next);
  CHECK(other_mask != mask);  // a new step draws a new mask

  // L = g . dropout(x); the mask is fixed by (seed, step), so x can be perturbed.
  std::vector<double> small_x(x.begin(), x.begin() + 64);
  const std::vector<double> g = test::random_values(64, 62);
  std::vector<double> small_y(64), small_mask(64), dx(64);
  auto loss = [&] {
    cpu::dropout_forward(1, small_x.data(), small_y.data(), small_mask.data(), 64, rate, seed,
                         &step);
    return test::dot(g, small_y);
  };
  loss();
  cpu::dropout_backward(1, g.data(), small_mask.data(), dx.data(), 64);
  test::check_gradient(loss, small_x, dx);
}

}  // namespace
}  // namespace plinth
