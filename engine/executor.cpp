#include "engine/executor.h"
#include "engine/error.h"

#include "engine/memory_budget.h"
#include "engine/rng.h"

namespace plinth {

namespace {

// Lays out buffers in one arena: offsets are decided first, pointers bound after the one
// allocation. It keeps who needs what, so a plan too large for the device can say so.
class ArenaPlan {
 public:
  size_t add(size_t bytes, const std::string& owner) {
    const size_t at = need_.bytes;
    need_.add(owner, (bytes + 255) / 256 * 256);
    need_.fixed_bytes += 256;  // every buffer but the stats grows with the batch, + rounding
    return at;
  }
  size_t size() const { return need_.bytes; }
  MemoryNeed& need() { return need_; }

 private:
  MemoryNeed need_;
};

template <typename T>
T* at(const DeviceBuffer& arena, size_t offset) {
  return reinterpret_cast<T*>(arena.as<char>() + offset);
}

}  // namespace

Executor::Executor(const Model& model, Parameters& params, Backend& backend, int batch,
                   bool training, const std::vector<bool>& frozen, uint64_t seed)
    : model_(model),
      params_(params),
      backend_(backend),
      batch_(batch),
      training_(training),
      seed_(seed) {
  if (batch < 1) fail("batch size must be at least 1, got {}", batch);
  const size_t n = model.nodes.size();
  const std::vector<NodeShapes> shapes = model.shapes(batch);
  std::vector<int> consumers(n, 0);
  std::vector<bool> needs_grad(n, false);  // is the gradient of node i's output needed?
  nodes_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Node& node = model.nodes[i];
    nodes_[i].frozen = i < frozen.size() && frozen[i];
    bool trainable = false;
    for (const ParamEntry& e : params.entries())
      trainable = trainable || (e.node == static_cast<int>(i) && !nodes_[i].frozen);
    needs_grad[i] = training && (trainable || (node.input >= 0 && needs_grad[node.input]));
    if (node.input >= 0) ++consumers[node.input];
  }
  for (size_t i = 0; i < n; ++i)
    if (needs_grad[i] && consumers[i] > 1)
      fail("{}: layer {} feeds {} layers; gradient accumulation over fan-out is not supported yet",
           model.source, model.nodes[i].layer->name(), consumers[i]);

  // Plan the arena.
  ArenaPlan plan;
  const Shape& input_shape = shapes.front().input;
  const size_t input_at = plan.add(input_shape.numel() * sizeof(float), "input");
  const size_t labels_at = plan.add(batch * sizeof(int32_t), "labels");
  const size_t classes = shapes.back().output.per_sample();
  const size_t probs_at = plan.add(batch * classes * sizeof(float), "output probabilities");
  const size_t stats_at = plan.add(kStatsSize * sizeof(float), "stats");
  std::vector<size_t> y_at(n), dy_at(n), scratch_at(n);
  for (size_t i = 0; i < n; ++i) {
    const Layer& layer = *model.nodes[i].layer;
    const size_t output_bytes = shapes[i].output.numel() * sizeof(float);
    const bool alias = layer.reshape_only();
    y_at[i] = alias ? 0 : plan.add(output_bytes, layer.name());
    dy_at[i] = (alias || !training) ? 0 : plan.add(output_bytes, layer.name());
    scratch_at[i] = plan.add(layer.scratch_bytes(shapes[i].input), layer.name());
  }
  // The whole plan against what the device has, before any of it is allocated.
  plan.need().what = fmt::format("model '{}' at batch {} ({})", model.name, batch,
                                 training ? "training" : "inference");
  plan.need().batch = batch;
  require_memory(backend, plan.need());
  arena_ = DeviceBuffer(backend, plan.size());

  input_ = {input_shape, at<float>(arena_, input_at)};
  labels_ = at<int32_t>(arena_, labels_at);
  probs_ = at<float>(arena_, probs_at);
  stats_ = at<float>(arena_, stats_at);
  for (size_t i = 0; i < n; ++i) {
    const Node& node = model.nodes[i];
    NodeBuffers& b = nodes_[i];
    b.x = node.input < 0 ? input_ : nodes_[node.input].y;
    if (node.input >= 0 && needs_grad[node.input]) b.dx = nodes_[node.input].dy;
    b.x.shape = shapes[i].input;
    b.dx.shape = b.x.shape;
    if (node.layer->reshape_only()) {
      b.y = {shapes[i].output, b.x.data};
      b.dy = {shapes[i].output, b.dx.data};
    } else {
      b.y = {shapes[i].output, at<float>(arena_, y_at[i])};
      b.dy = {shapes[i].output, training ? at<float>(arena_, dy_at[i]) : nullptr};
    }
    b.scratch = at<char>(arena_, scratch_at[i]);
    b.needs_grad = needs_grad[i];
    for (const ParamEntry& e : params.entries()) {
      if (e.node != static_cast<int>(i)) continue;
      b.params.push_back({e.shape, params.values() + e.offset});
      if (training && !b.frozen) b.grads.push_back({e.shape, params.grads() + e.offset});
    }
    node.layer->prepare(backend, b.x.shape);
  }
  if (training) plan_backward_fusion(consumers, needs_grad);
  backend.fill(input_.data, input_.numel(), 0.0f);
  backend.fill(reinterpret_cast<float*>(labels_), batch, 0.0f);  // int 0 and float 0.0 share bits
  reset_stats();
}

// A layer that takes its input's ReLU backward (a max pool) and alone consumes a ReLU
// layer's output does that layer's ReLU backward and bias gradient in its own pass
// (LayerIO). The pass runs only where the ReLU layer's output gradient is needed.
void Executor::plan_backward_fusion(const std::vector<int>& consumers,
                                    const std::vector<bool>& needs_grad) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const int j = model_.nodes[i].input;
    if (j < 0 || !needs_grad[j] || consumers[j] != 1) continue;
    const Layer& producer = *model_.nodes[j].layer;
    if (!model_.nodes[i].layer->takes_input_relu_backward() || !producer.relu_output()) continue;
    nodes_[i].input_relu_backward = true;
    nodes_[j].activation_backward_done = true;
    if (nodes_[j].frozen) continue;
    for (const ParamEntry& e : params_.entries())
      if (e.node == j && e.name == producer.name() + ".bias")
        nodes_[i].input_bias_grad = params_.grads() + e.offset;
  }
}

LayerIO Executor::io(size_t i, bool training) {
  NodeBuffers& b = nodes_[i];
  LayerIO io{backend_,      b.x,     b.y,       b.dx,     b.dy,
             b.params,      b.grads, b.scratch, training, hash_combine(seed_, i),
             params_.step()};
  io.input_relu_backward = b.input_relu_backward;
  io.input_bias_grad = b.input_bias_grad;
  io.activation_backward_done = b.activation_backward_done;
  return io;
}

void Executor::forward(bool training) {
  for (size_t i = 0; i < nodes_.size(); ++i) forward_node(i, training);
}

void Executor::forward_node(size_t i, bool training) {
  LayerIO layer_io = io(i, training);
  model_.nodes[i].layer->forward(layer_io);
}

void Executor::loss(int valid, bool training) {
  const Tensor& out = output();
  const int features = static_cast<int>(out.shape.per_sample());
  float* grad = training ? nodes_.back().dy.data : nullptr;
  if (training && !grad) fail("loss: this executor was built without gradients");
  switch (model_.loss) {
    case LossKind::categorical_crossentropy:
      backend_.softmax_cross_entropy(out.data, labels_, valid, features, probs_, grad, stats_);
      break;
    case LossKind::mse:
      backend_.mse_loss(out.data, input_.data, valid, features, grad, stats_);
      break;
    case LossKind::binary_crossentropy:
      backend_.bce_loss(out.data, input_.data, valid, features, grad, stats_);
      break;
  }
  if (grad && valid < batch_)  // rows past `valid` are padding: they must not train
    backend_.fill(grad + static_cast<size_t>(valid) * features,
                  static_cast<size_t>(batch_ - valid) * features, 0.0f);
}

void Executor::backward() {
  if (!training_) fail("backward: this executor was built for inference");
  for (size_t i = nodes_.size(); i-- > 0;) backward_node(i);
}

void Executor::backward_node(size_t i) {
  if (!training_) fail("backward: this executor was built for inference");
  if (!nodes_[i].needs_grad) return;
  LayerIO layer_io = io(i, true);
  model_.nodes[i].layer->backward(layer_io);
}

void Executor::reset_stats() { backend_.fill(stats_, kStatsSize, 0.0f); }

}  // namespace plinth
