#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/layers/layers.h"
#include "engine/op_shapes.h"

namespace plinth {

namespace {

class Conv2d final : public Layer {
 public:
  Conv2d(std::string name, int filters, int kernel, int stride, int pad, Activation act, bool bias)
      : Layer(std::move(name)),
        filters_(filters),
        kernel_(kernel),
        stride_(stride),
        pad_(pad),
        act_(act),
        bias_(bias) {}

  std::string type() const override { return "conv2d"; }
  nlohmann::json to_json() const override {
    return {{"type", "conv2d"},
            {"name", name()},
            {"filters", filters_},
            {"kernel", kernel_},
            {"stride", stride_},
            {"padding", pad_},
            {"activation", activation_name(act_)},
            {"use_bias", bias_}};
  }

  ConvShape conv_shape(const Shape& in) const {
    if (in.rank != 4)
      fail("layer {}: conv2d needs an [N, C, H, W] input, got {}", name(), in.str());
    ConvShape c{in[0], in[1], in[2], in[3], filters_, kernel_, kernel_, stride_, pad_};
    return c;
  }
  // Checked where every shape of this layer is first derived: with batch 1 when a model
  // file is read (so an impossible layer is named), and per batch size by the executor.
  Shape output_shape(InputShapes in) const override {
    const ConvShape c = conv_shape(in[0]);
    check_conv_shape(c, "layer " + name());
    return {c.n, c.k, c.out_h(), c.out_w()};
  }
  std::vector<ParamSpec> param_specs(InputShapes in) const override {
    const int channels = in[0][1];
    // double: no int overflow for huge files
    const double rs = static_cast<double>(kernel_) * kernel_;
    const float limit =
        static_cast<float>(std::sqrt(6.0 / ((static_cast<double>(channels) + filters_) * rs)));
    std::vector<ParamSpec> p{{"weight", {filters_, channels, kernel_, kernel_}, limit}};
    if (bias_) p.push_back({"bias", {filters_}, 0.0f});
    return p;
  }
  TorchModule torch_module(InputShapes in) const override {
    return {"Conv2d",
            {in[0][1], filters_, kernel_},
            {{"stride", stride_}, {"padding", pad_}, {"bias", bias_}},
            torch_activation(act_)};
  }
  std::vector<OnnxNode> onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const override {
    OnnxNode conv{"Conv",
                  {xs[0], name() + ".weight"},
                  {},
                  {{"kernel_shape", {kernel_, kernel_}},
                   {"strides", {stride_, stride_}},
                   {"pads", {pad_, pad_, pad_, pad_}}}};
    if (bias_) conv.inputs.push_back(name() + ".bias");
    return with_onnx_activation(conv, act_, name(), y);
  }
  void prepare(Backend& backend, InputShapes in) override {
    backend.conv2d_prepare(conv_shape(in[0]));
  }

  // Layers keep no per-executor state (one model serves executors of several batch
  // sizes), so the shape is derived from the tensors on every call.
  void forward(LayerIO& io) override {
    const ConvShape shape = conv_shape(io.x().shape);
    const float* b = bias_ ? io.params[1].data : nullptr;
    if (const PooledOutput* pool = io.pool_output)
      io.backend.conv2d_maxpool_forward(shape, pool->shape, io.x().data, io.params[0].data, b, act_,
                                        io.y.data, pool->y, pool->argmax);
    else
      io.backend.conv2d_forward(shape, io.x().data, io.params[0].data, b, io.y.data, act_);
  }
  bool computes_output_pool() const override { return true; }
  bool relu_output() const override { return act_ == Activation::relu; }
  void backward(LayerIO& io) override {
    Backend& be = io.backend;
    const ConvShape shape = conv_shape(io.x().shape);
    const bool bias_grad = bias_ && !io.grads.empty();
    if (const PooledOutput* pool = io.pool_output; pool && pool->dy) {
      be.conv2d_maxpool_relu_backward(shape, pool->shape, io.x().data, io.params[0].data, pool->dy,
                                      pool->argmax, pool->y, io.dy.data, io.dx().data,
                                      io.grads.empty() ? nullptr : io.grads[0].data,
                                      bias_grad ? io.grads[1].data : nullptr);
      return;
    }
    if (io.activation_backward_done)
      ;  // the pool after this layer took the ReLU's backward and the bias gradient
    else if (bias_grad)
      be.bias_activation_backward(act_, io.y.data, io.dy.data, io.dy.data, io.grads[1].data,
                                  shape.n, shape.k, shape.out_h() * shape.out_w());
    else if (act_ != Activation::none)
      be.activation_backward(act_, io.y.data, io.dy.data, io.dy.data, io.dy.numel());
    if (!io.grads.empty())
      be.conv2d_backward_filter(shape, io.x().data, io.dy.data, io.grads[0].data);
    if (io.dx().data) be.conv2d_backward_data(shape, io.dy.data, io.params[0].data, io.dx().data);
  }

 private:
  int filters_, kernel_, stride_, pad_;
  Activation act_;
  bool bias_;
};

std::unique_ptr<Layer> make_conv2d(const JsonFields& f, const std::string& name) {
  const int kernel = f.positive_int("kernel");
  int pad = 0;
  if (f.has("padding") && f.raw()["padding"].is_string()) {
    const std::string p = f.str("padding");
    if (p == "same") {
      if (kernel % 2 == 0) fail("{}.padding: 'same' needs an odd kernel", f.where());
      pad = kernel / 2;
    } else if (p != "valid") {
      fail("{}.padding: expected 'valid', 'same' or an integer, got {}", f.where(),
           quoted_input(p));
    }
  } else {
    pad = f.non_negative_int("padding", 0);
  }
  const int stride = f.positive_int("stride", 1);
  if (pad > 0 && f.has("padding") && f.raw()["padding"] == "same" && stride != 1)
    fail("{}.padding: 'same' is only supported with stride 1", f.where());
  return std::make_unique<Conv2d>(name, f.positive_int("filters"), kernel, stride, pad,
                                  parse_activation(f.str("activation", "none"), f.where()),
                                  f.boolean("use_bias", true));
}

}  // namespace

const LayerType& conv2d_layer_type() {
  static const LayerType type{
      .name = "conv2d",
      .summary = "2-D convolution (cross-correlation) with bias and activation fused",
      .name_prefix = "conv",
      .fields = {{"filters", "", "output channels", 8},
                 {"kernel", "", "height and width of the square kernel", 3},
                 {"stride", "1", "step in both directions", 2},
                 {"padding", "\"valid\"",
                  "`\"valid\"` (none), `\"same\"` (odd kernel, stride 1) or pixels of zeros "
                  "on each side",
                  1},
                 {"activation", "\"linear\"", "`relu`, `sigmoid`, `tanh` or `linear`", "relu"},
                 {"use_bias", "true", "add a learnt bias per output channel", false}},
      .make = make_conv2d,
  };
  return type;
}

}  // namespace plinth
