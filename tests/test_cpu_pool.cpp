// CPU max pooling: a hand-computed 4x4 case and gradient checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu_fallback/pool.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

TEST_CASE("cpu maxpool: 4x4 input, 2x2 windows, by hand", "[cpu]") {
  const PoolShape s{.n = 1, .c = 1, .h = 4, .w = 4};
  const std::vector<double> x = {1, 5, 2, 0,  //
                                 3, 4, 8, 6,  //
                                 9, 0, 1, 2,  //
                                 7, 3, 4, 5};
  std::vector<double> y(4);
  std::vector<int32_t> argmax(4);
  cpu::maxpool_forward(1, s, x.data(), y.data(), argmax.data());
  CHECK(y == std::vector<double>{5, 8, 9, 5});
  CHECK(argmax == std::vector<int32_t>{1, 6, 8, 15});

  const std::vector<double> dy = {1, 2, 3, 4};
  std::vector<double> dx(16, -1.0);  // overwritten, not accumulated into
  cpu::maxpool_backward(1, s, dy.data(), argmax.data(), dx.data());
  CHECK(dx == std::vector<double>{0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 4});
}

TEST_CASE("cpu maxpool: ties pick the first maximum in window order", "[cpu]") {
  const PoolShape s{.n = 1, .c = 1, .h = 2, .w = 2};
  const std::vector<double> x = {3, 7, 7, 7};
  double y = 0;
  int32_t argmax = -1;
  cpu::maxpool_forward(1, s, x.data(), &y, &argmax);
  CHECK(y == 7);
  CHECK(argmax == 1);
}

// The 2x2 stride-2 fast path against a plain loop, on values with many ties (and odd
// sizes, whose last row and column no window covers).
// Widths 2 to 40 take the AVX-512 row kernel (up to 32) and the loop after it, with ties.
void check_first_maximum(const PoolShape& s) {
  CAPTURE(s.h, s.w);
  const size_t in_plane = size_t(s.h) * s.w, out_plane = size_t(s.out_h()) * s.out_w();
  std::vector<float> x(size_t(s.n) * s.c * in_plane);
  uint32_t state = 12345;
  for (float& v : x) v = float((state = state * 1664525u + 1013904223u) >> 30);  // 0..3
  std::vector<float> y(size_t(s.n) * s.c * out_plane);
  std::vector<int32_t> argmax(y.size());
  cpu::maxpool_forward(2, s, x.data(), y.data(), argmax.data());
  for (size_t plane = 0; plane < size_t(s.n) * s.c; ++plane)
    for (int oy = 0; oy < s.out_h(); ++oy)
      for (int ox = 0; ox < s.out_w(); ++ox) {
        int best_at = 2 * oy * s.w + 2 * ox;
        for (int at : {best_at + 1, best_at + s.w, best_at + s.w + 1})
          if (x[plane * in_plane + at] > x[plane * in_plane + best_at]) best_at = at;
        const size_t o = plane * out_plane + oy * s.out_w() + ox;
        CAPTURE(plane, oy, ox);
        REQUIRE(argmax[o] == best_at);
        REQUIRE(y[o] == x[plane * in_plane + best_at]);
      }
}

TEST_CASE("cpu maxpool: 2x2 stride 2 matches a plain first-maximum loop", "[cpu]") {
  for (int h : {2, 3, 9})
    for (int w = 2; w <= 40; ++w)
      check_first_maximum({.n = 2, .c = 3, .h = h, .w = w, .size = 2, .stride = 2});
}

void check_pool_gradient(const PoolShape& s) {
  CAPTURE(s.n, s.c, s.h, s.w, s.size, s.stride);
  const size_t in = size_t(s.n) * s.c * s.h * s.w, out = size_t(s.n) * s.c * s.out_h() * s.out_w();
  std::vector<double> x = test::distinct_values(in, 21);
  const std::vector<double> g = test::random_values(out, 22);
  std::vector<double> y(out), dx(in, std::nan(""));  // every element must be overwritten
  std::vector<int32_t> argmax(out);
  auto loss = [&] {
    cpu::maxpool_forward(2, s, x.data(), y.data(), argmax.data());
    return test::dot(g, y);
  };
  loss();
  cpu::maxpool_backward(2, s, g.data(), argmax.data(), dx.data());
  test::check_gradient(loss, x, dx);
}

TEST_CASE("cpu maxpool: gradients match finite differences", "[cpu]") {
  check_pool_gradient(
      {.n = 3, .c = 2, .h = 7, .w = 6, .size = 2, .stride = 2});  // odd: last row unused
  check_pool_gradient(
      {.n = 2, .c = 2, .h = 6, .w = 9, .size = 2, .stride = 2});  // odd: last column unused
  check_pool_gradient({.n = 1, .c = 3, .h = 5, .w = 5, .size = 2, .stride = 2});  // both
  check_pool_gradient(
      {.n = 2, .c = 3, .h = 7, .w = 7, .size = 3, .stride = 2});  // overlapping windows
  check_pool_gradient({.n = 1, .c = 1, .h = 5, .w = 4, .size = 2, .stride = 1});
}

}  // namespace
}  // namespace plinth
