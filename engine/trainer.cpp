#include "engine/error.h"
#include "engine/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>

#include "engine/early_stopping.h"
#include "engine/progress.h"
#include "engine/rng.h"

namespace plinth {

namespace {

std::atomic<bool> g_stop{false};
constexpr uint64_t kAugmentStream = 0x617567;  // separates the augmentation generator

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

// A data set resident on the device as bytes, uploaded once, plus a buffer of sample
// indices (one epoch's order, padded to whole batches).
struct Trainer::DeviceData {
  DeviceBuffer images, labels, indices;
  int count = 0, padded = 0;

  DeviceData(Backend& be, const Dataset& d, int batch) : count(d.count) {
    images = DeviceBuffer(be, d.images.size());
    be.upload(images.as<void>(), d.images.data(), d.images.size());
    if (!d.labels.empty()) {
      labels = DeviceBuffer(be, d.labels.size() * sizeof(int32_t));
      be.upload(labels.as<void>(), d.labels.data(), d.labels.size() * sizeof(int32_t));
    }
    padded = (count + batch - 1) / batch * batch;
    indices = DeviceBuffer(be, padded * sizeof(int32_t));
    std::vector<int32_t> order(padded);
    for (int i = 0; i < padded; ++i) order[i] = i % count;  // padding repeats early samples
    set_order(be, order);
  }
  void set_order(Backend& be, const std::vector<int32_t>& order) {
    be.upload(indices.as<void>(), order.data(), order.size() * sizeof(int32_t));
  }
};

void Trainer::request_stop() { g_stop = true; }
bool Trainer::stop_requested() { return g_stop; }

Trainer::Trainer(const Model& model, Backend& backend, Parameters& params, TrainOptions options)
    : model_(model), backend_(backend), params_(params), options_(std::move(options)) {
  frozen_.assign(model.nodes.size(), false);
  for (const std::string& name : options_.freeze) {
    const int i = model.find(name);
    if (i < 0) fail("--freeze: the model has no layer named '{}'", name);
    frozen_[i] = true;
  }
  for (const auto& [name, factor] : options_.lr_multiplier)
    if (model.find(name) < 0) fail("--lr-multiplier: the model has no layer named '{}'", name);
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
}

Trainer::~Trainer() = default;

void Trainer::check_input_shape(const Dataset& d) const {
  if (d.count > 0 && (d.channels != model_.input[0] || d.height != model_.input[1] || d.width != model_.input[2]))
    fail("the model '{}' takes {}x{}x{} inputs but '{}' has {}x{}x{}", model_.name, model_.input[0],
         model_.input[1], model_.input[2], d.name, d.channels, d.height, d.width);
}

Trainer::DeviceData& Trainer::device_data(const Dataset& data, int batch) {
  auto& slot = data_[&data];
  if (!slot || slot->padded % batch != 0) slot = std::make_unique<DeviceData>(backend_, data, batch);
  return *slot;
}

Executor& Trainer::eval_executor(int batch) {
  if (!eval_ || eval_->batch() != batch)
    eval_ = std::make_unique<Executor>(model_, params_, backend_, batch, false);
  return *eval_;
}

double Trainer::learning_rate(int epoch, int64_t step, int64_t steps_per_epoch) const {
  const Schedule& s = model_.training.schedule;
  const double lr = model_.optimizer.lr;
  const double total = static_cast<double>(options_.epochs) * steps_per_epoch;
  const double t = std::min(1.0, step / std::max(1.0, total));
  constexpr double pi = 3.14159265358979323846;
  switch (s.kind) {
    case ScheduleKind::step: return lr * std::pow(s.gamma, epoch / s.step_epochs);
    case ScheduleKind::cosine: return s.min_lr + (lr - s.min_lr) * 0.5 * (1 + std::cos(pi * t));
    case ScheduleKind::one_cycle: {
      if (t < s.warmup) return lr * (s.start_factor + (1 - s.start_factor) * t / s.warmup);
      const double u = (t - s.warmup) / (1 - s.warmup);
      return s.min_lr + (lr - s.min_lr) * 0.5 * (1 + std::cos(pi * u));
    }
    default: return lr;
  }
}

std::string Trainer::diagnose_nonfinite(const Executor& exec) const {
  auto bad = [&](const float* x, size_t n) {
    std::vector<float> host(n);
    backend_.download(host.data(), x, n * sizeof(float));
    return std::any_of(host.begin(), host.end(), [](float v) { return !std::isfinite(v); });
  };
  for (size_t i = 0; i < exec.node_count(); ++i)
    if (bad(exec.node_output(i).data, exec.node_output(i).numel()))
      return fmt::format("first in the output of layer '{}'", model_.nodes[i].layer->name());
  for (auto it = params_.entries().rbegin(); it != params_.entries().rend(); ++it)
    if (bad(params_.grads() + it->offset, it->shape.numel()))
      return fmt::format("first in the gradient of {}", it->name);
  for (const ParamEntry& e : params_.entries())
    if (bad(params_.values() + e.offset, e.shape.numel()))
      return fmt::format("in the parameter {}", e.name);
  return "in the loss";
}

TrainState Trainer::fit(const Dataset& train, const Dataset& val, TrainState state,
                        const EpochCallback& on_epoch, const Dataset* per_epoch_test) {
  const int batch = options_.batch_size;
  const int64_t steps = train.count / batch;
  if (steps == 0) fail("the training set has {} samples, fewer than one batch of {}", train.count, batch);
  if (model_.loss == LossKind::categorical_crossentropy && train.labels.empty())
    fail("categorical_crossentropy needs labels, but the training set has none");
  if (options_.early_stopping_patience > 0 && val.count == 0)
    fail("early stopping monitors val_loss, but there is no validation set (use a validation split)");
  const bool augment = model_.training.augment.enabled();
  const int c = model_.input[0], h = model_.input[1], w = model_.input[2];
  if (train.channels != c || train.height != h || train.width != w)
    fail("the model '{}' takes {}x{}x{} inputs but the data has {}x{}x{}", model_.name, c, h, w,
         train.channels, train.height, train.width);

  if (state.batch_in_epoch < 0 || state.batch_in_epoch >= steps)
    fail("cannot resume at batch {} of an epoch of {} batches (was the batch size or the data changed?)",
         state.batch_in_epoch, steps);
  Executor exec(model_, params_, backend_, batch, true, frozen_, options_.seed);
  DeviceData& data = device_data(train, batch);
  DeviceBuffer staging = augment ? DeviceBuffer(backend_, exec.input().numel() * sizeof(float)) : DeviceBuffer();
  float* grad_sq = scalars_.as<float>();
  float* clip = grad_sq + 1;
  float* checks = grad_sq + 2;
  // On the CPU a per-step check costs nothing; on a GPU it would stall the stream, so it
  // runs every 50 steps unless skipping bad steps needs it each step.
  const bool cpu = backend_.kind() == DeviceKind::cpu;
  const int64_t check_every = (cpu || options_.on_nan == OnNan::skip_step) ? 1 : 50;
  Progress progress(options_.verbosity != Verbosity::quiet);
  g_stop = false;

  for (int epoch = state.epoch; epoch < options_.epochs; ++epoch) {
    data.set_order(backend_, [&] {
      std::vector<int32_t> order = epoch_permutation(train.count, options_.seed, epoch);
      order.resize(data.padded, 0);
      return order;
    }());
    const uint64_t augment_seed = hash_combine(options_.seed ^ kAugmentStream, epoch);
    exec.reset_stats();
    const int64_t first = state.batch_in_epoch;
    if (first > 0) {
      const float partial[kStatsSize] = {float(state.partial_stats[0]), float(state.partial_stats[1]),
                                         float(state.partial_stats[2]), float(state.partial_stats[3])};
      backend_.upload(exec.stats(), partial, sizeof(partial));
    }
    progress.begin_epoch(epoch + 1, options_.epochs, steps);
    const auto start = std::chrono::steady_clock::now();
    double lr = 0;
    int64_t b = first;
    float last_good[kStatsSize] = {};
    backend_.download(last_good, exec.stats(), sizeof(last_good));
    backend_.fill(checks, kStatsSize, 0.0f);
    bool stop = false;
    for (; b < steps && !stop; ++b) {
      const int32_t* idx = data.indices.as<int32_t>() + b * batch;
      backend_.gather_batch(data.images.as<uint8_t>(), data.labels.as<int32_t>(), idx, batch,
                            c * h * w, mean_, std_, augment ? staging.as<float>() : exec.input().data,
                            exec.labels());
      if (augment)
        backend_.augment(model_.training.augment, staging.as<float>(), exec.input().data, batch, c, h, w, idx, augment_seed);
      exec.forward(true);
      exec.loss(batch, true);
      exec.backward();
      const float* scale = nullptr;
      if (options_.clip_norm > 0) {
        backend_.fill(grad_sq, 1, 0.0f);
        backend_.sum_squares(params_.grads(), params_.size(), grad_sq);
        backend_.clip_scale(grad_sq, options_.clip_norm, clip);
        scale = clip;
      }
      backend_.count_nonfinite(params_.grads(), params_.size(), checks);
      bool skip = false;
      if ((state.step + 1) % check_every == 0 || b + 1 == steps) {
        float bad[kStatsSize], now[kStatsSize];
        backend_.download(bad, checks, sizeof(bad));
        backend_.download(now, exec.stats(), sizeof(now));
        if (bad[kStatNonFinite] > 0 || !std::isfinite(now[kStatLossSum])) {
          const std::string where = diagnose_nonfinite(exec);
          if (options_.on_nan == OnNan::stop)
            fail("non-finite loss or gradient at step {} (epoch {}, batch {}), {}; stopping "
                 "(try a lower --lr or --clip-norm; --on-nan skip-step skips such steps)",
                 state.step + 1, epoch + 1, b + 1, where);
          // Skipped steps do not advance the step count: epoch and batch say which one it was.
          progress.line(fmt::format("warning: skipped step (epoch {}, batch {}): non-finite values, {}", epoch + 1,
                                    b + 1, where));
          backend_.fill(checks, kStatsSize, 0.0f);
          backend_.upload(exec.stats(), last_good, sizeof(last_good));  // keep the epoch's loss finite
          skip = true;
        } else {
          std::copy(now, now + kStatsSize, last_good);
        }
      }
      lr = learning_rate(epoch, state.step, steps);
      if (!skip) {
        backend_.increment(params_.step());
        for (const Group& g : groups_) {
          OptimizerSpec spec = model_.optimizer;
          spec.lr = static_cast<float>(lr * g.lr_multiplier);
          backend_.optimizer_update(spec, params_.values() + g.offset, params_.grads() + g.offset,
                                    params_.moment1() + g.offset, params_.moment2() + g.offset,
                                    g.count, params_.step(), scale);
        }
        ++state.step;
      }
      if (progress.wants_update()) {
        float s[kStatsSize];
        backend_.download(s, exec.stats(), sizeof(s));
        progress.update(b + 1, s[kStatLossSum] / std::max(1.0f, s[kStatCount]),
                        s[kStatCorrect] / std::max(1.0f, s[kStatCount]));
      }
      stop = g_stop || (options_.max_steps >= 0 && state.step >= options_.max_steps);
    }
    float s[kStatsSize];
    backend_.download(s, exec.stats(), sizeof(s));
    const double seconds = seconds_since(start) + (first > 0 ? state.partial_seconds : 0);
    if (b < steps) {  // stopped inside the epoch: remember where, to resume exactly there
      state.batch_in_epoch = b;
      for (int i = 0; i < kStatsSize; ++i) state.partial_stats[i] = s[i];
      state.partial_seconds = seconds;
      state.finished_early = true;
      progress.end_epoch(fmt::format("stopped at step {}/{} of epoch {}", b, steps, epoch + 1));
      return state;
    }
    EpochRecord r;
    r.epoch = epoch + 1;
    r.loss = s[kStatLossSum] / std::max(1.0f, s[kStatCount]);
    r.accuracy = s[kStatCorrect] / std::max(1.0f, s[kStatCount]);
    r.lr = lr;
    r.steps = steps;
    r.seconds = seconds;
    r.samples_per_second = (steps - first) * batch / std::max(1e-9, seconds_since(start));
    if (val.count > 0) {
      const EvalResult v = evaluate(val);
      r.val_loss = v.loss;
      r.val_accuracy = v.accuracy;
    }
    if (per_epoch_test) r.test_accuracy = evaluate(*per_epoch_test).accuracy;
    std::string summary = fmt::format("{}/{} - {:.1f}s - loss: {:.4f} - accuracy: {:.4f}", steps, steps,
                                      r.seconds, r.loss, r.accuracy);
    if (val.count > 0) summary += fmt::format(" - val_loss: {:.4f} - val_accuracy: {:.4f}", r.val_loss, r.val_accuracy);
    if (per_epoch_test) summary += fmt::format(" - test_accuracy: {:.4f}", r.test_accuracy);
    summary += fmt::format(" - {:.0f} samples/s - lr: {:.3g}", r.samples_per_second, r.lr);
    progress.end_epoch(summary);
    state.history.push_back(r);
    state.epoch = epoch + 1;
    state.batch_in_epoch = 0;
    state.partial_seconds = 0;
    for (double& v : state.partial_stats) v = 0;
    bool go_on = !on_epoch || on_epoch(state);
    if (options_.target_accuracy) {
      const double acc = per_epoch_test ? r.test_accuracy : r.val_accuracy;
      if (acc >= *options_.target_accuracy) go_on = false;
    }
    const int patience = options_.early_stopping_patience;
    if (patience > 0 && epochs_without_improvement(state.history, options_.early_stopping_min_delta) >= patience) {
      progress.line(fmt::format("early stopping: val_loss has not improved by more than {} for {} epoch{}",
                                options_.early_stopping_min_delta, patience, patience == 1 ? "" : "s"));
      go_on = false;
    }
    if (!go_on || g_stop || (options_.max_steps >= 0 && state.step >= options_.max_steps)) {
      state.finished_early = state.epoch < options_.epochs;
      break;
    }
  }
  return state;
}

EvalResult Trainer::evaluate(const Dataset& data, bool confusion) {
  EvalResult r;
  if (data.count == 0) return r;
  if (model_.loss == LossKind::categorical_crossentropy && data.labels.empty())
    fail("evaluation needs labels, but the data set '{}' has none", data.name);
  check_input_shape(data);
  const int batch = std::min(options_.eval_batch_size, data.count);
  Executor& exec = eval_executor(batch);
  DeviceData& d = device_data(data, batch);
  const int c = model_.input[0], h = model_.input[1], w = model_.input[2];
  const bool categorical = model_.loss == LossKind::categorical_crossentropy;
  const int classes = static_cast<int>(exec.output().shape.per_sample());
  if (confusion && categorical) r.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  std::vector<float> probs;
  exec.reset_stats();
  for (int start = 0; start < data.count; start += batch) {
    const int valid = std::min(batch, data.count - start);
    backend_.gather_batch(d.images.as<uint8_t>(), d.labels.as<int32_t>(), d.indices.as<int32_t>() + start,
                          batch, c * h * w, mean_, std_, exec.input().data, exec.labels());
    exec.forward(false);
    exec.loss(valid, false);
    if (!r.confusion.empty()) {
      probs.resize(static_cast<size_t>(valid) * classes);
      backend_.download(probs.data(), exec.probabilities(), probs.size() * sizeof(float));
      for (int i = 0; i < valid; ++i) {
        const float* row = probs.data() + static_cast<size_t>(i) * classes;
        const int predicted = static_cast<int>(std::max_element(row, row + classes) - row);
        const int truth = data.labels[start + i];
        if (truth >= 0 && truth < classes) ++r.confusion[truth][predicted];
      }
    }
  }
  float s[kStatsSize];
  backend_.download(s, exec.stats(), sizeof(s));
  r.count = data.count;
  r.loss = s[kStatLossSum] / std::max(1.0f, s[kStatCount]);
  r.accuracy = s[kStatCorrect] / std::max(1.0f, s[kStatCount]);
  return r;
}

std::vector<float> Trainer::predict(const Dataset& data, bool logits) {
  if (model_.loss != LossKind::categorical_crossentropy) fail("predict needs a classifier (softmax output)");
  const int batch = std::min(options_.eval_batch_size, std::max(1, data.count));
  Executor& exec = eval_executor(batch);
  check_input_shape(data);
  Dataset labelled = data;
  if (labelled.labels.empty()) labelled.labels.assign(data.count, 0);  // loss needs some label
  DeviceData d(backend_, labelled, batch);
  const int c = model_.input[0], h = model_.input[1], w = model_.input[2];
  const int classes = static_cast<int>(exec.output().shape.per_sample());
  std::vector<float> out(static_cast<size_t>(data.count) * classes);
  for (int start = 0; start < data.count; start += batch) {
    const int valid = std::min(batch, data.count - start);
    backend_.gather_batch(d.images.as<uint8_t>(), d.labels.as<int32_t>(), d.indices.as<int32_t>() + start,
                          batch, c * h * w, mean_, std_, exec.input().data, exec.labels());
    exec.forward(false);
    exec.loss(valid, false);
    backend_.download(out.data() + static_cast<size_t>(start) * classes,
                      logits ? exec.output().data : exec.probabilities(),
                      static_cast<size_t>(valid) * classes * sizeof(float));
  }
  return out;
}

}  // namespace plinth
