#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"
#include "engine/op_shapes.h"

namespace plinth {

namespace {

class AvgPool2d final : public Layer {
 public:
  AvgPool2d(std::string name, int size, int stride)
      : Layer(std::move(name)), size_(size), stride_(stride) {}

  std::string type() const override { return "avgpool2d"; }
  nlohmann::json to_json() const override {
    return {{"type", "avgpool2d"}, {"name", name()}, {"size", size_}, {"stride", stride_}};
  }
  PoolShape pool_shape(const Shape& in) const {
    if (in.rank != 4)
      fail("layer {}: avgpool2d needs an [N, C, H, W] input, got {}", name(), in.str());
    return {in[0], in[1], in[2], in[3], size_, stride_};
  }
  // Checked where every shape of this layer is first derived, as maxpool2d's.
  Shape output_shape(InputShapes in) const override {
    const PoolShape p = pool_shape(in[0]);
    check_pool_shape(p, "layer " + name());
    return {p.n, p.c, p.out_h(), p.out_w()};
  }
  TorchModule torch_module(InputShapes) const override { return {"AvgPool2d", {size_, stride_}}; }
  std::vector<OnnxNode> onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const override {
    return {{"AveragePool",
             {xs[0]},
             {y},
             {{"kernel_shape", {size_, size_}}, {"strides", {stride_, stride_}}}}};
  }

  void forward(LayerIO& io) override {
    io.backend.avgpool_forward(pool_shape(io.x().shape), io.x().data, io.y.data);
  }
  void backward(LayerIO& io) override {
    if (io.dx().data)
      io.backend.avgpool_backward(pool_shape(io.x().shape), io.dy.data, io.dx().data);
  }

 private:
  int size_, stride_;
};

std::unique_ptr<Layer> make_avgpool2d(const JsonFields& f, const std::string& name) {
  const int size = f.positive_int("size", 2);
  return std::make_unique<AvgPool2d>(name, size, f.positive_int("stride", size));
}

}  // namespace

const LayerType& avgpool2d_layer_type() {
  static const LayerType type{
      .name = "avgpool2d",
      .summary = "mean over square windows, no padding",
      .name_prefix = "avgpool",
      .fields = {{"size", "2", "height and width of the window", 3},
                 {"stride", "= size", "step in both directions", 1}},
      .make = make_avgpool2d,
  };
  return type;
}

}  // namespace plinth
