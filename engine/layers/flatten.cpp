#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"

namespace plinth {

namespace {

// NCHW flattened per sample is PyTorch's flatten order, so this is a view: no data moves.
class Flatten final : public Layer {
 public:
  using Layer::Layer;
  std::string type() const override { return "flatten"; }
  nlohmann::json to_json() const override { return {{"type", "flatten"}, {"name", name()}}; }
  Shape output_shape(InputShapes in) const override {
    return {in[0][0], static_cast<int>(in[0].per_sample())};
  }
  TorchModule torch_module(InputShapes) const override { return {"Flatten"}; }
  std::vector<OnnxNode> onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const override {
    return {{"Flatten", {xs[0]}, {y}, {{"axis", 1}}}};
  }
  bool reshape_only() const override { return true; }
  void forward(LayerIO&) override {}
  void backward(LayerIO&) override {}
};

std::unique_ptr<Layer> make_flatten(const JsonFields&, const std::string& name) {
  return std::make_unique<Flatten>(name);
}

}  // namespace

const LayerType& flatten_layer_type() {
  static const LayerType type{
      .name = "flatten",
      .summary = "[N, C, H, W] to [N, C*H*W]: a view in PyTorch's NCHW order",
      .name_prefix = "flatten",
      .bare_first = true,
      .make = make_flatten,
  };
  return type;
}

}  // namespace plinth
