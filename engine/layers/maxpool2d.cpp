#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"
#include "engine/op_shapes.h"

namespace plinth {

namespace {

class MaxPool2d final : public Layer {
 public:
  MaxPool2d(std::string name, int size, int stride)
      : Layer(std::move(name)), size_(size), stride_(stride) {}

  std::string type() const override { return "maxpool2d"; }
  nlohmann::json to_json() const override {
    return {{"type", "maxpool2d"}, {"name", name()}, {"size", size_}, {"stride", stride_}};
  }
  PoolShape pool_shape(const Shape& in) const {
    if (in.rank != 4)
      fail("layer {}: maxpool2d needs an [N, C, H, W] input, got {}", name(), in.str());
    PoolShape p{in[0], in[1], in[2], in[3], size_, stride_};
    return p;
  }
  // Checked where every shape of this layer is first derived: with batch 1 when a model
  // file is read (so an impossible layer is named), and per batch size by the executor.
  Shape output_shape(InputShapes in) const override {
    const PoolShape p = pool_shape(in[0]);
    check_pool_shape(p, "layer " + name());
    return {p.n, p.c, p.out_h(), p.out_w()};
  }
  size_t scratch_bytes(InputShapes in) const override {
    return output_shape(in).numel() * sizeof(int32_t);
  }
  TorchModule torch_module(InputShapes) const override { return {"MaxPool2d", {size_, stride_}}; }
  std::vector<OnnxNode> onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const override {
    return {{"MaxPool",
             {xs[0]},
             {y},
             {{"kernel_shape", {size_, size_}}, {"strides", {stride_, stride_}}}}};
  }

  std::optional<PoolShape> max_pool(InputShapes in) const override { return pool_shape(in[0]); }
  void forward(LayerIO& io) override {
    if (io.forward_done) return;
    io.backend.maxpool_forward(pool_shape(io.x().shape), io.x().data, io.y.data,
                               static_cast<int32_t*>(io.scratch));
  }
  bool takes_input_relu_backward() const override { return true; }
  void backward(LayerIO& io) override {
    if (!io.dx().data || io.backward_done) return;
    const auto* argmax = static_cast<const int32_t*>(io.scratch);
    if (io.input_relu_backward)
      io.backend.maxpool_relu_backward(pool_shape(io.x().shape), io.dy.data, argmax, io.y.data,
                                       io.dx().data, io.input_bias_grad);
    else
      io.backend.maxpool_backward(pool_shape(io.x().shape), io.dy.data, argmax, io.dx().data);
  }

 private:
  int size_, stride_;
};

std::unique_ptr<Layer> make_maxpool2d(const JsonFields& f, const std::string& name) {
  const int size = f.positive_int("size", 2);
  return std::make_unique<MaxPool2d>(name, size, f.positive_int("stride", size));
}

}  // namespace

const LayerType& maxpool2d_layer_type() {
  static const LayerType type{
      .name = "maxpool2d",
      .summary = "maximum over square windows, no padding",
      .name_prefix = "pool",
      .fields = {{"size", "2", "height and width of the window", 3},
                 {"stride", "= size", "step in both directions", 1}},
      .make = make_maxpool2d,
  };
  return type;
}

}  // namespace plinth
