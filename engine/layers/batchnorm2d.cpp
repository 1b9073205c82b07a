#include <nlohmann/json.hpp>

#include "engine/layers/batchnorm.h"
#include "engine/op_shapes.h"

namespace plinth {

// The class both batch-normalisation types share (engine/layers/batchnorm.h).

BatchNorm::BatchNorm(std::string name, int rank, Activation act, double momentum, double eps)
    : Layer(std::move(name)), rank_(rank), act_(act), momentum_(momentum), eps_(eps) {}

nlohmann::json BatchNorm::to_json() const {
  return {{"type", type()},
          {"name", name()},
          {"activation", activation_name(act_)},
          {"momentum", momentum_},
          {"eps", eps_}};
}

BatchNormShape BatchNorm::norm_shape(const Shape& in) const {
  if (in.rank != rank_)
    fail("layer {}: {} needs an {} input, got {}", name(), type(),
         rank_ == 4 ? "[N, C, H, W]" : "[N, features]", in.str());
  const int spatial = rank_ == 4 ? in[2] * in[3] : 1;
  return {in[0], in[1], spatial, static_cast<float>(eps_), static_cast<float>(momentum_)};
}

Shape BatchNorm::output_shape(InputShapes in) const {
  check_batchnorm_shape(norm_shape(in[0]), "layer " + name());
  return in[0];
}

std::vector<ParamSpec> BatchNorm::param_specs(InputShapes in) const {
  const int c = in[0][1];
  return {{"weight", {c}, 0.0f, 1.0f}, {"bias", {c}, 0.0f}};
}

std::vector<BufferSpec> BatchNorm::buffer_specs(InputShapes in) const {
  const int c = in[0][1];
  return {{"running_mean", {c}},
          {"running_var", {c}, BufferSpec::Type::f32, 1.0f},
          {"num_batches_tracked", {}, BufferSpec::Type::i64}};
}

// The saved mean and 1/std of each channel, and room for the weight and bias gradients'
// sums when the layer is frozen but its input needs a gradient.
size_t BatchNorm::scratch_bytes(InputShapes in) const {
  return 4 * static_cast<size_t>(in[0][1]) * sizeof(float);
}

TorchModule BatchNorm::torch_module(InputShapes in) const {
  return {rank_ == 4 ? "BatchNorm2d" : "BatchNorm1d",
          {in[0][1]},
          {{"eps", eps_}, {"momentum", momentum_}},
          torch_activation(act_)};
}

// Inference: the running statistics, as the exported model only infers (ONNX's momentum
// attribute matters only in training mode, so it is left out).
std::vector<OnnxNode> BatchNorm::onnx_nodes(InputShapes, OnnxNames xs, const std::string& y) const {
  const std::string& n = name();
  OnnxNode norm{"BatchNormalization",
                {xs[0], n + ".weight", n + ".bias", n + ".running_mean", n + ".running_var"},
                {},
                {{"epsilon", eps_}}};
  return with_onnx_activation(norm, act_, n, y);
}

void BatchNorm::forward(LayerIO& io) {
  const BatchNormShape s = norm_shape(io.x().shape);
  float* saved = static_cast<float*>(io.scratch);
  const bool batch = batch_statistics(io);
  io.backend.batchnorm_forward(s, batch, io.x().data, io.params[0].data, io.params[1].data,
                               io.buffers[0].data, io.buffers[1].data, saved, saved + s.c,
                               io.y.data, act_);
  // num_batches_tracked: 8-byte aligned (Parameters aligns every buffer to 64 bytes).
  if (batch) io.backend.increment(reinterpret_cast<int64_t*>(io.buffers[2].data), nullptr);
}

void BatchNorm::backward(LayerIO& io) {
  const BatchNormShape s = norm_shape(io.x().shape);
  float* saved = static_cast<float*>(io.scratch);
  float* dweight = io.grads.empty() ? saved + 2 * s.c : io.grads[0].data;
  float* dbias = io.grads.empty() ? saved + 3 * s.c : io.grads[1].data;
  io.backend.batchnorm_backward(s, batch_statistics(io), act_, io.x().data, io.y.data, io.dy.data,
                                io.params[0].data, saved, saved + s.c, io.dx().data, dweight,
                                dbias);
}

std::unique_ptr<Layer> make_batchnorm(const JsonFields& f, const std::string& name, int rank) {
  const double momentum = f.number("momentum", 0.1), eps = f.number("eps", 1e-5);
  if (!(momentum >= 0 && momentum <= 1))
    fail("{}.momentum: expected a number in [0, 1]", f.where());
  if (!(eps > 0 && eps < 1)) fail("{}.eps: expected a number in (0, 1)", f.where());
  return std::make_unique<BatchNorm>(
      name, rank, parse_activation(f.str("activation", "none"), f.where()), momentum, eps);
}

std::vector<LayerField> batchnorm_fields() {
  return {{"activation", "\"linear\"", "`relu`, `sigmoid`, `tanh` or `linear`", "relu"},
          {"momentum", "0.1", "weight of each batch in the running estimates (PyTorch's momentum)",
           0.01},
          {"eps", "1e-05", "added to the variance before its square root", 0.001}};
}

namespace {
std::unique_ptr<Layer> make_batchnorm2d(const JsonFields& f, const std::string& name) {
  return make_batchnorm(f, name, 4);
}
}  // namespace

const LayerType& batchnorm2d_layer_type() {
  static const LayerType type{
      .name = "batchnorm2d",
      .summary =
          "batch normalisation of each channel of [N, C, H, W], as PyTorch's "
          "BatchNorm2d (batch statistics in training, running ones in evaluation or "
          "when frozen), activation fused",
      .name_prefix = "bn",
      .fields = batchnorm_fields(),
      .make = make_batchnorm2d,
  };
  return type;
}

}  // namespace plinth
