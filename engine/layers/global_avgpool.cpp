#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"

namespace plinth {

namespace {

// [N, C, H, W] to [N, C], each channel's mean (Keras' GlobalAveragePooling2D): the usual
// head of a ResNet, followed directly by a dense layer.
class GlobalAvgPool final : public Layer {
 public:
  using Layer::Layer;
  std::string type() const override { return "global_avgpool"; }
  nlohmann::json to_json() const override { return {{"type", "global_avgpool"}, {"name", name()}}; }
  Shape output_shape(InputShapes in) const override {
    if (in[0].rank != 4)
      fail("layer {}: global_avgpool needs an [N, C, H, W] input, got {}", name(), in[0].str());
    return {in[0][0], in[0][1]};
  }
  TorchModule torch_module(InputShapes) const override {
    return {"AdaptiveAvgPool2d", {1}, nlohmann::json::object(), "Flatten"};
  }
  // ONNX's GlobalAveragePool keeps [N, C, 1, 1]; the flatten gives this layer's [N, C].
  std::vector<OnnxNode> onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const override {
    return {{"GlobalAveragePool", {xs[0]}, {name() + ".pooled"}},
            {"Flatten", {name() + ".pooled"}, {y}, {{"axis", 1}}}};
  }

  void forward(LayerIO& io) override {
    io.backend.global_avgpool_forward(io.x().data, io.y.data, io.y.numel(), spatial(io.x()));
  }
  void backward(LayerIO& io) override {
    if (io.dx().data)
      io.backend.global_avgpool_backward(io.dy.data, io.dx().data, io.dy.numel(), spatial(io.x()));
  }

 private:
  static int spatial(const Tensor& x) { return x.shape[2] * x.shape[3]; }
};

std::unique_ptr<Layer> make_global_avgpool(const JsonFields&, const std::string& name) {
  return std::make_unique<GlobalAvgPool>(name);
}

}  // namespace

const LayerType& global_avgpool_layer_type() {
  static const LayerType type{
      .name = "global_avgpool",
      .summary = "[N, C, H, W] to [N, C], the mean of each channel (a dense layer may follow)",
      .name_prefix = "gap",
      .make = make_global_avgpool,
  };
  return type;
}

}  // namespace plinth
