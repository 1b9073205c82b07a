// Shapes that fit only by rounding (issue "Hostile input, round two"): out_h() =
// (h + 2 pad - r) / stride + 1 rounds a window larger than its input to one output, so a
// maxpool2d of size 29 on 28x28 images trained silently, size 1000 read outside the input
// and size 16777216 crashed. engine/op_shapes.h refuses them, with one wording, when a
// model file is read (naming the layer) and at both backends' entry points.
#include <catch2/catch.hpp>

#include <string>
#include <variant>
#include <vector>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/op_shapes.h"
#include "engine_fixtures.h"
#include "tests/op_harness.h"

namespace plinth {
namespace {

struct ImpossibleLayer {
  const char* input;  // the model's input [c, h, w]
  const char* layer;  // named "bad"
  const char* problem;
  std::variant<ConvShape, PoolShape> shape;  // the layer's geometry at batch 1
};

PoolShape pool_on_28x28(int size) {
  return {.n = 1, .c = 1, .h = 28, .w = 28, .size = size, .stride = size};
}

const std::vector<ImpossibleLayer>& impossible_layers() {
  static const std::vector<ImpossibleLayer> cases = {
      {"[1, 28, 28]", R"({"type": "maxpool2d", "name": "bad", "size": 29})",
       "the 29x29 window does not fit the 28x28 input", pool_on_28x28(29)},
      {"[1, 28, 28]", R"({"type": "maxpool2d", "name": "bad", "size": 50})",
       "the 50x50 window does not fit the 28x28 input", pool_on_28x28(50)},
      {"[1, 28, 28]", R"({"type": "maxpool2d", "name": "bad", "size": 1000})",
       "the 1000x1000 window does not fit the 28x28 input", pool_on_28x28(1000)},
      {"[1, 28, 28]", R"({"type": "maxpool2d", "name": "bad", "size": 16777216})",
       "the 16777216x16777216 window does not fit the 28x28 input", pool_on_28x28(16777216)},
      // a kernel larger than the padded input, with a stride that rounds to one output
      {"[1, 28, 28]",
       R"({"type": "conv2d", "name": "bad", "filters": 4, "kernel": 31, "stride": 31,)"
       R"( "padding": 1})",
       "the 31x31 kernel does not fit the 28x28 input padded to 30x30",
       ConvShape{
           .n = 1, .c = 1, .h = 28, .w = 28, .k = 4, .r = 31, .s = 31, .stride = 31, .pad = 1}},
      {"[1, 28, 28]",
       R"({"type": "conv2d", "name": "bad", "filters": 4, "kernel": 40, "stride": 40})",
       "the 40x40 kernel does not fit the 28x28 input",
       ConvShape{.n = 1, .c = 1, .h = 28, .w = 28, .k = 4, .r = 40, .s = 40, .stride = 40}},
      // outputs at the border would see only padding
      {"[1, 28, 28]",
       R"({"type": "conv2d", "name": "bad", "filters": 4, "kernel": 3, "padding": 3})",
       "padding 3 must be smaller than the 3x3 kernel",
       ConvShape{.n = 1, .c = 1, .h = 28, .w = 28, .k = 4, .r = 3, .s = 3, .pad = 3}},
      // channel counts whose products overflow int: c * r * s taps, k * c * r * s weights
      {"[65536, 1, 1]",
       R"({"type": "conv2d", "name": "bad", "filters": 1, "kernel": 255, "padding": 127})",
       "the weights have more than 2^31 - 1 elements",
       ConvShape{.n = 1, .c = 65536, .h = 1, .w = 1, .k = 1, .r = 255, .s = 255, .pad = 127}},
      {"[65536, 1, 1]", R"({"type": "conv2d", "name": "bad", "filters": 65536, "kernel": 1})",
       "the weights have more than 2^31 - 1 elements",
       ConvShape{.n = 1, .c = 65536, .h = 1, .w = 1, .k = 65536, .r = 1, .s = 1}},
  };
  return cases;
}

std::string model_with(const char* input, const char* layer) {
  return std::string(R"({"input": )") + input + R"(, "layers": [)" + layer +
         R"(, {"type": "flatten"}, {"type": "dense", "units": 2, "activation": "softmax"}]})";
}

// Every op that takes the shape, with null data: a refused shape must fail before any
// memory is touched.
void check_ops_refuse(Backend& backend, const ImpossibleLayer& c) {
  if (const auto* s = std::get_if<ConvShape>(&c.shape)) {
    CHECK_THROWS_WITH(backend.conv2d_prepare(*s),
                      Catch::StartsWith("conv2d_prepare: ") && Catch::Contains(c.problem));
    CHECK_THROWS_WITH(
        backend.conv2d_forward(*s, nullptr, nullptr, nullptr, nullptr, Activation::relu),
        Catch::StartsWith("conv2d_forward: ") && Catch::Contains(c.problem));
    CHECK_THROWS_WITH(backend.conv2d_backward_data(*s, nullptr, nullptr, nullptr),
                      Catch::StartsWith("conv2d_backward_data: ") && Catch::Contains(c.problem));
    CHECK_THROWS_WITH(backend.conv2d_backward_filter(*s, nullptr, nullptr, nullptr),
                      Catch::StartsWith("conv2d_backward_filter: ") && Catch::Contains(c.problem));
    const PoolShape pool{s->n, s->k, 2, 2};
    CHECK_THROWS_WITH(backend.conv2d_maxpool_forward(*s, pool, nullptr, nullptr, nullptr,
                                                     Activation::relu, nullptr, nullptr, nullptr),
                      Catch::StartsWith("conv2d_maxpool_forward: ") && Catch::Contains(c.problem));
    CHECK_THROWS_WITH(
        backend.conv2d_maxpool_relu_backward(*s, pool, nullptr, nullptr, nullptr, nullptr, nullptr,
                                             nullptr, nullptr, nullptr, nullptr),
        Catch::StartsWith("conv2d_maxpool_relu_backward: ") && Catch::Contains(c.problem));
  } else {
    const PoolShape& p = std::get<PoolShape>(c.shape);
    CHECK_THROWS_WITH(backend.maxpool_forward(p, nullptr, nullptr, nullptr),
                      Catch::StartsWith("maxpool_forward: ") && Catch::Contains(c.problem));
    CHECK_THROWS_WITH(backend.maxpool_backward(p, nullptr, nullptr, nullptr),
                      Catch::StartsWith("maxpool_backward: ") && Catch::Contains(c.problem));
  }
}

TEST_CASE(
    "op shapes: a model file with a layer that fits only by rounding fails when read, "
    "naming the layer",
    "[model][robustness]") {
  for (const ImpossibleLayer& c : impossible_layers()) {
    CAPTURE(c.input, c.layer);
    std::string error = "no error";
    try {
      test::model_from(model_with(c.input, c.layer).c_str());
    } catch (const Error& e) {
      error = e.what();
    }
    CHECK_THAT(error, Catch::StartsWith("test-model: layer bad: ") && Catch::Contains(c.problem));
    CHECK(error.find('\n') == std::string::npos);
  }
}

TEST_CASE("op shapes: the CPU backend refuses them at every op that takes the shape", "[cpu]") {
  const auto cpu = make_cpu_backend(1);
  for (const ImpossibleLayer& c : impossible_layers()) {
    CAPTURE(c.layer);
    check_ops_refuse(*cpu, c);
  }
}

TEST_CASE("op shapes: a fused convolution and pool refuse a pool of another shape", "[cpu]") {
  const auto cpu = make_cpu_backend(1);
  const ConvShape conv{.n = 2, .c = 1, .h = 8, .w = 8, .k = 4, .r = 3, .s = 3};  // out 6x6
  const PoolShape pool{.n = 2, .c = 4, .h = 7, .w = 6};
  CHECK_THROWS_WITH(cpu->conv2d_maxpool_forward(conv, pool, nullptr, nullptr, nullptr,
                                                Activation::relu, nullptr, nullptr, nullptr),
                    "conv2d_maxpool_forward: the pool's input 2x4x7x6 is not the convolution's "
                    "output 2x4x6x6");
}

TEST_CASE("op shapes: the CUDA backend refuses them at every op that takes the shape", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const auto gpu = make_cuda_backend({});
  for (const ImpossibleLayer& c : impossible_layers()) {
    CAPTURE(c.layer);
    check_ops_refuse(*gpu, c);
  }
}

TEST_CASE("op shapes: windows that fit exactly are accepted", "[model]") {
  // window = input, kernel = padded input, padding = kernel - 1, stride past the window
  for (const char* layer :
       {R"({"type": "maxpool2d", "size": 28})", R"({"type": "maxpool2d", "size": 3, "stride": 5})",
        R"({"type": "conv2d", "filters": 2, "kernel": 30, "padding": 1})",
        R"({"type": "conv2d", "filters": 2, "kernel": 3, "padding": 2})",
        R"({"type": "conv2d", "filters": 2, "kernel": 2, "stride": 5})"}) {
    CAPTURE(layer);
    CHECK_NOTHROW(test::model_from(model_with("[1, 28, 28]", layer).c_str()));
  }
  CHECK_NOTHROW(check_conv_shape({.n = 1, .c = 65536, .h = 1, .w = 1, .k = 32767, .r = 1, .s = 1},
                                 "conv2d_forward"));
  CHECK_NOTHROW(check_pool_shape({.n = 1, .c = 1, .h = 1, .w = INT32_MAX, .size = 1}, "maxpool2d"));
}

TEST_CASE("op shapes: every other impossible geometry is one line naming the caller", "[cpu]") {
  const ConvShape conv{.n = 2, .c = 3, .h = 8, .w = 8, .k = 4, .r = 3, .s = 3};
  auto conv_error = [&](auto change) {
    ConvShape s = conv;
    change(s);
    try {
      check_conv_shape(s, "layer c");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(conv_error([](ConvShape&) {}) == "no error");
  CHECK_THAT(conv_error([](ConvShape& s) { s.n = 0; }),
             Catch::StartsWith("layer c: every size must be at least 1 (input 0x3x8x8, "));
  CHECK_THAT(conv_error([](ConvShape& s) { s.k = -1; }), Catch::Contains("at least 1"));
  CHECK_THAT(conv_error([](ConvShape& s) { s.stride = 0; }),
             Catch::StartsWith("layer c: stride 0 must be at least 1"));
  CHECK_THAT(conv_error([](ConvShape& s) { s.pad = -1; }),
             Catch::StartsWith("layer c: padding -1 must not be negative"));
  CHECK_THAT(conv_error([](ConvShape& s) { s.s = 9; }),
             Catch::StartsWith("layer c: the 3x9 kernel does not fit the 8x8 input ("));
  CHECK_THAT(conv_error([](ConvShape& s) { s.pad = INT32_MAX; }),
             Catch::Contains("padding 2147483647 must be smaller than the 3x3 kernel"));
  CHECK_THAT(conv_error([](ConvShape& s) { s.c = 65536, s.h = s.w = 256; }),
             Catch::Contains("one sample's input has more than 2^31 - 1 elements"));
  CHECK_THAT(conv_error([](ConvShape& s) { s.k = 1 << 20, s.h = s.w = 66; }),
             Catch::Contains("one sample's output has more than 2^31 - 1 elements"));
  CHECK_THAT(conv_error([](ConvShape& s) { s.k = s.c = s.r = s.s = s.h = s.w = INT32_MAX; }),
             Catch::Contains("more than 2^31 - 1 elements"));

  const PoolShape pool{.n = 2, .c = 3, .h = 8, .w = 8};
  auto pool_error = [&](auto change) {
    PoolShape s = pool;
    change(s);
    try {
      check_pool_shape(s, "maxpool_forward");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(pool_error([](PoolShape&) {}) == "no error");
  CHECK_THAT(pool_error([](PoolShape& s) { s.c = 0; }),
             Catch::StartsWith("maxpool_forward: every size must be at least 1 (input 2x0x8x8, "
                               "window 2, stride 2)"));
  CHECK_THAT(pool_error([](PoolShape& s) { s.size = 0; }), Catch::Contains("at least 1"));
  CHECK_THAT(pool_error([](PoolShape& s) { s.stride = -2; }),
             Catch::StartsWith("maxpool_forward: stride -2 must be at least 1"));
  CHECK_THAT(pool_error([](PoolShape& s) { s.h = 1; }),
             Catch::StartsWith("maxpool_forward: the 2x2 window does not fit the 1x8 input"));
  CHECK_THAT(pool_error([](PoolShape& s) { s.c = 65536, s.h = s.w = 256; }),
             Catch::Contains("one sample's input has more than 2^31 - 1 elements"));
}

}  // namespace
}  // namespace plinth
