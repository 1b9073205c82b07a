// CPU convolution: hand-computed cases, gradient checks of every backward path (with the
// fused bias and activation), the chunked float path against the double one, and both
// algorithms (im2col + GEMM, Winograd) against plain loops.
#include <catch2/catch.hpp>

#include <random>
#include <type_traits>
#include <vector>

#include "cpu_fallback/activation.h"
#include "cpu_fallback/bias.h"
#include "cpu_fallback/conv.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

using test::check_gradient;
using test::dot;
using test::random_values;

size_t input_size(const ConvShape& s) { return size_t(s.n) * s.c * s.h * s.w; }
size_t weight_size(const ConvShape& s) { return size_t(s.k) * s.c * s.r * s.s; }
size_t output_size(const ConvShape& s) { return size_t(s.n) * s.k * s.out_h() * s.out_w(); }

template <typename T>
std::vector<T> conv_forward(cpu::ConvWorkspace& ws, const ConvShape& s, const std::vector<T>& x,
                            const std::vector<T>& w, const std::type_identity_t<T>* b,
                            Activation act) {
  std::vector<T> y(output_size(s));
  cpu::conv2d_forward(ws, s, x.data(), w.data(), b, y.data(), act);
  return y;
}

TEST_CASE("cpu conv2d: 3x3 input with a 2x2 kernel, by hand", "[cpu]") {
  cpu::ConvWorkspace ws(2);
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<double> w = {1, 2, 3, 4};
  const double bias = 1;

  SECTION("stride 1, no padding") {
    const ConvShape s{.n = 1, .c = 1, .h = 3, .w = 3, .k = 1, .r = 2, .s = 2};
    // y[i][j] = x[i][j] + 2 x[i][j+1] + 3 x[i+1][j] + 4 x[i+1][j+1] + 1
    CHECK(conv_forward(ws, s, x, w, &bias, Activation::none) ==
          std::vector<double>{38, 48, 68, 78});

    const std::vector<double> ones(4, 1.0);
    std::vector<double> dx(9), dw(4), db(1);
    cpu::conv2d_backward_data(ws, s, ones.data(), w.data(), dx.data());
    // each input pixel collects the kernel taps of the windows that cover it
    CHECK(dx == std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4});
    cpu::conv2d_backward_filter(ws, s, x.data(), ones.data(), dw.data());
    // each tap sums the 2x2 block of inputs it sees
    CHECK(dw == std::vector<double>{12, 16, 24, 28});
    cpu::bias_backward(1, ones.data(), db.data(), 1, 1, 4);
    CHECK(db == std::vector<double>{4});
  }
  SECTION("stride 2, padding 1") {
    const ConvShape s{
        .n = 1, .c = 1, .h = 3, .w = 3, .k = 1, .r = 2, .s = 2, .stride = 2, .pad = 1};
    REQUIRE(s.out_h() == 2);
    // windows start at (-1,-1), (-1,1), (1,-1), (1,1); taps outside the image see zeros
    CHECK(conv_forward(ws, s, x, w, nullptr, Activation::none) ==
          std::vector<double>{4 * 1, 3 * 2 + 4 * 3, 2 * 4 + 4 * 7, 5 + 2 * 6 + 3 * 8 + 4 * 9});
  }
  SECTION("relu fused") {
    const ConvShape s{.n = 1, .c = 1, .h = 3, .w = 3, .k = 1, .r = 2, .s = 2};
    const double shift = -50;
    CHECK(conv_forward(ws, s, x, w, &shift, Activation::relu) == std::vector<double>{0, 0, 17, 27});
  }
}

struct ConvCase {
  ConvShape shape;
  Activation act;
};

// Every backward output of a conv layer y = act(conv(x, w) + b) against finite differences.
void check_conv_gradients(const ConvCase& cc, size_t chunk_bytes,
                          cpu::ConvPolicy policy = cpu::ConvPolicy::gemm) {
  const ConvShape& s = cc.shape;
  CAPTURE(s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride, s.pad, static_cast<int>(cc.act), chunk_bytes,
          cpu::conv_policy_name(policy));
  cpu::ConvWorkspace ws(2, chunk_bytes, policy);
  std::vector<double> x = random_values(input_size(s), 1);
  std::vector<double> w = random_values(weight_size(s), 2);
  std::vector<double> b = random_values(s.k, 3);
  const std::vector<double> g = random_values(output_size(s), 4);
  auto loss = [&] { return dot(g, conv_forward(ws, s, x, w, b.data(), cc.act)); };

  const std::vector<double> y = conv_forward(ws, s, x, w, b.data(), cc.act);
  std::vector<double> dpre(y.size()), dx(x.size()), dw(w.size()), db(b.size());
  cpu::activation_backward(2, cc.act, y.data(), g.data(), dpre.data(), y.size());
  cpu::conv2d_backward_data(ws, s, dpre.data(), w.data(), dx.data());
  cpu::conv2d_backward_filter(ws, s, x.data(), dpre.data(), dw.data());
  cpu::bias_backward(2, dpre.data(), db.data(), s.n, s.k, s.out_h() * s.out_w());

  {
    INFO("input gradient");
    check_gradient(loss, x, dx);
  }
  {
    INFO("filter gradient");
    check_gradient(loss, w, dw);
  }
  {
    INFO("bias gradient");
    check_gradient(loss, b, db);
  }
}

const ConvCase kCases[] = {
    {{.n = 1, .c = 1, .h = 5, .w = 5, .k = 2, .r = 3, .s = 3}, Activation::none},
    {{.n = 3, .c = 3, .h = 7, .w = 6, .k = 4, .r = 3, .s = 3, .stride = 2, .pad = 1},
     Activation::relu},
    {{.n = 3, .c = 1, .h = 6, .w = 7, .k = 2, .r = 2, .s = 3, .stride = 1, .pad = 1},
     Activation::tanh},
    {{.n = 1, .c = 3, .h = 5, .w = 5, .k = 3, .r = 3, .s = 2, .stride = 2, .pad = 0},
     Activation::sigmoid},
    {{.n = 3, .c = 3, .h = 5, .w = 4, .k = 2, .r = 1, .s = 1}, Activation::relu},
    // more chunks than filter partial sums: a partial sums several chunks
    {{.n = 20, .c = 2, .h = 4, .w = 4, .k = 2, .r = 3, .s = 3}, Activation::relu},
};

TEST_CASE("cpu conv2d: gradients match finite differences", "[cpu]") {
  for (const ConvCase& cc : kCases)
    check_conv_gradients(cc, cpu::ConvWorkspace::kDefaultChunkBytes);
}

TEST_CASE("cpu conv2d: gradients match finite differences with one sample per chunk", "[cpu]") {
  // A 1-byte chunk target forces one sample per chunk: many chunks and filter partial sums.
  cpu::ConvWorkspace ws(2, 1);
  const cpu::ConvPlan& plan = ws.prepare(kCases[std::size(kCases) - 1].shape, sizeof(double));
  REQUIRE(plan.groups < plan.chunks);
  for (const ConvCase& cc : kCases) check_conv_gradients(cc, 1);
}

// Winograd's stride-1 3x3 shapes: padding 0 to 2, odd sizes, several chunks.
const ConvCase kWinogradCases[] = {
    {{.n = 1, .c = 1, .h = 5, .w = 5, .k = 2, .r = 3, .s = 3}, Activation::none},
    {{.n = 2, .c = 3, .h = 7, .w = 6, .k = 5, .r = 3, .s = 3, .pad = 1}, Activation::relu},
    {{.n = 3, .c = 2, .h = 4, .w = 5, .k = 3, .r = 3, .s = 3, .pad = 2}, Activation::tanh},
    {{.n = 20, .c = 2, .h = 4, .w = 4, .k = 2, .r = 3, .s = 3}, Activation::relu},
};

TEST_CASE("cpu conv2d: Winograd gradients match finite differences", "[cpu]") {
  for (const ConvCase& cc : kWinogradCases) {
    REQUIRE(cpu::ConvWorkspace(1, 1, cpu::ConvPolicy::winograd)
                .prepare(cc.shape, sizeof(double))
                .forward == cpu::ConvAlgorithm::winograd);
    check_conv_gradients(cc, cpu::ConvWorkspace::kDefaultChunkBytes, cpu::ConvPolicy::winograd);
    check_conv_gradients(cc, 1, cpu::ConvPolicy::winograd);
  }
}

template <typename T>
std::vector<T> convert(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// Largest |a - b| relative to the largest |b|.
double relative_difference(const std::vector<float>& a, const std::vector<double>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}

TEST_CASE("cpu conv2d: float path matches double on a realistic shape", "[cpu]") {
  const ConvShape s{.n = 5, .c = 32, .h = 13, .w = 13, .k = 64, .r = 3, .s = 3};
  const std::vector<double> x = random_values(input_size(s), 11);
  const std::vector<double> w = random_values(weight_size(s), 12, -0.1, 0.1);
  const std::vector<double> b = random_values(s.k, 13);
  const std::vector<double> dy = random_values(output_size(s), 14);
  // A small chunk target gives several chunks per thread, as larger batches do.
  cpu::ConvWorkspace wd(2), wf(2, 200 << 10);
  REQUIRE(wf.prepare(s, sizeof(float)).chunks > 2);

  const std::vector<double> y = conv_forward(wd, s, x, w, b.data(), Activation::relu);
  const std::vector<float> bf = convert<float>(b);
  const std::vector<float> yf =
      conv_forward(wf, s, convert<float>(x), convert<float>(w), bf.data(), Activation::relu);
  CHECK(relative_difference(yf, y) < 1e-5);

  std::vector<double> dx(x.size()), dw(w.size());
  std::vector<float> dxf(x.size()), dwf(w.size());
  cpu::conv2d_backward_data(wd, s, dy.data(), w.data(), dx.data());
  cpu::conv2d_backward_data(wf, s, convert<float>(dy).data(), convert<float>(w).data(), dxf.data());
  CHECK(relative_difference(dxf, dx) < 1e-5);
  cpu::conv2d_backward_filter(wd, s, x.data(), dy.data(), dw.data());
  cpu::conv2d_backward_filter(wf, s, convert<float>(x).data(), convert<float>(dy).data(),
                              dwf.data());
  CHECK(relative_difference(dwf, dw) < 1e-5);
}

// Plain loops over every output pixel and tap: forward, input gradient, filter gradient.
struct DirectConv {
  std::vector<double> y, dx, dw;
};

DirectConv direct_conv(const ConvShape& s, const std::vector<double>& x,
                       const std::vector<double>& w, const std::vector<double>& dy) {
  DirectConv d{std::vector<double>(output_size(s)), std::vector<double>(x.size()),
               std::vector<double>(w.size())};
  const int oh = s.out_h(), ow = s.out_w();
  for (int n = 0; n < s.n; ++n)
    for (int k = 0; k < s.k; ++k)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          const size_t o = ((size_t(n) * s.k + k) * oh + oy) * ow + ox;
          for (int c = 0; c < s.c; ++c)
            for (int r = 0; r < s.r; ++r)
              for (int t = 0; t < s.s; ++t) {
                const int iy = oy * s.stride - s.pad + r, ix = ox * s.stride - s.pad + t;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                const size_t i = ((size_t(n) * s.c + c) * s.h + iy) * s.w + ix;
                const size_t f = ((size_t(k) * s.c + c) * s.r + r) * s.s + t;
                d.y[o] += w[f] * x[i];
                d.dx[i] += w[f] * dy[o];
                d.dw[f] += x[i] * dy[o];
              }
        }
  return d;
}

// Output widths 1..40 reach every row-copy size class of the unfolding, in float and double;
// images of 12 and 26 rows (up to 960 pixels per sample) reach the per-sample GEMM path.
// |got - ref| <= tol * max |ref|, tol by precision.
template <typename T>
bool close_to(const std::vector<T>& got, const std::vector<double>& ref) {
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return diff <= tol * scale;
}

// Every direction of ws's algorithms on shape s against the plain loops.
template <typename T>
void check_against_loops(cpu::ConvWorkspace& ws, const ConvShape& s, uint64_t seed) {
  const std::vector<double> x = random_values(input_size(s), seed),
                            w = random_values(weight_size(s), seed + 1);
  const std::vector<double> dy = random_values(output_size(s), seed + 2);
  const std::vector<double> bias = random_values(s.k, seed + 3);
  DirectConv want = direct_conv(s, x, w, dy);
  const size_t plane = size_t(s.out_h()) * s.out_w();
  for (size_t o = 0; o < want.y.size(); ++o) want.y[o] += bias[o / plane % s.k];
  const std::vector<T> xt(x.begin(), x.end()), wt(w.begin(), w.end()), dyt(dy.begin(), dy.end());
  const std::vector<T> bt(bias.begin(), bias.end());
  std::vector<T> y(want.y.size(), 7), dx(x.size(), 7), dw(w.size(), 7);  // overwritten
  cpu::conv2d_forward(ws, s, xt.data(), wt.data(), bt.data(), y.data(), Activation::none);
  cpu::conv2d_backward_data(ws, s, dyt.data(), wt.data(), dx.data());
  cpu::conv2d_backward_filter(ws, s, xt.data(), dyt.data(), dw.data());
  CHECK(close_to(y, want.y));
  CHECK(close_to(dx, want.dx));
  CHECK(close_to(dw, want.dw));
}

// Output widths 1..40 reach every row-copy size class of the unfolding, in float and double;
// images of 12 and 26 rows (up to 960 pixels per sample) reach the per-sample GEMM path;
// Winograd sees odd and even planes with both paddings, and single samples.
TEMPLATE_TEST_CASE("cpu conv2d: matches plain loops for output widths 1 to 40", "[cpu]", float,
                   double) {
  for (cpu::ConvPolicy policy : {cpu::ConvPolicy::gemm, cpu::ConvPolicy::winograd}) {
    cpu::ConvWorkspace ws(2, 64 << 10, policy);
    for (int n : {1, 3})
      for (int rows : {5, 12, 26})
        for (int width = 1; width <= 40; ++width)
          for (int pad : {0, 1})
            if (width + 2 - 2 * pad >= 1) {
              const ConvShape s{.n = n,
                                .c = 2,
                                .h = rows,
                                .w = width + 2 - 2 * pad,
                                .k = 3,
                                .r = 3,
                                .s = 3,
                                .pad = pad};
              CAPTURE(cpu::conv_policy_name(policy), s.n, s.h, s.w, s.pad);
              check_against_loops<TestType>(ws, s, 31);
            }
  }
}

TEMPLATE_TEST_CASE("cpu conv2d: Winograd matches plain loops on random shapes", "[cpu]", float,
                   double) {
  std::mt19937 rng(2026);
  auto draw = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int i = 0; i < 40; ++i) {
    // channel counts that are not multiples of 8, odd planes, padding 0 to 2, batch 1 to 9,
    // and chunk targets from one sample to the whole batch
    const int pad = draw(0, 2);
    const ConvShape s{.n = draw(1, 9),
                      .c = draw(1, 19),
                      .h = draw(std::max(1, 3 - 2 * pad), 17),
                      .w = draw(std::max(1, 3 - 2 * pad), 17),
                      .k = draw(1, 19),
                      .r = 3,
                      .s = 3,
                      .pad = pad};
    const size_t chunk_bytes = size_t{1} << draw(0, 20);
    CAPTURE(s.n, s.c, s.h, s.w, s.k, s.pad, chunk_bytes);
    cpu::ConvWorkspace ws(2, chunk_bytes, cpu::ConvPolicy::winograd);
    REQUIRE(ws.prepare(s, sizeof(TestType)).backward_filter == cpu::ConvAlgorithm::winograd);
    check_against_loops<TestType>(ws, s, 40 + i);
  }
}

TEST_CASE("cpu conv2d: auto times both algorithms of stride-1 3x3 layers of 8+ channels only",
          "[cpu]") {
  cpu::ConvWorkspace ws(2, cpu::ConvWorkspace::kDefaultChunkBytes, cpu::ConvPolicy::fastest);
  const ConvShape conv2{.n = 32, .c = 32, .h = 13, .w = 13, .k = 64, .r = 3, .s = 3};
  const ConvShape strided{.n = 4, .c = 3, .h = 9, .w = 9, .k = 4, .r = 3, .s = 3, .stride = 2};
  const ConvShape wide{.n = 4, .c = 3, .h = 9, .w = 9, .k = 4, .r = 5, .s = 5, .pad = 2};
  const ConvShape narrow{.n = 4, .c = 1, .h = 9, .w = 9, .k = 16, .r = 3, .s = 3};
  // Unprepared, a shape runs the reference.
  CHECK_FALSE(ws.prepare(conv2, sizeof(float)).uses_winograd());
  cpu::conv2d_prepare<float>(ws, conv2);
  CHECK(ws.prepare(conv2, sizeof(float)).timed);
  for (const ConvShape& s : {strided, wide, narrow}) {
    cpu::conv2d_prepare<float>(ws, s);
    CHECK_FALSE(ws.prepare(s, sizeof(float)).timed);
    CHECK_FALSE(ws.prepare(s, sizeof(float)).uses_winograd());
  }
  // Whatever was chosen computes the convolution.
  check_against_loops<float>(ws, conv2, 50);
}

TEST_CASE("cpu conv2d: Winograd's filter gradient is bitwise identical on 1 and 2 threads",
          "[cpu]") {
  const ConvShape s{.n = 32, .c = 32, .h = 13, .w = 13, .k = 64, .r = 3, .s = 3, .pad = 1};
  const std::vector<float> x = convert<float>(random_values(input_size(s), 60));
  const std::vector<float> dy = convert<float>(random_values(output_size(s), 61));
  std::vector<float> one(weight_size(s)), two(weight_size(s));
  cpu::ConvWorkspace w1(1, 200 << 10, cpu::ConvPolicy::winograd),
      w2(2, 200 << 10, cpu::ConvPolicy::winograd);
  REQUIRE(w2.prepare(s, sizeof(float)).groups > 1);
  cpu::conv2d_backward_filter(w1, s, x.data(), dy.data(), one.data());
  cpu::conv2d_backward_filter(w2, s, x.data(), dy.data(), two.data());
  CHECK(one == two);
}

TEST_CASE("cpu conv2d: shapes that were not prepared are planned on first use", "[cpu]") {
  cpu::ConvWorkspace ws(2);
  const ConvShape small{.n = 2, .c = 1, .h = 4, .w = 4, .k = 1, .r = 3, .s = 3};
  const ConvShape large{.n = 4, .c = 8, .h = 12, .w = 12, .k = 16, .r = 3, .s = 3, .pad = 1};
  const std::vector<double> xs(input_size(small), 1.0), ws_(weight_size(small), 1.0);
  const std::vector<double> xl(input_size(large), 1.0), wl(weight_size(large), 1.0);
  // small, then large (buffers grow), then small again (reuses the grown buffers)
  CHECK(conv_forward(ws, small, xs, ws_, nullptr, Activation::none) == std::vector<double>(8, 9.0));
  const std::vector<double> yl = conv_forward(ws, large, xl, wl, nullptr, Activation::none);
  CHECK(yl[12 * 12 + 13] == 72.0);  // an interior pixel: 8 channels x 9 taps
  CHECK(yl[0] == 32.0);             // a corner: 8 channels x 4 taps inside the image
  CHECK(conv_forward(ws, small, xs, ws_, nullptr, Activation::none) == std::vector<double>(8, 9.0));
}

TEST_CASE("cpu conv2d: invalid shapes are reported", "[cpu]") {
  cpu::ConvWorkspace ws(1);
  const ConvShape bad{.n = 1, .c = 1, .h = 2, .w = 2, .k = 1, .r = 3, .s = 3};
  CHECK_THROWS_WITH(ws.prepare(bad, sizeof(float)),
                    Catch::StartsWith("cpu conv2d: the 3x3 kernel does not fit the 2x2 input"));
}

}  // namespace
}  // namespace plinth
