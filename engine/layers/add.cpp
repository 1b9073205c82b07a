#include <string>

#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"

namespace plinth {

namespace {

// y = act(x0 + x1 + ...): the merge of a residual connection, with the activation that
// follows it fused. The inputs are added in order, as PyTorch's x0 + x1 + ... does.
class Add final : public Layer {
 public:
  Add(std::string name, Activation act) : Layer(std::move(name)), act_(act) {}
  std::string type() const override { return "add"; }
  nlohmann::json to_json() const override {
    return {{"type", "add"}, {"name", name()}, {"activation", activation_name(act_)}};
  }
  Shape output_shape(InputShapes in) const override {
    for (size_t k = 1; k < in.size(); ++k)
      if (!(in[k] == in[0]))
        fail("layer {}: add needs inputs of one shape, but input {} is {} and input 1 is {}",
             name(), k + 1, in[k].str(), in[0].str());
    return in[0];
  }
  TorchModule torch_module(InputShapes) const override {
    return {.activation = torch_activation(act_), .merge = "sum"};
  }
  // ONNX's Add takes two inputs: a chain of them, summing in the order forward() does.
  std::vector<OnnxNode> onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const override {
    std::vector<OnnxNode> nodes;
    std::string sum = xs[0];
    for (size_t k = 1; k + 1 < xs.size(); ++k) {
      nodes.push_back({"Add", {sum, xs[k]}, {name() + ".sum" + std::to_string(k)}});
      sum = nodes.back().outputs[0];
    }
    for (OnnxNode& node : with_onnx_activation({"Add", {sum, xs.back()}, {}}, act_, name(), y))
      nodes.push_back(std::move(node));
    return nodes;
  }

  void forward(LayerIO& io) override {
    const size_t n = io.y.numel();
    const size_t last = io.xs.size() - 1;
    io.backend.add_forward(io.xs[0].data, io.xs[1].data, io.y.data, n,
                           last == 1 ? act_ : Activation::none);
    for (size_t k = 2; k <= last; ++k)
      io.backend.add_forward(io.y.data, io.xs[k].data, io.y.data, n,
                             k == last ? act_ : Activation::none);
  }
  // Every input's gradient is dz = dy * act'(y): computed into the first that is needed,
  // copied to the others.
  void backward(LayerIO& io) override {
    const size_t n = io.dy.numel();
    const float* dz = nullptr;
    for (const Tensor& dx : io.dxs) {
      if (!dx.data) continue;
      if (dz)
        io.backend.copy(dx.data, dz, n * sizeof(float));
      else if (act_ == Activation::none)
        io.backend.copy(dx.data, io.dy.data, n * sizeof(float));
      else
        io.backend.activation_backward(act_, io.y.data, io.dy.data, dx.data, n);
      dz = dz ? dz : dx.data;
    }
  }

 private:
  Activation act_;
};

std::unique_ptr<Layer> make_add(const JsonFields& f, const std::string& name) {
  return std::make_unique<Add>(name, parse_activation(f.str("activation", "none"), f.where()));
}

}  // namespace

const LayerType& add_layer_type() {
  static const LayerType type{
      .name = "add",
      .summary =
          "the elementwise sum of its inputs (all of one shape), activation fused: the "
          "merge of a residual block",
      .name_prefix = "add",
      .min_inputs = 2,
      .max_inputs = kAnyNumberOfInputs,
      .fields = {{"activation", "\"linear\"", "`relu`, `sigmoid`, `tanh` or `linear`", "relu"}},
      .make = make_add,
  };
  return type;
}

}  // namespace plinth
