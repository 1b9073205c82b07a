#include <climits>

#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"

namespace plinth {

namespace {

// Concatenation along dimension 1, channels of [N, C, H, W] or features of [N, F], as
// torch.cat(inputs, dim=1): each sample's output is its inputs' values one after another.
class Concat final : public Layer {
 public:
  using Layer::Layer;
  std::string type() const override { return "concat"; }
  nlohmann::json to_json() const override { return {{"type", "concat"}, {"name", name()}}; }
  Shape output_shape(InputShapes in) const override {
    Shape out = in[0];
    int64_t channels = 0;
    for (size_t k = 0; k < in.size(); ++k) {
      Shape other = in[k];
      other[1] = in[0][1];
      if (!(other == in[0]) || in[0].rank < 2)
        fail(
            "layer {}: concat needs inputs that differ in dimension 1 only, but input {} is {} "
            "and input 1 is {}",
            name(), k + 1, in[k].str(), in[0].str());
      channels += in[k][1];
    }
    if (channels > INT_MAX) fail("layer {}: more than 2^31 - 1 channels", name());
    out[1] = static_cast<int>(channels);
    return out;
  }
  TorchModule torch_module(InputShapes) const override { return {.merge = "cat"}; }
  std::vector<OnnxNode> onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const override {
    return {{"Concat", {xs.begin(), xs.end()}, {y}, {{"axis", 1}}}};
  }

  void forward(LayerIO& io) override {
    const size_t rows = io.y.shape[0], out_width = io.y.shape.per_sample();
    size_t offset = 0;
    for (const Tensor& x : io.xs) {
      const size_t width = x.shape.per_sample();
      io.backend.copy_rows(io.y.data + offset, out_width, x.data, width, width, rows);
      offset += width;
    }
  }
  void backward(LayerIO& io) override {
    const size_t rows = io.dy.shape[0], out_width = io.dy.shape.per_sample();
    size_t offset = 0;
    for (const Tensor& dx : io.dxs) {
      const size_t width = dx.shape.per_sample();
      if (dx.data)
        io.backend.copy_rows(dx.data, width, io.dy.data + offset, out_width, width, rows);
      offset += width;
    }
  }
};

std::unique_ptr<Layer> make_concat(const JsonFields&, const std::string& name) {
  return std::make_unique<Concat>(name);
}

}  // namespace

const LayerType& concat_layer_type() {
  static const LayerType type{
      .name = "concat",
      .summary =
          "its inputs one after another along dimension 1 (channels, or features), "
          "the other dimensions equal",
      .name_prefix = "concat",
      .min_inputs = 2,
      .max_inputs = kAnyNumberOfInputs,
      .make = make_concat,
  };
  return type;
}

}  // namespace plinth
