// The executor's backward fusion: a max pool that alone consumes a ReLU convolution's
// output takes that ReLU's backward and the convolution's bias gradient into one op
// (maxpool_relu_backward). On the CPU the fused gradients are the unfused ones bit for bit:
// the same network with the ReLU as a layer of its own (which nothing fuses) gives them.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "cpu_fallback/bias.h"
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

struct Gradients {
  std::vector<float> grads;
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
  return {p.download(p.grads()), be.log()};
}

size_t count_calls(const std::vector<std::string>& log, const std::string& op) {
  size_t n = 0;
  for (const std::string& line : log) n += line.rfind(op + "(", 0) == 0;
  return n;
}

TEST_CASE("backward fusion: a ReLU convolution's pool takes its backward, bit for bit",
          "[engine][cpu]") {
  for (const bool bias : {true, false}) {
    INFO("conv1 bias " << bias);
    const Gradients fused = gradients(network(false, bias));
    const Gradients separate = gradients(network(true, bias));
    CHECK(fused.grads == separate.grads);
    CHECK(count_calls(fused.log, "maxpool_relu_backward") == 2);     // both pools
    CHECK(count_calls(separate.log, "maxpool_relu_backward") == 1);  // pool2 only
    CHECK(count_calls(separate.log, "maxpool_backward") == 1);
  }
}

TEST_CASE("backward fusion: a frozen ReLU convolution still gets its ReLU backward",
          "[engine][cpu]") {
  // conv2 frozen: its ReLU backward is fused into pool2 (conv1 needs the gradient through
  // it), with no bias gradient.
  const Gradients fused = gradients(network(false, true), {"conv2"});
  const Gradients separate = gradients(network(true, true), {"conv2"});
  CHECK(fused.grads == separate.grads);
  CHECK(count_calls(fused.log, "maxpool_relu_backward") == 2);
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

}  // namespace
}  // namespace plinth
