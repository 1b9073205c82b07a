#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"

namespace plinth {

namespace {

class ActivationLayer final : public Layer {
 public:
  ActivationLayer(std::string name, Activation act) : Layer(std::move(name)), act_(act) {}
  std::string type() const override { return "activation"; }
  nlohmann::json to_json() const override {
    return {{"type", "activation"}, {"name", name()}, {"activation", activation_name(act_)}};
  }
  Shape output_shape(const Shape& in) const override { return in; }
  TorchModule torch_module(const Shape&) const override {
    return {.activation = torch_activation(act_)};
  }
  std::vector<OnnxNode> onnx_nodes(const Shape&, const std::string& x,
                                   const std::string& y) const override {
    return with_onnx_activation({"Identity", {x}, {}}, act_, name(), y);
  }
  void forward(LayerIO& io) override {
    io.backend.activation_forward(act_, io.x.data, io.y.data, io.x.numel());
  }
  void backward(LayerIO& io) override {
    if (io.dx.data)
      io.backend.activation_backward(act_, io.y.data, io.dy.data, io.dx.data, io.dy.numel());
  }

 private:
  Activation act_;
};

std::unique_ptr<Layer> make_activation(const JsonFields& f, const std::string& name) {
  const std::string act = f.str("activation");
  if (act == "softmax")
    fail(
        "{}.activation: softmax is supported as the activation of the last dense layer "
        "(fused with categorical_crossentropy), not as a separate layer",
        f.where());
  return std::make_unique<ActivationLayer>(name, parse_activation(act, f.where()));
}

}  // namespace

const LayerType& activation_layer_type() {
  static const LayerType type{
      .name = "activation",
      .summary = "an elementwise activation on its own",
      .name_prefix = "act",
      .fields = {{"activation", "", "`relu`, `sigmoid`, `tanh` or `linear`", "sigmoid"}},
      .make = make_activation,
  };
  return type;
}

Activation parse_activation(const std::string& name, const std::string& where) {
  if (name == "none" || name == "linear") return Activation::none;
  if (name == "relu") return Activation::relu;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "softmax")
    fail("{}.activation: softmax is only supported on the last dense layer", where);
  fail("{}.activation: unknown activation {} (expected relu, sigmoid, tanh, linear)", where,
       quoted_input(name));
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::relu:
      return "relu";
    case Activation::sigmoid:
      return "sigmoid";
    case Activation::tanh:
      return "tanh";
    default:
      return "linear";
  }
}

std::vector<OnnxNode> with_onnx_activation(OnnxNode core, Activation act, const std::string& layer,
                                           const std::string& y) {
  // ONNX's operators share torch.nn's names, but for ReLU's capitals.
  const std::string op = act == Activation::relu ? "Relu" : torch_activation(act);
  if (op.empty()) {
    core.outputs = {y};
    return {core};
  }
  core.outputs = {layer + ".linear"};
  return {core, {op, {layer + ".linear"}, {y}}};
}

const char* torch_activation(Activation act) {
  switch (act) {
    case Activation::relu:
      return "ReLU";
    case Activation::sigmoid:
      return "Sigmoid";
    case Activation::tanh:
      return "Tanh";
    default:
      return "";
  }
}

}  // namespace plinth
