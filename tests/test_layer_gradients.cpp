// Every registered layer through the gradient checker (tests/layer_gradcheck.h): one
// table entry per layer type, each with the configurations that exercise its code paths.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/layer_gradcheck.h"

namespace plinth {
namespace {

using test::LayerGradientCase;
using Json = nlohmann::json;

const Shape kImages{2, 3, 6, 6};
const Shape kFeatures{2, 20};
const Shape kBatch{6, 4};  // batchnorm1d: statistics over 6 samples

// A type missing here fails "layers: every registered type passes the gradient check".
const std::map<std::string, std::vector<LayerGradientCase>>& gradient_cases() {
  static const std::map<std::string, std::vector<LayerGradientCase>> cases{
      {"conv2d",
       {{{{"type", "conv2d"}, {"filters", 4}, {"kernel", 3}, {"activation", "tanh"}}, {kImages}},
        {{{"type", "conv2d"},
          {"filters", 4},
          {"kernel", 3},
          {"stride", 2},
          {"padding", 1},
          {"activation", "relu"}},
         {kImages}},
        {{{"type", "conv2d"},
          {"filters", 5},
          {"kernel", 3},
          {"padding", "same"},
          {"activation", "sigmoid"},
          {"use_bias", false}},
         {kImages}},
        {{{"type", "conv2d"}, {"filters", 2}, {"kernel", 1}}, {kImages}},
        // a ResNet's projection shortcut: strided 1x1, no bias
        {{{"type", "conv2d"}, {"filters", 5}, {"kernel", 1}, {"stride", 2}, {"use_bias", false}},
         {kImages}}}},
      {"maxpool2d",
       {{{{"type", "maxpool2d"}}, {kImages}},
        {{{"type", "maxpool2d"}, {"size", 3}, {"stride", 2}}, {kImages}},    // overlapping windows
        {{{"type", "maxpool2d"}, {"size", 2}, {"stride", 3}}, {kImages}}}},  // gaps between them
      {"avgpool2d",
       {{{{"type", "avgpool2d"}}, {kImages}},
        {{{"type", "avgpool2d"}, {"size", 3}, {"stride", 2}}, {kImages}},
        {{{"type", "avgpool2d"}, {"size", 2}, {"stride", 3}}, {kImages}}}},
      {"global_avgpool", {{{{"type", "global_avgpool"}}, {kImages}}}},
      {"batchnorm2d",
       {{{{"type", "batchnorm2d"}}, {kImages}},
        {{{"type", "batchnorm2d"}, {"activation", "relu"}}, {kImages}},
        {{{"type", "batchnorm2d"}, {"activation", "tanh"}, {"eps", 0.1}}, {kImages}},
        {{{"type", "batchnorm2d"}, {"activation", "relu"}}, {kImages}, false},  // evaluation
        {{{"type", "batchnorm2d"}}, {kImages}, false}}},
      {"batchnorm1d",
       {{{{"type", "batchnorm1d"}}, {kBatch}},
        {{{"type", "batchnorm1d"}, {"activation", "sigmoid"}}, {kBatch}},
        {{{"type", "batchnorm1d"}, {"activation", "relu"}}, {kBatch}, false}}},
      {"dense",
       {{{{"type", "dense"}, {"units", 7}, {"activation", "tanh"}}, {kFeatures}},
        {{{"type", "dense"}, {"units", 7}, {"activation", "relu"}}, {kFeatures}},
        {{{"type", "dense"}, {"units", 7}, {"activation", "sigmoid"}, {"use_bias", false}},
         {kFeatures}},
        {{{"type", "dense"}, {"units", 5}, {"activation", "softmax"}}, {kFeatures}}}},  // logits
      {"flatten", {{{{"type", "flatten"}}, {kImages}}}},
      {"activation",
       {{{{"type", "activation"}, {"activation", "relu"}}, {kImages}},
        {{{"type", "activation"}, {"activation", "sigmoid"}}, {kFeatures}},
        {{{"type", "activation"}, {"activation", "tanh"}}, {kImages}},
        {{{"type", "activation"}, {"activation", "linear"}}, {kFeatures}}}},
      {"dropout",
       {{{{"type", "dropout"}, {"rate", 0.5}}, {kImages}},
        {{{"type", "dropout"}, {"rate", 0.0}}, {kFeatures}}}},
      {"add",
       {{{{"type", "add"}}, {kImages, kImages}},
        {{{"type", "add"}, {"activation", "relu"}}, {kImages, kImages, kImages}},
        {{{"type", "add"}, {"activation", "tanh"}}, {kFeatures, kFeatures}}}},
      {"concat",
       {{{{"type", "concat"}}, {kImages, Shape{2, 5, 6, 6}}},
        {{{"type", "concat"}}, {kFeatures, Shape{2, 3}, kFeatures}}}},
  };
  return cases;
}

TEST_CASE("layers: every registered type passes the gradient check", "[layers][cpu]") {
  for (const LayerType* type : layer_types()) {
    INFO("layer type " << type->name << " (gradient_cases() lists its cases)");
    const auto it = gradient_cases().find(type->name);
    CHECK(it != gradient_cases().end());
    if (it == gradient_cases().end()) continue;
    uint64_t seed = 1;
    for (const LayerGradientCase& c : it->second) {
      CHECK(c.layer["type"] == type->name);
      test::check_layer_gradients(c, seed += 1000);
    }
  }
}

// A correct layer whose backward then spoils one gradient on purpose, to show that the
// checker sees it.
class Spoiled final : public Layer {
 public:
  enum class What { one_weight, input_scale };
  Spoiled(std::unique_ptr<Layer> inner, What what)
      : Layer(inner->name()), inner_(std::move(inner)), what_(what) {}
  std::string type() const override { return inner_->type(); }
  Json to_json() const override { return inner_->to_json(); }
  Shape output_shape(InputShapes in) const override { return inner_->output_shape(in); }
  std::vector<ParamSpec> param_specs(InputShapes in) const override {
    return inner_->param_specs(in);
  }
  TorchModule torch_module(InputShapes in) const override { return inner_->torch_module(in); }
  std::vector<OnnxNode> onnx_nodes(InputShapes in, OnnxNames xs,
                                   const std::string& y) const override {
    return inner_->onnx_nodes(in, xs, y);
  }
  void forward(LayerIO& io) override { inner_->forward(io); }
  void backward(LayerIO& io) override {
    inner_->backward(io);
    if (what_ == What::one_weight && io.grads.empty()) return;
    const Tensor& t = what_ == What::one_weight ? io.grads[0] : io.dx();
    if (!t.data) return;
    std::vector<float> v(t.numel());
    io.backend.download(v.data(), t.data, v.size() * sizeof(float));
    double sum_squares = 0;
    for (float e : v) sum_squares += static_cast<double>(e) * e;
    if (what_ == What::one_weight)
      v[5] += static_cast<float>(std::sqrt(sum_squares / v.size()));  // a typical element
    else
      for (float& e : v) e *= 1.01f;
    io.backend.upload(t.data, v.data(), v.size() * sizeof(float));
  }

 private:
  std::unique_ptr<Layer> inner_;
  What what_;
};

TEST_CASE("layers: the gradient check sees one wrong weight gradient, or dx 1% off",
          "[layers][cpu]") {
  const Json conv{{"type", "conv2d"}, {"filters", 4}, {"kernel", 3}, {"activation", "tanh"}};
  for (const auto what : {Spoiled::What::one_weight, Spoiled::What::input_scale}) {
    Spoiled layer(layer_from_json(conv, "spoiled", "conv"), what);
    const auto errors = test::layer_gradient_errors(layer, {&kImages, 1}, 7);
    REQUIRE(errors.size() == 3);  // input, weight, bias
    const size_t spoiled = what == Spoiled::What::one_weight ? 1 : 0;
    for (size_t k = 0; k < errors.size(); ++k) {
      INFO(errors[k].tensor << ": error " << errors[k].error);
      if (k == spoiled)
        CHECK(errors[k].error > 3 * test::layer_gradcheck::kTolerance);
      else
        CHECK(errors[k].error <= test::layer_gradcheck::kTolerance);
    }
  }
}

}  // namespace
}  // namespace plinth
