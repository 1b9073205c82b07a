#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"

namespace plinth {

namespace {

// Inverted dropout: scaled in training, identity in evaluation.
class Dropout final : public Layer {
 public:
  Dropout(std::string name, float rate) : Layer(std::move(name)), rate_(rate) {}
  std::string type() const override { return "dropout"; }
  nlohmann::json to_json() const override {
    return {{"type", "dropout"}, {"name", name()}, {"rate", rate_}};
  }
  Shape output_shape(InputShapes in) const override { return in[0]; }
  size_t scratch_bytes(InputShapes in) const override { return in[0].numel() * sizeof(float); }
  TorchModule torch_module(InputShapes) const override { return {"Dropout", {rate_}}; }
  // An exported model only infers, where dropout is the identity.
  std::vector<OnnxNode> onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const override {
    return {{"Identity", {xs[0]}, {y}}};
  }

  void forward(LayerIO& io) override {
    const size_t n = io.x().numel();
    if (io.training)
      io.backend.dropout_forward(io.x().data, io.y.data, static_cast<float*>(io.scratch), n, rate_,
                                 io.seed, io.step);
    else
      io.backend.copy(io.y.data, io.x().data, n * sizeof(float));
  }
  void backward(LayerIO& io) override {
    if (io.dx().data)
      io.backend.dropout_backward(io.dy.data, static_cast<const float*>(io.scratch), io.dx().data,
                                  io.dy.numel());
  }

 private:
  float rate_;
};

std::unique_ptr<Layer> make_dropout(const JsonFields& f, const std::string& name) {
  const double rate = f.number("rate", 0.5);
  if (!(rate >= 0.0 && rate < 1.0)) fail("{}.rate: expected a number in [0, 1)", f.where());
  return std::make_unique<Dropout>(name, static_cast<float>(rate));
}

}  // namespace

const LayerType& dropout_layer_type() {
  static const LayerType type{
      .name = "dropout",
      .summary =
          "in training, zeroes each value with probability `rate` and scales the rest "
          "by 1 / (1 - rate); the identity in evaluation",
      .name_prefix = "dropout",
      .fields = {{"rate", "0.5", "probability of zeroing, in [0, 1)", 0.25}},
      .make = make_dropout,
  };
  return type;
}

}  // namespace plinth
