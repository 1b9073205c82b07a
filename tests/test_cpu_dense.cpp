// CPU GEMM in every transpose combination, and a dense layer's gradients through it.
#include <catch2/catch.hpp>

#include <vector>

#include "cpu_fallback/bias.h"
#include "cpu_fallback/gemm.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

TEST_CASE("cpu gemm: every transpose combination matches a naive triple loop", "[cpu]") {
  const int m = 5, n = 7, k = 4;
  // Leading dimensions wider than the matrices, so padding must be skipped.
  const int pad = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta, tb);
      const int a_rows = ta ? k : m, a_cols = ta ? m : k;
      const int b_rows = tb ? n : k, b_cols = tb ? k : n;
      const int lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
      const std::vector<double> a = test::random_values(size_t(a_rows) * lda, 31);
      const std::vector<double> b = test::random_values(size_t(b_rows) * ldb, 32);
      std::vector<double> c = test::random_values(size_t(m) * ldc, 33);
      const std::vector<double> c0 = c;
      const double alpha = 1.5, beta = -0.5;
      cpu::gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double sum = 0;
          for (int l = 0; l < k; ++l)
            sum += (ta ? a[l * lda + i] : a[i * lda + l]) * (tb ? b[j * ldb + l] : b[l * ldb + j]);
          CHECK(c[i * ldc + j] == Approx(alpha * sum + beta * c0[i * ldc + j]).epsilon(1e-12));
        }
      for (int i = 0; i < m; ++i)  // the padding columns of C are untouched
        for (int j = n; j < ldc; ++j) CHECK(c[i * ldc + j] == c0[i * ldc + j]);
    }
}

TEST_CASE("cpu dense: gradients through gemm match finite differences", "[cpu]") {
  // y[N, O] = act(x[N, I] W[O, I]^T + b), the executor's dense layer.
  const int batch = 3, in = 5, out = 4;
  const Activation act = Activation::tanh;
  std::vector<double> x = test::random_values(size_t(batch) * in, 41);
  std::vector<double> w = test::random_values(size_t(out) * in, 42);
  std::vector<double> b = test::random_values(out, 43);
  const std::vector<double> g = test::random_values(size_t(batch) * out, 44);
  std::vector<double> y(g.size());
  auto forward = [&] {
    cpu::gemm(false, true, batch, out, in, 1.0, x.data(), in, w.data(), in, 0.0, y.data(), out);
    cpu::bias_activation_forward(1, y.data(), b.data(), batch, out, 1, act);
  };
  auto loss = [&] {
    forward();
    return test::dot(g, y);
  };
  forward();
  std::vector<double> dpre(g.size()), dx(x.size()), dw(w.size()), db(b.size());
  for (size_t i = 0; i < g.size(); ++i) dpre[i] = g[i] * (1 - y[i] * y[i]);
  cpu::gemm(false, false, batch, in, out, 1.0, dpre.data(), out, w.data(), in, 0.0, dx.data(), in);
  cpu::gemm(true, false, out, in, batch, 1.0, dpre.data(), out, x.data(), in, 0.0, dw.data(), in);
  cpu::bias_backward(1, dpre.data(), db.data(), batch, out, 1);
  test::check_gradient(loss, x, dx);
  test::check_gradient(loss, w, dw);
  test::check_gradient(loss, b, db);
}

TEST_CASE("cpu bias: forward adds the bias per channel and applies the activation", "[cpu]") {
  // [n=2, c=2, spatial=3]
  std::vector<double> y = {-1, 0, 1, -1, 0, 1, 2, 3, 4, -5, -6, -7};
  const std::vector<double> b = {0.5, 10};
  cpu::bias_activation_forward(2, y.data(), b.data(), 2, 2, 3, Activation::relu);
  CHECK(y == std::vector<double>{0, 0.5, 1.5, 9, 10, 11, 2.5, 3.5, 4.5, 5, 4, 3});
  cpu::bias_activation_forward<double>(2, y.data(), nullptr, 2, 2, 3, Activation::none);
  CHECK(y == std::vector<double>{0, 0.5, 1.5, 9, 10, 11, 2.5, 3.5, 4.5, 5, 4, 3});
}

}  // namespace
}  // namespace plinth
