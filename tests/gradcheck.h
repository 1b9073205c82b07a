// Finite-difference gradient checks in double precision, shared by the op tests.
//
// An op's backward is checked through a scalar loss L(x) = sum_i g_i * y_i(x) with fixed
// random weights g (so dL/dy = g): the analytic dL/dx from the backward op must match
// central differences (L(x + h e_j) - L(x - h e_j)) / 2h for every input j.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

namespace plinth::test {

// Values uniform in [lo, hi) from a fixed seed.
inline std::vector<double> random_values(size_t n, uint64_t seed, double lo = -1.0,
                                         double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

// n values in [lo, hi) at least (hi - lo) / n apart, in random order: no ties, and no
// pair close enough for a finite-difference step to swap them (max pooling, argmax).
inline std::vector<double> distinct_values(size_t n, uint64_t seed, double lo = -1.0,
                                           double hi = 1.0) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * (static_cast<double>(i) + 0.5) / n;
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed));
  return v;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

struct GradcheckOptions {
  double step = 1e-6;
  double tolerance = 1e-6;  // on |numeric - analytic| / max(|numeric|, |analytic|, floor)
  double floor = 1e-2;      // keeps near-zero gradients from dividing roundoff by ~0
};

// Perturbs each x[j] in place (restoring it), evaluates loss() on both sides and checks
// the central difference against analytic[j]. Reports the worst entry.
inline void check_gradient(const std::function<double()>& loss, std::vector<double>& x,
                           const std::vector<double>& analytic, GradcheckOptions opt = {}) {
  REQUIRE(analytic.size() == x.size());
  double worst = 0, worst_numeric = 0, worst_analytic = 0;
  size_t worst_index = 0;
  for (size_t j = 0; j < x.size(); ++j) {
    const double saved = x[j];
    x[j] = saved + opt.step;
    const double up = loss();
    x[j] = saved - opt.step;
    const double down = loss();
    x[j] = saved;
    const double numeric = (up - down) / (2 * opt.step);
    const double scale = std::max({std::abs(numeric), std::abs(analytic[j]), opt.floor});
    const double error = std::abs(numeric - analytic[j]) / scale;
    const bool worse = std::isnan(error) ? !std::isnan(worst) : error > worst;  // NaN sticks
    if (worse) {
      worst = error;
      worst_index = j;
      worst_numeric = numeric;
      worst_analytic = analytic[j];
    }
  }
  INFO("worst at index " << worst_index << ": numeric " << worst_numeric << ", analytic "
                         << worst_analytic);
  CHECK(worst <= opt.tolerance);
}

}  // namespace plinth::test
