// CPU batch normalisation: a case by hand (statistics, PyTorch's running estimates) and
// gradient checks in double, in training and in evaluation.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "cpu_fallback/batchnorm.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

TEST_CASE("cpu batchnorm: one channel by hand, and PyTorch's running estimates", "[cpu]") {
  const BatchNormShape s{.n = 2, .c = 1, .spatial = 2};
  const std::vector<double> x = {1, 2, 3, 4}, weight = {2}, bias = {0.5};
  std::vector<double> running_mean = {1}, running_var = {1}, mean(1), invstd(1), y(4);
  cpu::batchnorm_forward(1, s, true, x.data(), weight.data(), bias.data(), running_mean.data(),
                         running_var.data(), mean.data(), invstd.data(), y.data(),
                         Activation::none);
  // mean 2.5, biased variance 1.25; the running variance takes the unbiased 5/3.
  const double momentum = s.momentum, eps = s.eps;  // 0.1 and 1e-5 as floats
  CHECK(mean[0] == 2.5);
  CHECK(invstd[0] == Approx(1 / std::sqrt(1.25 + eps)).epsilon(1e-12));
  CHECK(running_mean[0] == Approx((1 - momentum) * 1 + momentum * 2.5).epsilon(1e-12));
  CHECK(running_var[0] == Approx((1 - momentum) * 1 + momentum * 5.0 / 3.0).epsilon(1e-12));
  for (int i = 0; i < 4; ++i)
    CHECK(y[i] == Approx((x[i] - 2.5) * invstd[0] * 2 + 0.5).epsilon(1e-12));

  // Evaluation: the running estimates, which stay as they are.
  const std::vector<double> held_mean = running_mean, held_var = running_var;
  cpu::batchnorm_forward(1, s, false, x.data(), weight.data(), bias.data(), running_mean.data(),
                         running_var.data(), mean.data(), invstd.data(), y.data(),
                         Activation::relu);
  CHECK(running_mean == held_mean);
  CHECK(running_var == held_var);
  const double inv = 1 / std::sqrt(held_var[0] + eps);
  CHECK(invstd[0] == Approx(inv).epsilon(1e-12));
  for (int i = 0; i < 4; ++i)
    CHECK(y[i] == Approx(std::max(0.0, (x[i] - held_mean[0]) * inv * 2 + 0.5)).epsilon(1e-12));
}

// dL/dx, dL/dweight and dL/dbias against central differences of L = sum g * y, with the
// statistics of the batch (training) or the running estimates (evaluation).
void check_batchnorm_gradient(const BatchNormShape& s, bool training, Activation act) {
  CAPTURE(s.n, s.c, s.spatial, training, static_cast<int>(act));
  const size_t n = s.elements(), c = s.c;
  std::vector<double> x = test::random_values(n, 31, -2, 3);
  std::vector<double> weight = test::random_values(c, 32, 0.5, 1.5);
  std::vector<double> bias = test::random_values(c, 33);
  const std::vector<double> g = test::random_values(n, 34);
  const std::vector<double> start_mean = test::random_values(c, 35);
  const std::vector<double> start_var = test::random_values(c, 36, 0.5, 2);
  std::vector<double> running_mean, running_var, mean(c), invstd(c), y(n);
  auto loss = [&] {
    running_mean = start_mean;
    running_var = start_var;
    cpu::batchnorm_forward(2, s, training, x.data(), weight.data(), bias.data(),
                           running_mean.data(), running_var.data(), mean.data(), invstd.data(),
                           y.data(), act);
    return test::dot(g, y);
  };
  loss();
  std::vector<double> dx(n, std::nan("")), dweight(c, std::nan("")), dbias(c, std::nan(""));
  cpu::batchnorm_backward(2, s, training, act, x.data(), y.data(), g.data(), weight.data(),
                          mean.data(), invstd.data(), dx.data(), dweight.data(), dbias.data());
  test::check_gradient(loss, x, dx);
  test::check_gradient(loss, weight, dweight);
  test::check_gradient(loss, bias, dbias);
}

TEST_CASE("cpu batchnorm: gradients match finite differences", "[cpu]") {
  for (const bool training : {true, false}) {
    check_batchnorm_gradient({.n = 3, .c = 2, .spatial = 5}, training, Activation::none);
    check_batchnorm_gradient({.n = 4, .c = 3}, training, Activation::tanh);  // batchnorm1d
    check_batchnorm_gradient({.n = 2, .c = 2, .spatial = 9, .eps = 0.01f}, training,
                             Activation::sigmoid);
  }
}

TEST_CASE("cpu batchnorm: backward in place (dx = dy) equals out of place", "[cpu]") {
  const BatchNormShape s{.n = 3, .c = 4, .spatial = 7};
  const size_t n = s.elements();
  const std::vector<double> x = test::random_values(n, 41), w = test::random_values(4, 42),
                            b = test::random_values(4, 43);
  std::vector<double> rm(4, 0), rv(4, 1), mean(4), invstd(4), y(n);
  cpu::batchnorm_forward(1, s, true, x.data(), w.data(), b.data(), rm.data(), rv.data(),
                         mean.data(), invstd.data(), y.data(), Activation::relu);
  std::vector<double> dy = test::random_values(n, 44), dx(n), dw(4), db(4), dw2(4), db2(4);
  cpu::batchnorm_backward(1, s, true, Activation::relu, x.data(), y.data(), dy.data(), w.data(),
                          mean.data(), invstd.data(), dx.data(), dw.data(), db.data());
  cpu::batchnorm_backward(1, s, true, Activation::relu, x.data(), y.data(), dy.data(), w.data(),
                          mean.data(), invstd.data(), dy.data(), dw2.data(), db2.data());
  CHECK(dy == dx);
  CHECK(dw2 == dw);
  CHECK(db2 == db);
}

}  // namespace
}  // namespace plinth
