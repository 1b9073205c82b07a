#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"

namespace plinth {

namespace {

// y = act(x W^T + b) with W stored [out, in] as in PyTorch's nn.Linear.
class Dense final : public Layer {
 public:
  Dense(std::string name, int units, Activation act, bool softmax, bool bias)
      : Layer(std::move(name)), units_(units), act_(act), softmax_(softmax), bias_(bias) {}

  std::string type() const override { return "dense"; }
  nlohmann::json to_json() const override {
    return {{"type", "dense"},
            {"name", name()},
            {"units", units_},
            {"activation", softmax_ ? "softmax" : activation_name(act_)},
            {"use_bias", bias_}};
  }
  bool softmax_output() const override { return softmax_; }

  Shape output_shape(InputShapes in) const override {
    if (in[0].rank != 2)
      fail("layer {}: dense needs an [N, features] input (add a flatten layer), got {}", name(),
           in[0].str());
    return {in[0][0], units_};
  }
  std::vector<ParamSpec> param_specs(InputShapes in) const override {
    const int features = in[0][1];
    const float limit =
        static_cast<float>(std::sqrt(6.0 / (static_cast<double>(features) + units_)));
    std::vector<ParamSpec> p{{"weight", {units_, features}, limit}};
    if (bias_) p.push_back({"bias", {units_}, 0.0f});
    return p;
  }
  TorchModule torch_module(InputShapes in) const override {
    return {"Linear", {in[0][1], units_}, {{"bias", bias_}}, torch_activation(act_)};
  }
  // Gemm computes x * weight^T (+ bias) with the weight in PyTorch's [out, in] layout.
  std::vector<OnnxNode> onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const override {
    OnnxNode gemm{"Gemm", {xs[0], name() + ".weight"}, {}, {{"transB", 1}}};
    if (bias_) gemm.inputs.push_back(name() + ".bias");
    return with_onnx_activation(gemm, act_, name(), y);
  }

  void forward(LayerIO& io) override {
    const int n = io.x().shape[0], in = io.x().shape[1];
    io.backend.gemm(false, true, n, units_, in, 1.0f, io.x().data, in, io.params[0].data, in, 0.0f,
                    io.y.data, units_);
    if (bias_ || act_ != Activation::none)
      io.backend.bias_activation_forward(io.y.data, bias_ ? io.params[1].data : nullptr, n, units_,
                                         1, act_);
  }
  void backward(LayerIO& io) override {
    Backend& be = io.backend;
    const int n = io.x().shape[0], in = io.x().shape[1];
    if (act_ != Activation::none)
      be.activation_backward(act_, io.y.data, io.dy.data, io.dy.data, io.dy.numel());
    if (!io.grads.empty()) {
      be.gemm(true, false, units_, in, n, 1.0f, io.dy.data, units_, io.x().data, in, 0.0f,
              io.grads[0].data, in);
      if (bias_) be.bias_backward(io.dy.data, io.grads[1].data, n, units_, 1);
    }
    if (io.dx().data)
      be.gemm(false, false, n, in, units_, 1.0f, io.dy.data, units_, io.params[0].data, in, 0.0f,
              io.dx().data, in);
  }

 private:
  int units_;
  Activation act_;
  bool softmax_, bias_;
};

std::unique_ptr<Layer> make_dense(const JsonFields& f, const std::string& name) {
  const std::string act = f.str("activation", "none");
  const bool softmax = act == "softmax";
  return std::make_unique<Dense>(name, f.positive_int("units"),
                                 softmax ? Activation::none : parse_activation(act, f.where()),
                                 softmax, f.boolean("use_bias", true));
}

}  // namespace

const LayerType& dense_layer_type() {
  static const LayerType type{
      .name = "dense",
      .summary = "fully connected, on [N, features] (after a flatten), bias and activation fused",
      .name_prefix = "fc",
      .fields = {{"units", "", "output features", 16},
                 {"activation", "\"linear\"",
                  "`relu`, `sigmoid`, `tanh`, `linear`, or `softmax` on the last layer (fused "
                  "with the loss)",
                  "tanh"},
                 {"use_bias", "true", "add a learnt bias per output feature", false}},
      .make = make_dense,
  };
  return type;
}

}  // namespace plinth
