// CPU average pooling (windows and global) and the merge ops: a case by hand and gradient
// checks in double.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "cpu_fallback/avgpool.h"
#include "cpu_fallback/merge.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

TEST_CASE("cpu avgpool: 4x4 input, 2x2 windows, by hand", "[cpu]") {
  const PoolShape s{.n = 1, .c = 1, .h = 4, .w = 4};
  const std::vector<double> x = {1, 5, 2, 0,  //
                                 3, 4, 8, 6,  //
                                 9, 0, 1, 2,  //
                                 7, 3, 4, 5};
  std::vector<double> y(4);
  cpu::avgpool_forward(1, s, x.data(), y.data());
  CHECK(y == std::vector<double>{13.0 / 4, 16.0 / 4, 19.0 / 4, 12.0 / 4});
  const std::vector<double> dy = {4, 8, 12, 16};
  std::vector<double> dx(16, -1.0);  // overwritten, not accumulated into
  cpu::avgpool_backward(1, s, dy.data(), dx.data());
  CHECK(dx == std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});

  std::vector<double> mean(1), spread(16, -1.0);
  cpu::global_avgpool_forward(1, x.data(), mean.data(), 1, 16);
  CHECK(mean[0] == 60.0 / 16);
  const double g = 32;
  cpu::global_avgpool_backward(1, &g, spread.data(), 1, 16);
  CHECK(spread == std::vector<double>(16, 2.0));
}

void check_avgpool_gradient(const PoolShape& s) {
  CAPTURE(s.n, s.c, s.h, s.w, s.size, s.stride);
  const size_t in = s.input_elements(), out = s.output_elements();
  std::vector<double> x = test::random_values(in, 51);
  const std::vector<double> g = test::random_values(out, 52);
  std::vector<double> y(out), dx(in, std::nan(""));
  auto loss = [&] {
    cpu::avgpool_forward(2, s, x.data(), y.data());
    return test::dot(g, y);
  };
  cpu::avgpool_backward(2, s, g.data(), dx.data());
  test::check_gradient(loss, x, dx);
}

TEST_CASE("cpu avgpool: gradients match finite differences", "[cpu]") {
  check_avgpool_gradient({.n = 2, .c = 2, .h = 7, .w = 6});  // odd: last row unused
  check_avgpool_gradient({.n = 1, .c = 3, .h = 7, .w = 7, .size = 3, .stride = 2});  // overlap
  check_avgpool_gradient({.n = 2, .c = 1, .h = 7, .w = 8, .size = 2, .stride = 3});  // gaps

  const size_t planes = 6;
  const int spatial = 10;
  std::vector<double> x = test::random_values(planes * spatial, 53);
  const std::vector<double> g = test::random_values(planes, 54);
  std::vector<double> y(planes), dx(planes * spatial, std::nan(""));
  auto loss = [&] {
    cpu::global_avgpool_forward(2, x.data(), y.data(), planes, spatial);
    return test::dot(g, y);
  };
  cpu::global_avgpool_backward(2, g.data(), dx.data(), planes, spatial);
  test::check_gradient(loss, x, dx);
}

TEST_CASE("cpu merge: add with relu fused, and rows copied into a concatenation", "[cpu]") {
  const std::vector<double> a = {1, -2, 3, -4}, b = {-2, 1, 1, 5};
  std::vector<double> y(4);
  cpu::add_forward(1, a.data(), b.data(), y.data(), 4, Activation::relu);
  CHECK(y == std::vector<double>{0, 0, 4, 1});

  // Two samples of 2 and 3 values into rows of 5, then the second input back out.
  const std::vector<double> first = {1, 2, 3, 4}, second = {5, 6, 7, 8, 9, 10};
  std::vector<double> cat(10, -1), back(6, -1);
  cpu::copy_rows(1, cat.data(), 5, first.data(), 2, 2, 2);
  cpu::copy_rows(1, cat.data() + 2, 5, second.data(), 3, 3, 2);
  CHECK(cat == std::vector<double>{1, 2, 5, 6, 7, 3, 4, 8, 9, 10});
  cpu::copy_rows(1, back.data(), 3, cat.data() + 2, 5, 3, 2);
  CHECK(back == second);
}

}  // namespace
}  // namespace plinth
