#include "engine/executor.h"
#include "engine/error.h"

#include <algorithm>

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
    need_.add(owner, aligned(bytes));
    need_.fixed_bytes += 256;  // every buffer but the stats grows with the batch, + rounding
    return at;
  }
  static size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }
  size_t size() const { return need_.bytes; }
  MemoryNeed& need() { return need_; }

 private:
  MemoryNeed need_;
};

template <typename T>
T* at(const DeviceBuffer& arena, size_t offset) {
  return reinterpret_cast<T*>(arena.as<char>() + offset);
}

// Whether node i's output needs a gradient: it has parameters to train, or an input that
// needs one. (Every node reaches the output: the model file allows no other.)
std::vector<bool> gradient_needs(const Model& model, const Parameters& params,
                                 const std::vector<bool>& frozen, bool training) {
  const size_t n = model.nodes.size();
  std::vector<bool> trainable(n, false), needs(n, false);
  for (const ParamEntry& e : params.entries())
    trainable[e.node] =
        trainable[e.node] || !(static_cast<size_t>(e.node) < frozen.size() && frozen[e.node]);
  for (size_t i = 0; training && i < n; ++i) {
    needs[i] = trainable[i];
    for (int in : model.nodes[i].inputs) needs[i] = needs[i] || (in != kModelInput && needs[in]);
  }
  return needs;
}

// How one input's gradient reaches its producer's gradient.
enum class Route { none, direct, accumulated };

// For each node and input, in the order backward() runs (nodes last to first, a node's
// inputs in order): the first route to each producer writes its gradient directly, every
// later one writes a temporary that is then accumulated into it.
std::vector<std::vector<Route>> gradient_routes(const Model& model,
                                                const std::vector<bool>& needs) {
  const size_t n = model.nodes.size();
  std::vector<std::vector<Route>> routes(n);
  std::vector<bool> written(n, false);
  for (size_t i = n; i-- > 0;) {
    const std::vector<int>& inputs = model.nodes[i].inputs;
    routes[i].assign(inputs.size(), Route::none);
    for (size_t k = 0; needs[i] && k < inputs.size(); ++k) {
      const int p = inputs[k];
      if (p == kModelInput || !needs[p]) continue;
      routes[i][k] = written[p] ? Route::accumulated : Route::direct;
      written[p] = true;
    }
  }
  return routes;
}

// Per node, the node its one input comes from where that node's output is read by it alone
// (what both fusions need), else -1.
std::vector<int> sole_producers(const Model& model) {
  std::vector<int> uses(model.nodes.size(), 0);  // how often each node's output is read
  for (const Node& node : model.nodes)
    for (int in : node.inputs)
      if (in != kModelInput) ++uses[in];
  std::vector<int> producers(model.nodes.size(), -1);
  for (size_t i = 0; i < model.nodes.size(); ++i) {
    const std::vector<int>& inputs = model.nodes[i].inputs;
    if (inputs.size() == 1 && inputs[0] != kModelInput && uses[inputs[0]] == 1)
      producers[i] = inputs[0];
  }
  return producers;
}

// Where every buffer lives in the arena: offsets, decided before the one allocation.
struct Layout {
  size_t input = 0, labels = 0, probs = 0, stats = 0;
  std::vector<size_t> y, dy, scratch;  // per node; y and dy unused for a view
  std::vector<bool> own_dy;            // has node i a gradient buffer of its own?
  // Per node and input: the temporary an accumulated route writes (0 for other routes).
  std::vector<std::vector<size_t>> temporaries;
  MemoryNeed need;  // the whole plan, by owner
};

// A node's temporaries are needed only from its backward to the accumulations right after
// it, so every node's share one region; a reshape-only node's cannot (they are its own
// gradient, written by its consumers before its turn).
Layout plan_layout(const Model& model, const std::vector<NodeShapes>& shapes,
                   const std::vector<std::vector<Route>>& routes,
                   const std::vector<bool>& needs_grad, int batch, bool training) {
  const size_t n = model.nodes.size();
  auto bytes = [](const Shape& s) { return s.numel() * sizeof(float); };
  ArenaPlan plan;
  Layout l;
  l.input = plan.add(bytes(shapes.front().inputs.front()), "input");
  l.labels = plan.add(batch * sizeof(int32_t), "labels");
  l.probs = plan.add(bytes(shapes.back().output), "output probabilities");
  l.stats = plan.add(kStatsSize * sizeof(float), "stats");
  size_t shared = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t node_temporaries = 0;
    for (size_t k = 0; k < routes[i].size(); ++k)
      if (routes[i][k] == Route::accumulated)
        node_temporaries += ArenaPlan::aligned(bytes(shapes[i].inputs[k]));
    if (!model.nodes[i].layer->reshape_only()) shared = std::max(shared, node_temporaries);
  }
  const size_t shared_at = plan.add(shared, "gradient temporaries");
  for (size_t i = 0; i < n; ++i) {
    const Layer& layer = *model.nodes[i].layer;
    const bool view = layer.reshape_only();
    // The last node's gradient is the loss's to write, even when nothing reads it.
    const bool own_dy = !view && training && (needs_grad[i] || i + 1 == n);
    l.own_dy.push_back(own_dy);
    l.y.push_back(view ? 0 : plan.add(bytes(shapes[i].output), layer.name()));
    l.dy.push_back(own_dy ? plan.add(bytes(shapes[i].output), layer.name()) : 0);
    l.scratch.push_back(plan.add(layer.scratch_bytes(shapes[i].inputs), layer.name()));
    l.temporaries.emplace_back();
    size_t next_shared = shared_at;
    for (size_t k = 0; k < routes[i].size(); ++k) {
      size_t offset = 0;
      if (routes[i][k] == Route::accumulated && view) {
        offset = plan.add(bytes(shapes[i].inputs[k]), layer.name());
      } else if (routes[i][k] == Route::accumulated) {
        offset = next_shared;
        next_shared += ArenaPlan::aligned(bytes(shapes[i].inputs[k]));
      }
      l.temporaries[i].push_back(offset);
    }
  }
  l.need = plan.need();
  return l;
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
  const std::vector<bool> needs_grad = gradient_needs(model, params, frozen, training);
  const std::vector<std::vector<Route>> routes = gradient_routes(model, needs_grad);
  Layout layout = plan_layout(model, shapes, routes, needs_grad, batch, training);
  // The whole plan against what the device has, before any of it is allocated.
  layout.need.what = fmt::format("model '{}' at batch {} ({})", model.name, batch,
                                 training ? "training" : "inference");
  layout.need.batch = batch;
  require_memory(backend, layout.need);
  arena_ = DeviceBuffer(backend, layout.need.bytes);

  input_ = {shapes.front().inputs.front(), at<float>(arena_, layout.input)};
  labels_ = at<int32_t>(arena_, layout.labels);
  probs_ = at<float>(arena_, layout.probs);
  stats_ = at<float>(arena_, layout.stats);
  nodes_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Node& node = model.nodes[i];
    NodeBuffers& b = nodes_[i];
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const int p = node.inputs[k];
      const Shape& shape = shapes[i].inputs[k];
      b.xs.push_back({shape, p == kModelInput ? input_.data : nodes_[p].y.data});
      Tensor dx{shape, nullptr};
      if (routes[i][k] == Route::direct) dx.data = nodes_[p].dy.data;
      if (routes[i][k] == Route::accumulated) {
        dx.data = at<float>(arena_, layout.temporaries[i][k]);
        b.accumulations.push_back({dx.data, nodes_[p].dy.data, shape.numel()});
      }
      b.dxs.push_back(dx);
    }
    const Shape& out = shapes[i].output;
    if (node.layer->reshape_only()) {
      b.y = {out, b.xs[0].data};
      b.dy = {out, b.dxs[0].data};
    } else {
      b.y = {out, at<float>(arena_, layout.y[i])};
      b.dy = {out, layout.own_dy[i] ? at<float>(arena_, layout.dy[i]) : nullptr};
    }
    b.scratch = at<char>(arena_, layout.scratch[i]);
    b.frozen = i < frozen.size() && frozen[i];
    b.needs_grad = needs_grad[i];
    for (const ParamEntry& e : params.entries()) {
      if (e.node != static_cast<int>(i)) continue;
      b.params.push_back({e.shape, params.values() + e.offset});
      if (training && !b.frozen) b.grads.push_back({e.shape, params.grads() + e.offset});
    }
    for (const BufferEntry& e : params.buffer_entries())
      if (e.node == static_cast<int>(i)) b.buffers.push_back(params.buffer(e));
    node.layer->prepare(backend, shapes[i].inputs);
  }
  if (training) plan_backward_fusion(needs_grad);
  plan_forward_fusion(shapes, needs_grad);
  backend.fill(input_.data, input_.numel(), 0.0f);
  backend.fill(reinterpret_cast<float*>(labels_), batch, 0.0f);  // int 0 and float 0.0 share bits
  reset_stats();
}

// A layer with one input that takes its input's ReLU backward (a max pool) and is the only
// consumer of a ReLU layer's output does that layer's ReLU backward and bias gradient in
// its own pass (LayerIO). Only then: an output that fans out or feeds a merge gets its
// gradient summed from several consumers, and the ReLU backward must see the sum. The
// pass runs only where the ReLU layer's output gradient is needed.
void Executor::plan_backward_fusion(const std::vector<bool>& needs_grad) {
  const std::vector<int> producers = sole_producers(model_);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const int j = producers[i];
    if (j < 0 || !needs_grad[j]) continue;
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

// A max pool that is the only consumer of a convolution's output is computed by the
// convolution's forward, so that the convolution's output is never written whole (LayerIO),
// where nothing else reads that output: in training the convolution's backward must not
// need it (the pool takes its ReLU backward, or it needs no gradient).
void Executor::plan_forward_fusion(const std::vector<NodeShapes>& shapes,
                                   const std::vector<bool>& needs_grad) {
  const std::vector<int> producers = sole_producers(model_);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const int j = producers[i];
    if (j < 0) continue;
    const std::optional<PoolShape> pool = model_.nodes[i].layer->max_pool(shapes[i].inputs);
    if (!pool || !model_.nodes[j].layer->computes_output_pool()) continue;
    if (training_ && needs_grad[j] && !nodes_[j].activation_backward_done) continue;
    nodes_[j].pool_output =
        PooledOutput{*pool, nodes_[i].y.data, static_cast<int32_t*>(nodes_[i].scratch)};
    nodes_[i].forward_done = true;
    // Where the pool takes the convolution's ReLU backward, the convolution takes the pool's.
    if (nodes_[i].input_relu_backward) {
      nodes_[j].pool_output->dy = nodes_[i].dy.data;
      nodes_[i].backward_done = true;
    }
  }
}

LayerIO Executor::io(size_t i, bool training) {
  NodeBuffers& b = nodes_[i];
  return LayerIO{.backend = backend_,
                 .xs = b.xs,
                 .y = b.y,
                 .dxs = b.dxs,
                 .dy = b.dy,
                 .params = b.params,
                 .grads = b.grads,
                 .buffers = b.buffers,
                 .scratch = b.scratch,
                 .training = training,
                 .frozen = b.frozen,
                 .seed = hash_combine(seed_, i),
                 .step = params_.step(),
                 .input_relu_backward = b.input_relu_backward,
                 .input_bias_grad = b.input_bias_grad,
                 .activation_backward_done = b.activation_backward_done,
                 .pool_output = b.pool_output ? &*b.pool_output : nullptr,
                 .forward_done = b.forward_done,
                 .backward_done = b.backward_done};
}

void Executor::forward(bool training) {
  for (size_t i = 0; i < nodes_.size(); ++i) forward_node(i, training);
}

void Executor::forward_node(size_t i, bool training) {
  LayerIO layer_io = io(i, training);
  model_.nodes[i].layer->forward(layer_io);
}

void Executor::loss(int valid, bool training) {
  if (training && !training_) fail("loss: this executor was built without gradients");
  const Tensor& out = output();
  const int features = static_cast<int>(out.shape.per_sample());
  // Null when no layer needs a gradient (all frozen, and a view last).
  float* grad = training ? nodes_.back().dy.data : nullptr;
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
  for (const Accumulation& a : nodes_[i].accumulations) backend_.accumulate(a.from, a.to, a.n);
}

void Executor::reset_stats() { backend_.fill(stats_, kStatsSize, 0.0f); }

}  // namespace plinth
