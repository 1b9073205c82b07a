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
  // A buffer that grows with the batch (fixed: one that does not, such as a slice's).
  size_t add(size_t bytes, const std::string& owner, bool fixed = false) {
    const size_t at = need_.bytes;
    need_.add(owner, aligned(bytes));
    need_.fixed_bytes += fixed ? aligned(bytes) : 256;  // + rounding
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
  size_t input = 0, labels = 0, probs = 0, stats = 0, slice_grads = 0;
  std::vector<size_t> y, dy, scratch;  // per node; y and dy unused for a view
  std::vector<bool> own_dy;            // has node i a gradient buffer of its own?
  // Per node and input: the temporary an accumulated route writes (0 for other routes).
  std::vector<std::vector<size_t>> temporaries;
  MemoryNeed need;  // the whole plan, by owner
};

// A node's temporaries are needed only from its backward to the accumulations right after
// it, so every node's share one region; a reshape-only node's cannot (they are its own
// gradient, written by its consumers before its turn). shapes are a slice's; the input,
// labels, probabilities and the last node's output and gradient hold the whole batch, whose
// input and output shapes are batch_input and batch_output. slice_grad_bytes: the later
// slices' parameter gradients (0 when not sliced).
Layout plan_layout(const Model& model, const std::vector<NodeShapes>& shapes,
                   const Shape& batch_input, const Shape& batch_output,
                   const std::vector<std::vector<Route>>& routes,
                   const std::vector<bool>& needs_grad, int batch, bool training,
                   size_t slice_grad_bytes) {
  const size_t n = model.nodes.size();
  const bool sliced = batch_output != shapes.back().output;
  auto bytes = [](const Shape& s) { return s.numel() * sizeof(float); };
  ArenaPlan plan;
  Layout l;
  l.input = plan.add(bytes(batch_input), "input");
  l.labels = plan.add(batch * sizeof(int32_t), "labels");
  l.probs = plan.add(bytes(batch_output), "output probabilities");
  l.stats = plan.add(kStatsSize * sizeof(float), "stats");
  if (slice_grad_bytes > 0) l.slice_grads = plan.add(slice_grad_bytes, "slice gradients", true);
  size_t shared = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t node_temporaries = 0;
    for (size_t k = 0; k < routes[i].size(); ++k)
      if (routes[i][k] == Route::accumulated)
        node_temporaries += ArenaPlan::aligned(bytes(shapes[i].inputs[k]));
    if (!model.nodes[i].layer->reshape_only()) shared = std::max(shared, node_temporaries);
  }
  const size_t shared_at = plan.add(shared, "gradient temporaries", sliced);
  for (size_t i = 0; i < n; ++i) {
    const Layer& layer = *model.nodes[i].layer;
    const bool view = layer.reshape_only();
    const bool last = i + 1 == n;
    // The last node's gradient is the loss's to write, even when nothing reads it.
    const bool own_dy = !view && training && (needs_grad[i] || last);
    const Shape& out = last ? batch_output : shapes[i].output;
    l.own_dy.push_back(own_dy);
    l.y.push_back(view ? 0 : plan.add(bytes(out), layer.name(), sliced && !last));
    l.dy.push_back(own_dy ? plan.add(bytes(out), layer.name(), sliced && !last) : 0);
    l.scratch.push_back(plan.add(layer.scratch_bytes(shapes[i].inputs), layer.name(), sliced));
    l.temporaries.emplace_back();
    size_t next_shared = shared_at;
    for (size_t k = 0; k < routes[i].size(); ++k) {
      size_t offset = 0;
      if (routes[i][k] == Route::accumulated && view) {
        offset = plan.add(bytes(shapes[i].inputs[k]), layer.name(), sliced);
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

// Fewer samples than this per slice would leave the ops too little work each.
constexpr int kMinSliceSamples = 16;

// Why a batch cannot run slice by slice: a training batch through a layer that mixes
// samples, or a model whose output is a view of another layer's (with no buffer of its own
// to collect the slices' outputs). Empty: it can.
std::string unsliceable(const Model& model, bool training, const std::vector<bool>& frozen) {
  if (model.nodes.back().layer->reshape_only())
    return fmt::format("its output is a view of another layer's ('{}')",
                       model.nodes.back().layer->name());
  for (size_t i = 0; training && i < model.nodes.size(); ++i)
    if (model.nodes[i].layer->mixes_samples() && !(i < frozen.size() && frozen[i]))
      return fmt::format("layer '{}' mixes the batch's samples in training",
                         model.nodes[i].layer->name());
  return "";
}

// Samples per slice: the largest divisor of the batch whose activations (the buffers one
// sample adds to the plan) fit in the backend's slice_bytes(), where that cuts the batch
// into slices of at least kMinSliceSamples; else the whole batch.
int choose_slice(const Model& model, const Backend& backend, const std::vector<bool>& needs_grad,
                 const std::vector<std::vector<Route>>& routes, int batch, bool training,
                 const std::vector<bool>& frozen) {
  if (backend.slice_bytes() == 0 || !unsliceable(model, training, frozen).empty()) return batch;
  auto plan_bytes = [&](int samples) {
    const std::vector<NodeShapes> shapes = model.shapes(samples);
    return plan_layout(model, shapes, shapes.front().inputs.front(), shapes.back().output, routes,
                       needs_grad, samples, training, 0)
        .need.bytes;
  };
  // What kMinSliceSamples more samples add (rounding the buffers' sizes alike).
  const size_t sample_bytes = std::max<size_t>(
      1, (plan_bytes(2 * kMinSliceSamples) - plan_bytes(kMinSliceSamples)) / kMinSliceSamples);
  const size_t fits = backend.slice_bytes() / sample_bytes;
  if (fits >= static_cast<size_t>(batch)) return batch;
  for (int slice = static_cast<int>(fits); slice >= kMinSliceSamples; --slice)
    if (batch % slice == 0) return slice;
  return batch;
}

}  // namespace

Executor::Executor(const Model& model, Parameters& params, Backend& backend, int batch,
                   bool training, const std::vector<bool>& frozen, uint64_t seed, int slice)
    : model_(model),
      params_(params),
      backend_(backend),
      batch_(batch),
      slice_(batch),
      training_(training),
      seed_(seed) {
  if (batch < 1) fail("batch size must be at least 1, got {}", batch);
  const size_t n = model.nodes.size();
  const std::vector<bool> needs_grad = gradient_needs(model, params, frozen, training);
  const std::vector<std::vector<Route>> routes = gradient_routes(model, needs_grad);
  if (slice == kAutoSlice) {
    slice_ = choose_slice(model, backend, needs_grad, routes, batch, training, frozen);
  } else if (slice != batch) {
    if (slice < 1 || batch % slice != 0)
      fail("slice: {} samples do not divide a batch of {}", slice, batch);
    const std::string why = unsliceable(model, training, frozen);
    if (!why.empty()) fail("slice: model '{}' runs whole batches: {}", model.name, why);
    slice_ = slice;
  }
  const std::vector<NodeShapes> shapes = model.shapes(slice_);
  const std::vector<NodeShapes> whole = sliced() ? model.shapes(batch) : shapes;
  const size_t slice_grad_bytes = training && sliced() ? params.size() * sizeof(float) : 0;
  Layout layout = plan_layout(model, shapes, whole.front().inputs.front(), whole.back().output,
                              routes, needs_grad, batch, training, slice_grad_bytes);
  // The whole plan against what the device has, before any of it is allocated.
  layout.need.what = fmt::format("model '{}' at batch {} ({})", model.name, batch,
                                 training ? "training" : "inference");
  layout.need.batch = batch;
  require_memory(backend, layout.need);
  arena_ = DeviceBuffer(backend, layout.need.bytes);

  input_ = {whole.front().inputs.front(), at<float>(arena_, layout.input)};
  if (slice_grad_bytes > 0) slice_grads_ = at<float>(arena_, layout.slice_grads);
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
      if (slice_grads_ && !b.frozen) b.slice_grads.push_back({e.shape, slice_grads_ + e.offset});
    }
    for (const BufferEntry& e : params.buffer_entries())
      if (e.node == static_cast<int>(i)) b.buffers.push_back(params.buffer(e));
    node.layer->prepare(backend, shapes[i].inputs);
  }
  output_ = {whole.back().output, nodes_.back().y.data};
  output_grad_ = nodes_.back().dy.data;
  if (training) plan_backward_fusion(needs_grad);
  plan_forward_fusion(shapes, needs_grad);
  backend.fill(input_.data, input_.numel(), 0.0f);
  // The later slices' gradients of frozen parameters are never written: zero, they add
  // nothing.
  if (slice_grads_) backend.fill(slice_grads_, params.size(), 0.0f);
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
    if (i + 1 == nodes_.size()) output_pool_producer_ = j;
    // Where the pool takes the convolution's ReLU backward, the convolution takes the pool's.
    if (nodes_[i].input_relu_backward) {
      nodes_[j].pool_output->dy = nodes_[i].dy.data;
      nodes_[i].backward_done = true;
    }
  }
}

LayerIO Executor::io(size_t i, bool training) {
  NodeBuffers& b = nodes_[i];
  // Slices after the first write their parameter gradients beside the batch's, and draw
  // their own dropout masks.
  const bool later = slice_index_ > 0;
  float* bias_grad = b.input_bias_grad;
  if (later && bias_grad) bias_grad = slice_grads_ + (bias_grad - params_.grads());
  const uint64_t seed = hash_combine(seed_, i);
  return LayerIO{.backend = backend_,
                 .xs = b.xs,
                 .y = b.y,
                 .dxs = b.dxs,
                 .dy = b.dy,
                 .params = b.params,
                 .grads = later ? b.slice_grads : b.grads,
                 .buffers = b.buffers,
                 .scratch = b.scratch,
                 .training = training,
                 .frozen = b.frozen,
                 .seed = later ? hash_combine(seed, slice_index_) : seed,
                 .step = params_.step(),
                 .input_relu_backward = b.input_relu_backward,
                 .input_bias_grad = bias_grad,
                 .activation_backward_done = b.activation_backward_done,
                 .pool_output = b.pool_output ? &*b.pool_output : nullptr,
                 .forward_done = b.forward_done,
                 .backward_done = b.backward_done};
}

void Executor::use_slice(int s) {
  if (s == slice_index_) return;
  slice_index_ = s;
  const size_t first = static_cast<size_t>(s) * slice_;
  NodeBuffers& last = nodes_.back();
  last.y.data = output_.data + first * output_.shape.per_sample();
  if (output_grad_) last.dy.data = output_grad_ + first * output_.shape.per_sample();
  if (output_pool_producer_ >= 0) {
    PooledOutput& pooled = *nodes_[output_pool_producer_].pool_output;
    pooled.y = last.y.data;
    if (pooled.dy) pooled.dy = last.dy.data;
  }
  // In node order, so that a view of the input (a flatten first) moves before its readers.
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const std::vector<int>& inputs = model_.nodes[i].inputs;
    NodeBuffers& b = nodes_[i];
    for (size_t k = 0; k < inputs.size(); ++k)
      b.xs[k].data = inputs[k] == kModelInput ? input_.data + first * input_.shape.per_sample()
                                              : nodes_[inputs[k]].y.data;
    if (model_.nodes[i].layer->reshape_only()) b.y.data = b.xs[0].data;
  }
}

void Executor::gradients(int valid) {
  if (!training_) fail("gradients: this executor was built for inference");
  for (int s = 0; s < slices(); ++s) {
    use_slice(s);
    for (size_t i = 0; i < nodes_.size(); ++i) forward_node(i, true);
    rows_loss(s * slice_, slice_, valid, true);
    for (size_t i = nodes_.size(); i-- > 0;) backward_node(i);
    if (s > 0) backend_.accumulate(slice_grads_, params_.grads(), params_.size());
    if (slice_done_) slice_done_(slice_);
  }
  use_slice(0);
}

void Executor::forward(bool training) {
  if (training && sliced())
    fail("forward: a training pass of a sliced batch runs in gradients() (batch {}, slices of {})",
         batch_, slice_);
  for (int s = 0; s < slices(); ++s) {
    forward_slice(s, training);
    if (slice_done_) slice_done_(slice_);
  }
  use_slice(0);
}

void Executor::forward_slice(int s, bool training) {
  use_slice(s);
  for (size_t i = 0; i < nodes_.size(); ++i) forward_node(i, training);
}

void Executor::forward_node(size_t i, bool training) {
  LayerIO layer_io = io(i, training);
  model_.nodes[i].layer->forward(layer_io);
}

void Executor::loss(int valid, bool training) {
  if (training && !training_) fail("loss: this executor was built without gradients");
  if (training && sliced())
    fail("loss: a training pass of a sliced batch runs in gradients() (batch {}, slices of {})",
         batch_, slice_);
  rows_loss(0, batch_, valid, training);
}

void Executor::rows_loss(int first, int rows, int valid, bool training) {
  const size_t features = output_.shape.per_sample(), at = static_cast<size_t>(first) * features;
  const float* out = output_.data + at;
  const float* target = input_.data + static_cast<size_t>(first) * input_.shape.per_sample();
  const int n = std::clamp(valid - first, 0, rows), f = static_cast<int>(features);
  // Null when no layer needs a gradient (all frozen, and a view last).
  float* grad = training && output_grad_ ? output_grad_ + at : nullptr;
  switch (model_.loss) {
    case LossKind::categorical_crossentropy:
      backend_.softmax_cross_entropy(out, labels_ + first, n, valid, f, probs_ + at, grad, stats_);
      break;
    case LossKind::mse:
      backend_.mse_loss(out, target, n, valid, f, grad, stats_);
      break;
    case LossKind::binary_crossentropy:
      backend_.bce_loss(out, target, n, valid, f, grad, stats_);
      break;
  }
  if (grad && n < rows)  // rows past `valid` are padding: they must not train
    backend_.fill(grad + static_cast<size_t>(n) * features,
                  static_cast<size_t>(rows - n) * features, 0.0f);
}

void Executor::backward() {
  if (!training_) fail("backward: this executor was built for inference");
  if (sliced())
    fail("backward: a training pass of a sliced batch runs in gradients() (batch {}, slices of {})",
         batch_, slice_);
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
