#include "engine/trainer.h"

#include <algorithm>
#include <cmath>

#include "engine/communicator.h"
#include "engine/device_dataset.h"
#include "engine/elementwise.h"
#include "engine/memory_budget.h"
#include "engine/step_graph.h"
#include "engine/user_text.h"

namespace plinth {

NonFiniteError::NonFiniteError(const std::string& finding)
    : Error(finding +
            " (try a lower learning rate or a clip_norm; on_nan = OnNan::skip_step "
            "skips such steps)"),
      finding_(finding) {}

Trainer::Trainer(const Model& model, Backend& backend, Parameters& params, TrainOptions options)
    : model_(model), backend_(backend), params_(params), options_(std::move(options)) {
  if (options_.batch_size % ranks() != 0)
    fail(
        "batch_size: the global batch of {} does not divide among {} ranks (give a multiple of "
        "{})",
        options_.batch_size, ranks(), ranks());
  frozen_.assign(model.nodes.size(), false);
  for (const std::string& name : options_.freeze) {
    const int i = model.find(name);
    if (i < 0) fail("freeze: the model has no layer named {}", quoted_input(name));
    frozen_[i] = true;
  }
  for (const auto& [name, factor] : options_.lr_multiplier) {
    if (model.find(name) < 0)
      fail("lr_multiplier: the model has no layer named {}", quoted_input(name));
    // Written as !(in range) so NaN is refused too: it would train to NaN weights unseen,
    // and a negative factor uphill. 0 keeps a layer's weights (but computes its gradients).
    if (!(factor >= 0 && factor <= 1e6))
      fail("lr_multiplier: the factor of {} is {}; expected a number from 0 to 1e6",
           quoted_input(name), factor);
  }
  if (options_.max_steps == 0 || options_.max_steps < -1)
    fail("max_steps: expected -1 (no limit) or at least 1 step, got {}", options_.max_steps);
  // Contiguous runs of trainable parameters with one learning-rate factor: one optimizer
  // call each (a single call for the usual case of nothing frozen).
  for (const ParamEntry& e : params.entries()) {
    if (frozen_[e.node]) continue;
    const auto it = options_.lr_multiplier.find(model.nodes[e.node].layer->name());
    const float factor = it == options_.lr_multiplier.end() ? 1.0f : it->second;
    const size_t end = e.offset + e.shape.numel();
    if (!groups_.empty() && groups_.back().lr_multiplier == factor &&
        groups_.back().offset + groups_.back().count >= e.offset - 16) {
      groups_.back().count = end - groups_.back().offset;
    } else {
      groups_.push_back({e.offset, e.shape.numel(), factor});
    }
  }
  scalars_ = DeviceBuffer(backend, (2 + kStatsSize) * sizeof(float));
  counters_ = DeviceBuffer(backend, 2 * sizeof(int64_t));
  normalization_ = DeviceBuffer(backend, 2 * model.input[0] * sizeof(float));
  set_normalization(Normalization{});
}

void Trainer::set_normalization(const Normalization& n) {
  const size_t channels = static_cast<size_t>(model_.input[0]);
  for (const std::vector<float>* v : {&n.mean, &n.std})
    if (v->size() != 1 && v->size() != channels)
      fail("normalization: {} values for a model with {} input channels (give 1 or {})", v->size(),
           channels, channels);
  std::vector<float> values(2 * channels);
  for (size_t c = 0; c < channels; ++c) {
    values[c] = n.mean[n.mean.size() == 1 ? 0 : c];
    values[channels + c] = n.std[n.std.size() == 1 ? 0 : c];
    if (!(values[channels + c] > 0))
      fail("normalization: std {} of channel {} is not positive", values[channels + c], c);
  }
  backend_.upload(normalization_.as<void>(), values.data(), values.size() * sizeof(float));
}

int Trainer::classes() const {
  return static_cast<int>(model_.shapes(1).back().output.per_sample());
}

Trainer::GatheredIds Trainer::gather(DeviceDataset& data, int64_t b, const int64_t* batch_index,
                                     int batch, float* out, int32_t* labels_out) {
  const bool streamed = data.streamed();
  const DeviceDataset::Batch in = data.batch(streamed ? b * batch : 0);
  const int64_t* index = streamed ? nullptr : batch_index;
  const int channels = model_.input[0];
  backend_.gather_batch(in.images, in.labels, in.indices, index, batch, channels,
                        model_.input[1] * model_.input[2], normalization_.as<float>(),
                        normalization_.as<float>() + channels, out, labels_out);
  return {in.sample_ids, index};
}

Trainer::~Trainer() = default;

void Trainer::check_input_shape(const Dataset& d) const {
  if (d.count > 0 &&
      (d.channels != model_.input[0] || d.height != model_.input[1] || d.width != model_.input[2]))
    fail("the model '{}' takes {}x{}x{} inputs but '{}' has {}x{}x{}", model_.name, model_.input[0],
         model_.input[1], model_.input[2], d.name, d.channels, d.height, d.width);
}

DeviceDataset& Trainer::device_data(const Dataset& data, int batch) {
  auto& slot = data_[&data];
  if (!slot || slot->batch_size() != batch) {
    if (slot) eval_graphs_.erase(slot.get());
    slot = std::make_unique<DeviceDataset>(backend_, data, batch, options_.data_memory);
  }
  return *slot;
}

Executor& Trainer::eval_executor(int count) {
  const int wanted = options_.eval_batch_size > 0 ? options_.eval_batch_size : options_.batch_size;
  const int batch = std::max(1, std::min(wanted, count));
  // The executor built for this request may hold fewer samples, if memory was short.
  if (eval_ && (eval_->batch() == batch || eval_requested_ == batch)) return *eval_;
  eval_graphs_.clear();  // they ran the executor this one replaces
  eval_.reset();         // its memory counts as available to the next one
  eval_requested_ = batch;
  try {
    eval_ = std::make_unique<Executor>(model_, params_, backend_, batch, false, std::vector<bool>{},
                                       0, executor_slice(batch));
  } catch (const MemoryError& e) {
    if (e.fitting_batch() < 1) throw;
    eval_ = std::make_unique<Executor>(model_, params_, backend_, e.fitting_batch(), false,
                                       std::vector<bool>{}, 0, executor_slice(e.fitting_batch()));
  }
  return *eval_;
}

GraphUse Trainer::evaluation_graph() const {
  GraphUse use;
  for (const auto& [data, graph] : eval_graphs_) {
    use.replays += graph->replays();
    use.eager += graph->eager_runs();
    use.launches = std::max(use.launches, graph->launches());
    if (use.eager_reason.empty()) use.eager_reason = graph->eager_reason();
  }
  return use;
}

std::string Trainer::graph_report() const {
  auto say = [](const char* what, const GraphUse& u) {
    if (u.replays == 0)
      return fmt::format("{}: {} eager{}{}", what, u.eager, u.eager_reason.empty() ? "" : " (",
                         u.eager_reason.empty() ? "" : u.eager_reason + ")");
    return fmt::format("{}: {} replayed from a graph of {} launches, {} eager", what, u.replays,
                       u.launches, u.eager);
  };
  return say("training steps", training_graph_) + "; " +
         say("evaluation batches", evaluation_graph());
}

double Trainer::learning_rate(int epoch, int64_t step, int64_t steps_per_epoch) const {
  return scheduled_lr(model_.training.schedule, model_.optimizer.lr, epoch, step,
                      static_cast<double>(options_.epochs) * steps_per_epoch);
}

std::string Trainer::diagnose_nonfinite(Executor& exec) const {
  auto bad = [&](const float* x, size_t n) {
    std::vector<float> host(n);
    backend_.download(host.data(), x, n * sizeof(float));
    return std::any_of(host.begin(), host.end(), [](float v) { return !std::isfinite(v); });
  };
  // A sliced step's layer outputs are its last slice's: each slice's forward runs again (the
  // weights are as they were, the bad step having changed none).
  for (int s = 0; s < exec.slices(); ++s) {
    if (exec.slices() > 1) exec.forward_slice(s, true);
    for (size_t i = 0; i < exec.node_count(); ++i)
      if (exec.node_output_kept(i) && bad(exec.node_output(i).data, exec.node_output(i).numel()))
        return fmt::format("first in the output of layer '{}'", model_.nodes[i].layer->name());
  }
  for (auto it = params_.entries().rbegin(); it != params_.entries().rend(); ++it)
    if (bad(params_.grads() + it->offset, it->shape.numel()))
      return fmt::format("first in the gradient of {}", it->name);
  for (const ParamEntry& e : params_.entries())
    if (bad(params_.values() + e.offset, e.shape.numel()))
      return fmt::format("in the parameter {}", e.name);
  return "in the loss";
}

int Trainer::ranks() const { return options_.communicator ? options_.communicator->size() : 1; }

int Trainer::rank() const { return options_.communicator ? options_.communicator->rank() : 0; }

// Runs the evaluation executor over the first `count` samples of `data` in order, `batch`
// at a time (the last batch padded), or with `sharded` over this rank's contiguous share
// of those batches; after each batch's forward pass and loss, visit(exec, start, valid)
// reads what it needs of that batch. Whole batches run through `graph` when given; a last
// partial one (its loss counts fewer rows) runs eagerly.
template <typename Visit>
void Trainer::forward_batches(DeviceDataset& data, int count, int batch, StepGraph* graph,
                              Visit&& visit, bool sharded) {
  Executor& exec = eval_executor(batch);
  exec.reset_stats();
  const int64_t batches = (count + batch - 1) / batch;
  const int n = sharded ? ranks() : 1, r = sharded ? rank() : 0;
  const int64_t first = batches * r / n, last = batches * (r + 1) / n;
  int64_t* batch_index = counters_.as<int64_t>() + 1;
  backend_.upload(batch_index, &first, sizeof(first));
  for (int start = static_cast<int>(first * batch); start < last * batch; start += batch) {
    const int valid = std::min(batch, count - start);
    auto queue = [&, start, valid] {
      gather(data, start / batch, batch_index, batch, exec.input().data, exec.labels());
      exec.forward(false);
      exec.loss(valid, false);
      backend_.increment(batch_index, nullptr);
    };
    if (graph && valid == batch)
      graph->run(queue);
    else
      queue();
    visit(exec, start, valid);
  }
}

EvalResult Trainer::evaluate(const Dataset& data, bool confusion) {
  EvalResult r;
  if (data.count == 0) return r;
  if (model_.loss == LossKind::categorical_crossentropy && data.labels.empty())
    fail("evaluation needs labels, but the data set '{}' has none", data.name);
  check_input_shape(data);
  if (model_.loss == LossKind::categorical_crossentropy) check_labels(data, this->classes());
  int batch = eval_executor(data.count).batch();
  if (ranks() > 1) {
    // The smallest batch that a rank's memory allowed, so that the ranks' shares of the
    // batches tile the set.
    std::vector<double> batches(ranks(), 0);
    batches[rank()] = batch;
    options_.communicator->sum(batches.data(), batches.size(), "the evaluation's batch size");
    batch = static_cast<int>(*std::min_element(batches.begin(), batches.end()));
  }
  const int classes = static_cast<int>(eval_executor(batch).output().shape.per_sample());
  if (confusion && model_.loss == LossKind::categorical_crossentropy)
    r.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  std::vector<float> probs;
  DeviceDataset& on_device = device_data(data, batch);
  eval_executor(batch);  // before the graph: a new executor drops the graphs of the old
  std::unique_ptr<StepGraph>& graph = eval_graphs_[&on_device];
  if (!graph) {
    graph = std::make_unique<StepGraph>(backend_, options_.cuda_graphs, kEagerSteps);
    if (on_device.streamed()) graph->disable(DeviceDataset::kNotReplayable);
  }
  forward_batches(
      on_device, data.count, batch, graph.get(),
      [&](const Executor& exec, int start, int valid) {
        if (r.confusion.empty()) return;
        probs.resize(static_cast<size_t>(valid) * classes);
        backend_.download(probs.data(), exec.probabilities(), probs.size() * sizeof(float));
        for (int i = 0; i < valid; ++i) {
          const float* row = probs.data() + static_cast<size_t>(i) * classes;
          const int predicted = static_cast<int>(std::max_element(row, row + classes) - row);
          const int truth = data.labels[start + i];
          if (truth >= 0 && truth < classes) ++r.confusion[truth][predicted];
        }
      },
      /*sharded=*/true);
  float s[kStatsSize];
  backend_.download(s, eval_executor(batch).stats(), sizeof(s));
  double sums[kStatsSize];
  std::copy(s, s + kStatsSize, sums);
  if (Communicator* c = options_.communicator) {
    c->sum(sums, kStatsSize, "the evaluation's sums");
    for (std::vector<int64_t>& row : r.confusion) {
      std::vector<double> counts(row.begin(), row.end());
      c->sum(counts.data(), counts.size(), "the confusion matrix's sums");
      std::copy(counts.begin(), counts.end(), row.begin());
    }
  }
  r.count = data.count;
  r.batch = batch;
  // In float, as one process always computed them.
  const float count = std::max(1.0f, static_cast<float>(sums[kStatCount]));
  r.loss = static_cast<float>(sums[kStatLossSum]) / count;
  r.accuracy = static_cast<float>(sums[kStatCorrect]) / count;
  return r;
}

std::vector<float> Trainer::predict(const Dataset& data, bool logits) {
  if (model_.loss != LossKind::categorical_crossentropy)
    fail("predict needs a classifier (softmax output)");
  check_input_shape(data);
  Executor& exec = eval_executor(data.count);
  const int batch = exec.batch();
  // Unlabelled images leave the executor's labels as they are: zeros, so the loss that
  // computes the probabilities reads a valid class.
  if (data.labels.empty()) backend_.fill(reinterpret_cast<float*>(exec.labels()), batch, 0.0f);
  const int classes = static_cast<int>(exec.output().shape.per_sample());
  std::vector<float> out(static_cast<size_t>(data.count) * classes);
  // Uploaded for this call only: images to predict are often a temporary.
  DeviceDataset images(backend_, data, batch, options_.data_memory);
  forward_batches(images, data.count, batch, nullptr, [&](const Executor& e, int start, int valid) {
    backend_.download(out.data() + static_cast<size_t>(start) * classes,
                      logits ? e.output().data : e.probabilities(),
                      static_cast<size_t>(valid) * classes * sizeof(float));
  });
  return out;
}

}  // namespace plinth
