// CPU reductions and bookkeeping ops.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "cpu_fallback/activation.h"
#include "cpu_fallback/bias.h"
#include "cpu_fallback/reductions.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

TEST_CASE("cpu sum_squares: adds the sum of squares to the output", "[cpu]") {
  const std::vector<double> x = {1, -2, 3};
  double out = 10;
  cpu::sum_squares(1, x.data(), x.size(), &out);
  CHECK(out == 24);

  const std::vector<double> big = test::random_values(100000, 91);
  double expected = 0;
  for (double v : big) expected += v * v;
  double one = 0, two = 0;
  cpu::sum_squares(1, big.data(), big.size(), &one);
  cpu::sum_squares(2, big.data(), big.size(), &two);
  CHECK(one == Approx(expected).epsilon(1e-13));
  CHECK(one == two);  // fixed blocks: the same sum for any thread count
}

TEST_CASE("cpu clip_scale: min(1, max_norm / norm)", "[cpu]") {
  double scale = 0;
  const double small = 4, large = 100, zero = 0;
  cpu::clip_scale(&small, 5.0f, &scale);
  CHECK(scale == 1);
  cpu::clip_scale(&large, 5.0f, &scale);
  CHECK(scale == Approx(0.5).epsilon(1e-15));
  cpu::clip_scale(&zero, 5.0f, &scale);
  CHECK(scale == 1);
}

TEST_CASE("cpu count_nonfinite: counts NaN and infinities", "[cpu]") {
  std::vector<float> x(50000, 1.0f);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[20000] = std::numeric_limits<float>::infinity();
  x[49999] = -std::numeric_limits<float>::infinity();
  x[7] = std::numeric_limits<float>::max();  // large but finite
  std::vector<float> stats(kStatsSize, 0.0f);
  stats[kStatNonFinite] = 1;
  cpu::count_nonfinite(2, x.data(), x.size(), stats.data());
  CHECK(stats[kStatNonFinite] == 4);
  CHECK(stats[kStatLossSum] == 0);
}

TEST_CASE("cpu accumulate: y += x", "[cpu]") {
  const std::vector<double> x = {1, 2, 3};
  std::vector<double> y = {10, 20, 30};
  cpu::accumulate(1, x.data(), y.data(), 3);
  CHECK(y == std::vector<double>{11, 22, 33});
}

// The fused backward must give exactly the two separate ops' results, in place or not.
TEMPLATE_TEST_CASE("cpu bias_activation_backward: equals activation_backward then bias_backward",
                   "[cpu]", float, double) {
  const int n = 5, c = 7, spatial = 37;
  const size_t size = size_t(n) * c * spatial;
  const std::vector<double> yd = test::random_values(size, 93, -2, 2),
                            dyd = test::random_values(size, 94);
  const std::vector<TestType> y(yd.begin(), yd.end()), dy(dyd.begin(), dyd.end());
  for (const Activation act :
       {Activation::none, Activation::relu, Activation::sigmoid, Activation::tanh})
    for (const int threads : {1, 2}) {
      CAPTURE(static_cast<int>(act), threads);
      std::vector<TestType> want_dx(size), want_db(c), dx(size, TestType(-9)), db(c, TestType(-9));
      cpu::activation_backward(1, act, y.data(), dy.data(), want_dx.data(), size);
      cpu::bias_backward(1, want_dx.data(), want_db.data(), n, c, spatial);
      cpu::bias_activation_backward(threads, act, y.data(), dy.data(), dx.data(), db.data(), n, c,
                                    spatial);
      CHECK(dx == want_dx);
      CHECK(db == want_db);
      std::vector<TestType> in_place = dy;
      cpu::bias_activation_backward(threads, act, y.data(), in_place.data(), in_place.data(),
                                    db.data(), n, c, spatial);
      CHECK(in_place == want_dx);
      CHECK(db == want_db);
    }
}

TEST_CASE("cpu bias_backward: sums over batch and spatial per channel", "[cpu]") {
  // [n=2, c=2, spatial=2]
  const std::vector<double> dy = {1, 2, 10, 20, 3, 4, 30, 40};
  std::vector<double> db(2, -1.0);
  cpu::bias_backward(1, dy.data(), db.data(), 2, 2, 2);
  CHECK(db == std::vector<double>{10, 100});

  const int n = 32, c = 32, spatial = 676;  // conv1 of the seed network at batch 32
  const std::vector<double> big = test::random_values(size_t(n) * c * spatial, 92);
  const std::vector<float> bigf(big.begin(), big.end());
  std::vector<float> one(c), two(c);
  cpu::bias_backward(1, bigf.data(), one.data(), n, c, spatial);
  cpu::bias_backward(2, bigf.data(), two.data(), n, c, spatial);
  CHECK(one == two);
  for (int k = 0; k < c; ++k) {
    double expected = 0;
    for (int i = 0; i < n; ++i)
      for (int q = 0; q < spatial; ++q) expected += bigf[(size_t(i) * c + k) * spatial + q];
    CHECK(one[k] == Approx(expected).epsilon(1e-6));
  }
}

}  // namespace
}  // namespace plinth
