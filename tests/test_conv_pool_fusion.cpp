// The executor's fusion of a convolution and the max pool that alone consumes its output.
// Forward, the convolution computes the pool's output plane by plane while it is in cache
// (conv2d_maxpool_forward). Backward, where the convolution ends in a ReLU, the pool takes
// that ReLU's backward (maxpool_relu_backward), and where the pool's forward is fused too the
// convolution does the pool's backward, building its output gradient chunk by chunk
// (conv2d_maxpool_relu_backward). On the CPU the fused results are the unfused ones (the
// bias gradient to fp32 rounding: it is summed from the pool's gradient): the same network
// with the ReLU as a layer of its own (which nothing fuses) gives them. Where the
// ReLU's output also feeds another layer, its gradient is a sum that the ReLU must see
// whole: nothing fuses there.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu_fallback/bias.h"
#include "cpu_fallback/conv.h"
#include "cpu_fallback/conv_pool_direct.h"
#include "cpu_fallback/pool.h"
#include "engine/executor.h"
#include "engine/parameters.h"
#include "tests/engine_fixtures.h"
#include "tests/gradcheck.h"
#include "tests/recording_backend.h"

namespace plinth {
namespace {

// conv1 ends in a ReLU (fused with the pool after it) or feeds a separate ReLU layer.
Model network(bool separate_relu, bool conv1_bias) {
  nlohmann::json layers = nlohmann::json::array();
  layers.push_back({{"type", "conv2d"},
                    {"name", "conv1"},
                    {"filters", 5},
                    {"kernel", 3},
                    {"use_bias", conv1_bias},
                    {"activation", separate_relu ? "linear" : "relu"}});
  if (separate_relu)
    layers.push_back({{"type", "activation"}, {"name", "act"}, {"activation", "relu"}});
  layers.push_back({{"type", "maxpool2d"}, {"name", "pool1"}, {"size", 2}});
  layers.push_back({{"type", "conv2d"},
                    {"name", "conv2"},
                    {"filters", 4},
                    {"kernel", 3},
                    {"activation", "relu"}});
  layers.push_back({{"type", "maxpool2d"}, {"name", "pool2"}, {"size", 3}, {"stride", 1}});
  layers.push_back({{"type", "flatten"}, {"name", "flatten"}});
  layers.push_back({{"type", "dense"}, {"name", "fc"}, {"units", 7}, {"activation", "softmax"}});
  return parse_model({{"name", "fusion"},
                      {"input", {2, 14, 14}},
                      {"layers", layers},
                      {"loss", "categorical_crossentropy"}},
                     "fusion test");
}

// conv1's output fans out: to a max pool and to an average pool, concatenated after; conv2
// alone feeds its pool.
Model fan_out_network(bool separate_relu) {
  const std::string conv1_out = separate_relu ? "act" : "conv1";
  nlohmann::json layers = nlohmann::json::array();
  layers.push_back({{"type", "conv2d"},
                    {"name", "conv1"},
                    {"filters", 4},
                    {"kernel", 3},
                    {"padding", 1},
                    {"activation", separate_relu ? "linear" : "relu"}});
  if (separate_relu)
    layers.push_back({{"type", "activation"}, {"name", "act"}, {"activation", "relu"}});
  layers.push_back({{"type", "maxpool2d"}, {"name", "max1"}, {"size", 2}, {"input", conv1_out}});
  layers.push_back({{"type", "avgpool2d"}, {"name", "avg1"}, {"size", 2}, {"input", conv1_out}});
  layers.push_back({{"type", "concat"}, {"name", "cat"}, {"input", {"max1", "avg1"}}});
  layers.push_back({{"type", "conv2d"},
                    {"name", "conv2"},
                    {"filters", 4},
                    {"kernel", 3},
                    {"activation", "relu"}});
  layers.push_back({{"type", "maxpool2d"}, {"name", "pool2"}, {"size", 2}});
  layers.push_back({{"type", "flatten"}, {"name", "flatten"}});
  layers.push_back({{"type", "dense"}, {"name", "fc"}, {"units", 7}, {"activation", "softmax"}});
  return parse_model({{"name", "fan-out fusion"},
                      {"input", {2, 14, 14}},
                      {"layers", layers},
                      {"loss", "categorical_crossentropy"}},
                     "fusion test");
}

// The largest difference relative to the largest value of `expected`.
template <typename T>
double max_relative_error(const std::vector<T>& got, const std::vector<T>& expected) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(got[i]) - expected[i]));
    scale = std::max(scale, std::abs(static_cast<double>(expected[i])));
  }
  return diff / std::max(scale, 1e-30);
}

// The gradients of the weights and of the biases, apart: a fused bias gradient is summed
// from the pool's gradient, in another order than from the convolution's (fp32 rounding).
struct Gradients {
  std::vector<float> grads, bias_grads;
  std::vector<std::string> log;
};

Gradients gradients(const Model& m, const std::vector<std::string>& frozen = {}) {
  auto cpu = make_cpu_backend(2);
  test::RecordingBackend be(*cpu);
  Parameters p(m, be);
  p.initialize(3);
  std::vector<bool> freeze(m.nodes.size(), false);
  for (const std::string& name : frozen) freeze[m.find(name)] = true;
  const int batch = 6;
  Executor exec(m, p, be, batch, true, freeze);
  std::vector<float> input(exec.input().numel());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : input) v = u(rng);
  be.upload(exec.input().data, input.data(), input.size() * sizeof(float));
  const std::vector<int32_t> labels = {0, 3, 6, 1, 2, 5};
  be.upload(exec.labels(), labels.data(), labels.size() * sizeof(int32_t));
  p.upload(p.grads(), std::vector<float>(p.size(), 0.0f));
  exec.forward(true);
  exec.loss(batch, true);
  exec.backward();
  Gradients g{{}, {}, be.log()};
  const std::vector<float> all = p.download(p.grads());
  for (const ParamEntry& e : p.entries()) {
    std::vector<float>& to = e.name.ends_with(".bias") ? g.bias_grads : g.grads;
    to.insert(to.end(), all.begin() + e.offset, all.begin() + e.offset + e.shape.numel());
  }
  return g;
}

size_t count_calls(const std::vector<std::string>& log, const std::string& op) {
  size_t n = 0;
  for (const std::string& line : log) n += line.rfind(op + "(", 0) == 0;
  return n;
}

TEST_CASE("conv-pool fusion: a ReLU convolution's pool is computed in its passes",
          "[engine][cpu]") {
  for (const bool bias : {true, false}) {
    INFO("conv1 bias " << bias);
    const Gradients fused = gradients(network(false, bias));
    const Gradients separate = gradients(network(true, bias));
    CHECK(fused.grads == separate.grads);
    CHECK(max_relative_error(fused.bias_grads, separate.bias_grads) < 1e-6);
    CHECK(count_calls(fused.log, "conv2d_maxpool_forward") == 2);        // both pools
    CHECK(count_calls(fused.log, "conv2d_maxpool_relu_backward") == 2);  // both pools
    CHECK(count_calls(separate.log, "conv2d_maxpool_forward") == 1);     // pool2 only
    CHECK(count_calls(separate.log, "conv2d_maxpool_relu_backward") == 1);
    CHECK(count_calls(separate.log, "maxpool_backward") == 1);
    CHECK(count_calls(fused.log, "maxpool_forward") == 0);
  }
}

TEST_CASE("conv-pool fusion: a frozen ReLU convolution still gets its ReLU backward",
          "[engine][cpu]") {
  // conv2 frozen: its ReLU backward is fused into pool2 (conv1 needs the gradient through
  // it), with no bias gradient.
  const Gradients fused = gradients(network(false, true), {"conv2"});
  const Gradients separate = gradients(network(true, true), {"conv2"});
  CHECK(fused.grads == separate.grads);
  CHECK(max_relative_error(fused.bias_grads, separate.bias_grads) < 1e-6);
  CHECK(count_calls(fused.log, "conv2d_maxpool_relu_backward") == 2);
}

TEST_CASE("conv-pool fusion: a ReLU convolution whose output fans out keeps its own backward",
          "[engine][cpu][graph]") {
  const Gradients graph = gradients(fan_out_network(false));
  const Gradients separate = gradients(fan_out_network(true));
  CHECK(graph.grads == separate.grads);
  CHECK(graph.bias_grads == separate.bias_grads);                      // pool2's fused in both
  CHECK(count_calls(graph.log, "conv2d_maxpool_forward") == 1);        // pool2 only
  CHECK(count_calls(graph.log, "conv2d_maxpool_relu_backward") == 1);  // pool2 only
  CHECK(count_calls(graph.log, "maxpool_backward") == 1);              // max1
  CHECK(count_calls(graph.log, "bias_activation_backward") == 1);      // conv1's own
}

TEST_CASE("cpu maxpool_relu_backward: equals the pool's backward then the ReLU's, bit for bit",
          "[cpu]") {
  for (const PoolShape s : {PoolShape{.n = 3, .c = 4, .h = 10, .w = 10},
                            PoolShape{.n = 2, .c = 3, .h = 9, .w = 9, .size = 3, .stride = 2}}) {
    std::vector<float> x(s.input_elements());
    const std::vector<double> r = test::random_values(x.size(), 7);
    for (size_t i = 0; i < x.size(); ++i) x[i] = r[i] > 0 ? static_cast<float>(r[i]) : 0.0f;
    std::vector<float> y(s.output_elements()), dy(y.size());
    const std::vector<double> g = test::random_values(dy.size(), 8);
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = static_cast<float>(g[i]);
    std::vector<int32_t> argmax(y.size());
    cpu::maxpool_forward(2, s, x.data(), y.data(), argmax.data());
    std::vector<float> dx(x.size()), db(s.c), fused_dx(x.size()), fused_db(s.c);
    cpu::maxpool_backward(2, s, dy.data(), argmax.data(), dx.data());
    cpu::bias_activation_backward(2, Activation::relu, x.data(), dx.data(), dx.data(), db.data(),
                                  s.n, s.c, s.h * s.w);
    cpu::maxpool_relu_backward(2, s, dy.data(), argmax.data(), y.data(), fused_dx.data(),
                               fused_db.data());
    CHECK(fused_dx == dx);
    CHECK(fused_db == db);
  }
}

// The fused ops against the ops they replace, under both algorithms, on shapes that take
// both of the CPU's GEMM layouts (per-sample planes from 256 output pixels, chunk rows below),
// several chunks and groups (a small chunk budget), a window that leaves rows unused and one that
// overlaps.
template <typename T>
void check_fused_ops(const ConvShape& s, const PoolShape& pool, bool bias, cpu::ConvPolicy policy) {
  auto values = [](size_t n, uint64_t seed) {
    const std::vector<double> r = test::random_values(n, seed);
    return std::vector<T>(r.begin(), r.end());
  };
  const std::vector<T> x = values(s.input_elements(), 1), w = values(s.weight_elements(), 2),
                       b = values(s.k, 3), dy = values(pool.output_elements(), 4);
  const size_t conv_out = s.output_elements(), pooled = pool.output_elements();
  cpu::ConvWorkspace ws(2, size_t{64} << 10, policy);
  cpu::conv2d_prepare<T>(ws, s);
  // Unfused: the convolution, the pool, the pool's and ReLU's backward, the convolution's.
  std::vector<T> y(conv_out), py(pooled), conv_dy(conv_out), dx(x.size()), dw(w.size()), db(s.k);
  std::vector<int32_t> argmax(pooled);
  cpu::conv2d_forward(ws, s, x.data(), w.data(), bias ? b.data() : nullptr, y.data(),
                      Activation::relu);
  cpu::maxpool_forward(2, pool, y.data(), py.data(), argmax.data());
  cpu::maxpool_relu_backward(2, pool, dy.data(), argmax.data(), py.data(), conv_dy.data(),
                             db.data());
  cpu::conv2d_backward_filter(ws, s, x.data(), conv_dy.data(), dw.data());
  cpu::conv2d_backward_data(ws, s, conv_dy.data(), w.data(), dx.data());
  // Fused.
  std::vector<T> scratch(conv_out, T(13)), fused_py(pooled), fused_dx(x.size()), fused_dw(w.size()),
      fused_db(s.k);
  std::vector<int32_t> fused_argmax(pooled);
  cpu::conv2d_maxpool_forward(ws, s, pool, x.data(), w.data(), bias ? b.data() : nullptr,
                              Activation::relu, scratch.data(), fused_py.data(),
                              fused_argmax.data());
  // Where the pool leaves rows or columns (13x13 in, 11x11 out, 2x2 windows: 10x10 read), only
  // those it reads are computed: a narrower GEMM, which OpenBLAS may round differently. A
  // first layer in registers sums its taps in one FMA chain, as OpenBLAS's AVX-512 kernels do
  // but not its AVX2 ones (exact against that chain: the test below).
  const bool cropped = s.pad == 0 && ((pool.out_h() - 1) * pool.stride + pool.size < s.out_h() ||
                                      (pool.out_w() - 1) * pool.stride + pool.size < s.out_w());
  const bool direct = std::is_same_v<T, float> && policy == cpu::ConvPolicy::gemm &&
                      cpu::conv_pool_direct_fits(s, pool, Activation::relu);
  if (!cropped && !direct)
    CHECK(fused_py == py);
  else
    CHECK(max_relative_error(fused_py, py) < (sizeof(T) == 8 ? 1e-14 : 1e-6));
  CHECK(fused_argmax == argmax);
  cpu::conv2d_maxpool_relu_backward(ws, s, pool, x.data(), w.data(), dy.data(), fused_argmax.data(),
                                    fused_py.data(), scratch.data(), fused_dx.data(),
                                    fused_dw.data(), fused_db.data());
  // The same sums, but the GEMMs may group them differently (a chunk-wide GEMM where the
  // unfused op runs one per sample) and the bias sums the pooled values: fp32 rounding.
  const double tolerance = sizeof(T) == 8 ? 1e-12 : 2e-5;
  CHECK(max_relative_error(fused_dx, dx) < tolerance);
  CHECK(max_relative_error(fused_dw, dw) < tolerance);
  CHECK(max_relative_error(fused_db, db) < tolerance);
  // Any of the gradients may be left out, and the rest stay as they were.
  std::vector<T> only_dx(x.size());
  cpu::conv2d_maxpool_relu_backward(ws, s, pool, x.data(), w.data(), dy.data(), fused_argmax.data(),
                                    fused_py.data(), scratch.data(), only_dx.data(),
                                    static_cast<T*>(nullptr), static_cast<T*>(nullptr));
  CHECK(only_dx == fused_dx);
  // A first layer's: no data gradient (conv_pool_direct's filter gradient where it fits).
  std::vector<T> first_dw(w.size(), T(7)), first_db(s.k);
  cpu::conv2d_maxpool_relu_backward(ws, s, pool, x.data(), w.data(), dy.data(), fused_argmax.data(),
                                    fused_py.data(), scratch.data(), static_cast<T*>(nullptr),
                                    first_dw.data(), first_db.data());
  CHECK(max_relative_error(first_dw, dw) < tolerance);
  CHECK(first_db == fused_db);
}

TEST_CASE("cpu conv2d_maxpool ops: equal the convolution and pool ops they fuse", "[cpu]") {
  struct Case {
    ConvShape conv;
    int size, stride;
  };
  const Case cases[] = {
      {{.n = 5, .c = 1, .h = 28, .w = 28, .k = 6, .r = 3, .s = 3}, 2, 2},  // 676 pixels
      {{.n = 7, .c = 8, .h = 13, .w = 13, .k = 9, .r = 3, .s = 3}, 2, 2},  // odd: unused row
      {{.n = 4, .c = 3, .h = 10, .w = 9, .k = 5, .r = 3, .s = 3, .pad = 1}, 3, 1},  // overlap
      {{.n = 3, .c = 2, .h = 12, .w = 13, .k = 4, .r = 3, .s = 3}, 3, 3},  // 10x11: 9x9 read
  };
  for (const Case& c : cases)
    for (const bool bias : {true, false}) {
      const PoolShape pool{c.conv.n, c.conv.k, c.conv.out_h(), c.conv.out_w(), c.size, c.stride};
      INFO("conv " << c.conv.c << "x" << c.conv.h << "x" << c.conv.w << " k=" << c.conv.k
                   << " pool " << c.size << "/" << c.stride << " bias " << bias);
      // Winograd's tiles are not whole planes: the fused ops run the two ops in turn there.
      for (const cpu::ConvPolicy policy : {cpu::ConvPolicy::gemm, cpu::ConvPolicy::winograd}) {
        CAPTURE(cpu::conv_policy_name(policy));
        check_fused_ops<float>(c.conv, pool, bias, policy);
        check_fused_ops<double>(c.conv, pool, bias, policy);
      }
    }
}

// conv_pool_direct against plain loops of the same arithmetic: each output an FMA chain over
// the taps in order from zero, plus the bias, the activation, then max_plane's first maximum;
// and its filter gradient.
TEST_CASE("cpu conv_pool_direct: a first layer's convolution and pool, bit for bit", "[cpu]") {
  struct Case {
    int h, w, k;
  };
  // The seed CNN's conv1; odd outputs (a row and a column the pool leaves); the widest row
  // (32); a small one.
  for (const Case c : {Case{28, 28, 32}, Case{27, 29, 7}, Case{9, 32, 3}, Case{4, 5, 1}})
    for (const Activation act : {Activation::relu, Activation::none})
      for (const bool bias : {true, false}) {
        const ConvShape s{.n = 3, .c = 1, .h = c.h, .w = c.w, .k = c.k, .r = 3, .s = 3};
        const PoolShape pool{s.n, s.k, s.out_h(), s.out_w(), 2, 2};
        INFO("input " << c.h << "x" << c.w << " k=" << c.k << " relu " << (act == Activation::relu)
                      << " bias " << bias);
        if (!cpu::conv_pool_direct_fits(s, pool, act)) {
          WARN("conv_pool_direct not built (no AVX-512): nothing to check");
          return;
        }
        auto values = [](size_t n, uint64_t seed) {
          const std::vector<double> r = test::random_values(n, seed);
          return std::vector<float>(r.begin(), r.end());
        };
        std::vector<float> x = values(s.input_elements(), 1), w = values(s.weight_elements(), 2),
                           b = values(s.k, 3);
        x[5] = 0.0f;  // ties: a window of zeros after the ReLU keeps its first position
        const int ow = s.out_w(), ph = pool.out_h(), pw = pool.out_w();
        std::vector<float> want_y(pool.output_elements());
        std::vector<int32_t> want_at(want_y.size());
        for (int j = 0; j < s.n; ++j)
          for (int k = 0; k < s.k; ++k)
            for (int oy = 0; oy < ph; ++oy)
              for (int ox = 0; ox < pw; ++ox) {
                float best = 0;
                int32_t best_at = -1;
                for (int dy = 0; dy < 2; ++dy)
                  for (int dx = 0; dx < 2; ++dx) {
                    const int y = 2 * oy + dy, xx = 2 * ox + dx;
                    float sum = 0;
                    for (int t = 0; t < 9; ++t)
                      sum =
                          std::fma(w[k * 9 + t], x[(j * s.h + y + t / 3) * s.w + xx + t % 3], sum);
                    sum += bias ? b[k] : 0.0f;
                    if (act == Activation::relu) sum = sum > 0 ? sum : 0.0f;
                    if (best_at < 0 || sum > best) {
                      best = sum;
                      best_at = y * ow + xx;
                    }
                  }
                const size_t at = ((static_cast<size_t>(j) * s.k + k) * ph + oy) * pw + ox;
                want_y[at] = best;
                want_at[at] = best_at;
              }
        std::vector<float> y(want_y.size(), -7.0f);
        std::vector<int32_t> at(want_y.size(), -7);
        // Samples 1 and 2 only: the first is left as it was.
        cpu::conv_pool_direct(s, pool, x.data(), w.data(), bias ? b.data() : nullptr, act, 1, 2,
                              y.data(), at.data());
        const size_t per_sample = want_y.size() / s.n;
        CHECK(std::all_of(y.begin(), y.begin() + per_sample, [](float v) { return v == -7.0f; }));
        std::fill_n(want_y.begin(), per_sample, -7.0f);
        std::fill_n(want_at.begin(), per_sample, -7);
        CHECK(y == want_y);
        CHECK(at == want_at);
        if (act != Activation::relu) continue;
        // The filter gradient through that ReLU and pool: per channel and tap, one float lane
        // per pooled column, each an FMA chain over the samples and pooled rows, the lanes
        // then added in order; beta 1 adds the samples' gradient to the sum.
        const std::vector<float> dy = values(want_y.size(), 4);
        std::vector<float> want_dw(w.size()), want_fresh(w.size());
        for (int k = 0; k < s.k; ++k)
          for (int t = 0; t < 9; ++t) {
            float lane[16] = {};
            for (int j = 1; j < 3; ++j)
              for (int oy = 0; oy < ph; ++oy)
                for (int ox = 0; ox < pw; ++ox) {
                  const size_t o = ((static_cast<size_t>(j) * s.k + k) * ph + oy) * pw + ox;
                  if (!(y[o] > 0)) continue;
                  const int row = at[o] / ow + t / 3, col = at[o] % ow + t % 3;
                  lane[ox] = std::fma(dy[o], x[(j * s.h + row) * s.w + col], lane[ox]);
                }
            float total = 0;
            for (const float l : lane) total += l;
            want_fresh[k * 9 + t] = total;
            want_dw[k * 9 + t] = 0.5f + total;
          }
        std::vector<float> dw(w.size(), 0.5f), lanes(cpu::conv_pool_direct_lanes(s));
        cpu::conv_pool_direct_filter_gradient(s, pool, x.data(), dy.data(), at.data(), y.data(), 1,
                                              2, 1.0f, dw.data(), lanes.data());
        CHECK(dw == want_dw);
        std::vector<float> fresh(w.size(), std::nanf(""));  // beta 0: the old sum is not read
        cpu::conv_pool_direct_filter_gradient(s, pool, x.data(), dy.data(), at.data(), y.data(), 1,
                                              2, 0.0f, fresh.data(), lanes.data());
        CHECK(fresh == want_fresh);
      }
}

TEST_CASE("conv-pool fusion: evaluation gives the training forward's output", "[engine][cpu]") {
  const Model m = network(false, true);
  auto be = make_cpu_backend(2);
  Parameters p(m, *be);
  p.initialize(3);
  Executor training(m, p, *be, 6, true), evaluation(m, p, *be, 6, false);
  std::vector<float> input(training.input().numel());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : input) v = u(rng);
  std::vector<float> outputs[2];
  int at = 0;
  for (Executor* e : {&training, &evaluation}) {
    be->upload(e->input().data, input.data(), input.size() * sizeof(float));
    e->forward(e == &training);
    CHECK_FALSE(e->node_output_kept(m.find("conv1")));
    CHECK(e->node_output_kept(m.find("pool1")));
    outputs[at].resize(e->output().numel());
    be->download(outputs[at++].data(), e->output().data, outputs[0].size() * sizeof(float));
  }
  CHECK(outputs[0] == outputs[1]);
}

}  // namespace
}  // namespace plinth
