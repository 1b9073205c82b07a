// Trainer::fit: the training loop over epochs and steps, and what it tells the hooks.
#include "engine/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "engine/communicator.h"
#include "engine/device_dataset.h"
#include "engine/rng.h"

namespace plinth {

namespace {

constexpr uint64_t kAugmentStream = 0x617567;  // separates the augmentation generator

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

RunningMetrics running_metrics(const float (&stats)[kStatsSize]) {
  const float count = std::max(1.0f, stats[kStatCount]);
  return {stats[kStatLossSum] / count, stats[kStatCorrect] / count};
}

// fit()'s checks of its inputs, made before anything is allocated; returns the number of
// whole batches per epoch.
int64_t checked_batches_per_epoch(const Model& model, const Dataset& train, int batch,
                                  const TrainState& start) {
  const int64_t batches = train.count / batch;
  if (batches == 0)
    fail("the training set has {} samples, fewer than one batch of {}", train.count, batch);
  if (model.loss == LossKind::categorical_crossentropy && train.labels.empty())
    fail("categorical_crossentropy needs labels, but the training set has none");
  if (model.loss == LossKind::categorical_crossentropy)
    check_labels(train, static_cast<int>(model.shapes(1).back().output.per_sample()));
  const int c = model.input[0], h = model.input[1], w = model.input[2];
  if (train.channels != c || train.height != h || train.width != w)
    fail("the model '{}' takes {}x{}x{} inputs but the data has {}x{}x{}", model.name, c, h, w,
         train.channels, train.height, train.width);
  if (start.batch_in_epoch < 0 || start.batch_in_epoch >= batches)
    fail(
        "cannot resume at batch {} of an epoch of {} batches (was the batch size or "
        "the data changed?)",
        start.batch_in_epoch, batches);
  return batches;
}

}  // namespace

RunningMetrics BatchEnd::metrics() const {
  float s[kStatsSize];
  backend_->download(s, stats_, sizeof(s));
  return running_metrics(s);
}

// One fit(): the loop over epochs and steps. It owns the training executor and the
// training set on the device, and tells the hooks what happens.
class Trainer::Run {
 public:
  Run(Trainer& trainer, const Dataset& train, const Dataset& val, const Dataset* test,
      TrainState start, const std::vector<TrainHook*>& hooks);
  TrainState fit();

 private:
  void start_from_rank0();
  bool train_epoch(int epoch);
  void begin_epoch(int epoch);
  void train_step(int epoch, int64_t batch);
  void gather_batch(int64_t batch);
  void average_gradients();
  bool step_is_finite(int epoch, int64_t batch);
  const float* clip_scale();
  void update_weights(const float* scale);
  bool should_stop();
  void stop_inside_epoch(int64_t next_batch);
  bool finish_epoch(int epoch);
  EpochRecord epoch_record(int epoch);
  double epoch_seconds() const;
  void sum_over_ranks(const float (&stats)[kStatsSize], double (&sums)[kStatsSize]);

  Trainer& t_;
  Backend& backend_;
  const Dataset& train_;
  const Dataset& val_;
  const Dataset* test_;
  const std::vector<TrainHook*>& hooks_;
  TrainState state_;
  Communicator* const ranks_;  // null for one process
  const int global_batch_;     // options' batch_size
  const int batch_;            // this rank's shard of each global batch
  const int64_t batches_;      // global batches per epoch
  const int64_t check_every_;  // steps between checks for non-finite values
  Executor exec_;
  DeviceDataset& data_;
  const bool augment_;
  DeviceBuffer staging_;  // with augment_: the gathered batch, before augmentation
  float* grad_sq_;        // device scalars: the gradients' sum of squares,
  float* clip_;           // the clipping scale,
  float* checks_;         // and the step checks' counts (kStatsSize floats)
  bool stop_ = false;     // a hook or max_steps asked to stop
  // The epoch under way.
  uint64_t augment_seed_ = 0;
  int64_t first_batch_ = 0;  // > 0 when it resumed midway
  Clock::time_point started_;
  double lr_ = 0;                     // of the last step
  float last_good_[kStatsSize] = {};  // its stats at the last check that found all finite
};

Trainer::Run::Run(Trainer& trainer, const Dataset& train, const Dataset& val, const Dataset* test,
                  TrainState start, const std::vector<TrainHook*>& hooks)
    : t_(trainer),
      backend_(trainer.backend_),
      train_(train),
      val_(val),
      test_(test),
      hooks_(hooks),
      state_(std::move(start)),
      ranks_(trainer.options_.communicator),
      global_batch_(trainer.options_.batch_size),
      batch_(global_batch_ / trainer.ranks()),  // the constructor checked that it divides
      batches_(checked_batches_per_epoch(trainer.model_, train, global_batch_, state_)),
      // On the CPU a per-step check costs nothing; on a GPU it would stall the stream, so
      // it runs every 50 steps unless skipping bad steps needs it each step.
      check_every_(backend_.kind() == DeviceKind::cpu || trainer.options_.on_nan == OnNan::skip_step
                       ? 1
                       : 50),
      // Rank 0 keeps the seed of one process; the others draw their own dropout masks.
      exec_(trainer.model_, trainer.params_, backend_, batch_, true, trainer.frozen_,
            trainer.rank() == 0 ? trainer.options_.seed
                                : hash_combine(trainer.options_.seed, trainer.rank())),
      data_(trainer.device_data(train, batch_)),
      augment_(trainer.model_.training.augment.enabled()),
      staging_(augment_ ? DeviceBuffer(backend_, exec_.input().numel() * sizeof(float))
                        : DeviceBuffer()),
      grad_sq_(trainer.scalars_.as<float>()),
      clip_(grad_sq_ + 1),
      checks_(grad_sq_ + 2) {}

TrainState Trainer::Run::fit() {
  const TrainBegin begin{t_.options_.epochs, batches_, global_batch_, val_.count > 0,
                         test_ != nullptr};
  for (TrainHook* h : hooks_) h->on_train_begin(begin);
  start_from_rank0();
  for (int epoch = state_.epoch; epoch < t_.options_.epochs; ++epoch)
    if (!train_epoch(epoch) || !finish_epoch(epoch)) break;
  for (TrainHook* h : hooks_) h->on_train_end(state_);
  return state_;
}

// Every rank starts from rank 0's weights and optimizer state, whatever each read or drew.
void Trainer::Run::start_from_rank0() {
  if (!ranks_) return;
  const Parameters& p = t_.params_;
  for (float* arena : {p.values(), p.moment1(), p.moment2()})
    ranks_->broadcast(backend_, arena, p.size(), "the broadcast of rank 0's weights");
  int64_t step = p.download_step();
  ranks_->broadcast(&step, sizeof(step), 0, "the broadcast of rank 0's step");
  p.upload_step(step);
}

// Trains the epoch's batches, from where a stopped run left it if it did; false when the
// run stopped inside the epoch.
bool Trainer::Run::train_epoch(int epoch) {
  begin_epoch(epoch);
  for (int64_t b = first_batch_; b < batches_; ++b) {
    train_step(epoch, b);
    const BatchEnd end(epoch + 1, b + 1, state_.step, backend_, exec_.stats());
    for (TrainHook* h : hooks_) h->on_batch_end(end);
    // A stop after the last batch waits for the epoch's evaluation (finish_epoch).
    if (should_stop() && b + 1 < batches_) {
      stop_inside_epoch(b + 1);
      return false;
    }
  }
  return true;
}

// The epoch's sample order and augmentation stream, and its statistics so far when it
// resumes midway.
void Trainer::Run::begin_epoch(int epoch) {
  std::vector<int32_t> order = epoch_permutation(train_.count, t_.options_.seed, epoch);
  order.resize(data_.padded(), 0);
  data_.set_order(order);
  augment_seed_ = hash_combine(t_.options_.seed ^ kAugmentStream, epoch);
  exec_.reset_stats();
  first_batch_ = state_.batch_in_epoch;
  // The saved sums are the ranks' total: rank 0 carries them on, the others start at zero.
  if (first_batch_ > 0 && t_.rank() == 0) {
    float partial[kStatsSize];
    for (int i = 0; i < kStatsSize; ++i) partial[i] = static_cast<float>(state_.partial_stats[i]);
    backend_.upload(exec_.stats(), partial, sizeof(partial));
  }
  for (TrainHook* h : hooks_) h->on_epoch_begin(epoch + 1);
  started_ = Clock::now();
  lr_ = 0;
  backend_.download(last_good_, exec_.stats(), sizeof(last_good_));
  backend_.fill(checks_, kStatsSize, 0.0f);
}

void Trainer::Run::train_step(int epoch, int64_t batch) {
  gather_batch(batch);
  exec_.forward(true);
  exec_.loss(batch_, true);
  exec_.backward();
  average_gradients();
  const float* scale = clip_scale();
  backend_.count_nonfinite(t_.params_.grads(), t_.params_.size(), checks_);
  const bool finite = step_is_finite(epoch, batch);
  lr_ = t_.learning_rate(epoch, state_.step, batches_);
  if (!finite) return;
  update_weights(scale);
  ++state_.step;
}

// This rank's shard of global batch b of the epoch's order into the executor's input,
// augmented if the recipe says so.
void Trainer::Run::gather_batch(int64_t b) {
  const Model& m = t_.model_;
  const int c = m.input[0], h = m.input[1], w = m.input[2];
  const int64_t start = b * global_batch_ + int64_t{t_.rank()} * batch_;
  const int32_t* sample_ids = t_.gather(
      data_, start, batch_, augment_ ? staging_.as<float>() : exec_.input().data, exec_.labels());
  if (augment_)  // keyed by each sample's index in the data set, wherever its pixels are
    backend_.augment(m.training.augment, staging_.as<float>(), exec_.input().data, batch_, c, h, w,
                     sample_ids, augment_seed_);
}

// Each rank's gradients are the mean over its shard; their mean over the ranks is the
// gradient of the global batch, as one process would compute it. Every rank then takes the
// same optimizer step.
void Trainer::Run::average_gradients() {
  if (ranks_) ranks_->average(backend_, t_.params_.grads(), t_.params_.size());
}

// Whether the step may update the weights. Non-finite values are counted every step and
// checked every check_every_ steps and at the epoch's last batch; a failed check stops the
// run or, with on_nan = skip_step, skips the step.
bool Trainer::Run::step_is_finite(int epoch, int64_t b) {
  if ((state_.step + 1) % check_every_ != 0 && b + 1 != batches_) return true;
  float bad[kStatsSize], now[kStatsSize];
  backend_.download(bad, checks_, sizeof(bad));
  backend_.download(now, exec_.stats(), sizeof(now));
  bool finite = bad[kStatNonFinite] == 0 && std::isfinite(now[kStatLossSum]);
  if (ranks_) finite = !ranks_->any(!finite, "the check for non-finite values");
  if (finite) {
    std::copy(now, now + kStatsSize, last_good_);
    return true;
  }
  const std::string where = t_.diagnose_nonfinite(exec_);
  if (t_.options_.on_nan == OnNan::stop)
    throw NonFiniteError(
        fmt::format("non-finite loss or gradient at step {} (epoch {}, batch {}), {}; stopping",
                    state_.step + 1, epoch + 1, b + 1, where));
  // Skipped steps do not advance the step count: epoch and batch say which one it was.
  const SkippedStep skipped{epoch + 1, b + 1, where};
  for (TrainHook* h : hooks_) h->on_step_skipped(skipped);
  backend_.fill(checks_, kStatsSize, 0.0f);
  backend_.upload(exec_.stats(), last_good_, sizeof(last_good_));  // keep the epoch's loss finite
  return false;
}

// The device scale that clips the gradients to clip_norm, or null when clipping is off.
const float* Trainer::Run::clip_scale() {
  const float max_norm = t_.options_.clip_norm;
  if (max_norm <= 0) return nullptr;
  backend_.fill(grad_sq_, 1, 0.0f);
  backend_.sum_squares(t_.params_.grads(), t_.params_.size(), grad_sq_);
  backend_.clip_scale(grad_sq_, max_norm, clip_);
  return clip_;
}

// One optimizer call per group of trainable parameters with the same learning rate.
void Trainer::Run::update_weights(const float* scale) {
  Parameters& p = t_.params_;
  backend_.increment(p.step());
  for (const Group& g : t_.groups_) {
    OptimizerSpec spec = t_.model_.optimizer;
    spec.lr = static_cast<float>(lr_ * g.lr_multiplier);
    backend_.optimizer_update(spec, p.values() + g.offset, p.grads() + g.offset,
                              p.moment1() + g.offset, p.moment2() + g.offset, g.count, p.step(),
                              scale);
  }
}

// Whether a hook or max_steps asks to stop. Once asked, the run stops.
bool Trainer::Run::should_stop() {
  for (TrainHook* h : hooks_) stop_ = h->should_stop() || stop_;
  const int64_t max_steps = t_.options_.max_steps;
  stop_ = stop_ || (max_steps >= 0 && state_.step >= max_steps);
  if (ranks_) stop_ = ranks_->any(stop_, "the agreement to stop");  // e.g. one rank's signal
  return stop_;
}

// Remembers where in the epoch the run stopped, so that a resumed run continues exactly.
void Trainer::Run::stop_inside_epoch(int64_t next_batch) {
  float s[kStatsSize];
  backend_.download(s, exec_.stats(), sizeof(s));
  state_.batch_in_epoch = next_batch;
  sum_over_ranks(s, state_.partial_stats);
  state_.partial_seconds = epoch_seconds();
  state_.finished_early = true;
}

// Records the epoch with its evaluations and shows it to the hooks; false when the run
// stops here.
bool Trainer::Run::finish_epoch(int epoch) {
  const EpochRecord record = epoch_record(epoch);
  state_.history.push_back(record);
  state_.epoch = epoch + 1;
  state_.batch_in_epoch = 0;
  state_.partial_seconds = 0;
  std::fill(std::begin(state_.partial_stats), std::end(state_.partial_stats), 0.0);
  bool go_on = true;
  for (TrainHook* h : hooks_) go_on = h->on_epoch_end(record, state_) && go_on;
  if (ranks_) go_on = !ranks_->any(!go_on, "the agreement to stop");
  if (go_on && !should_stop()) return true;
  state_.finished_early = state_.epoch < t_.options_.epochs;
  return false;
}

EpochRecord Trainer::Run::epoch_record(int epoch) {
  float s[kStatsSize];
  backend_.download(s, exec_.stats(), sizeof(s));
  double sums[kStatsSize];
  sum_over_ranks(s, sums);
  std::copy(sums, sums + kStatsSize, s);
  const RunningMetrics m = running_metrics(s);
  EpochRecord r;
  r.epoch = epoch + 1;
  r.loss = m.loss;
  r.accuracy = m.accuracy;
  r.lr = lr_;
  r.steps = batches_;
  r.seconds = epoch_seconds();
  r.samples_per_second = static_cast<double>((batches_ - first_batch_) * global_batch_) /
                         std::max(1e-9, seconds_since(started_));
  if (val_.count > 0) {
    const EvalResult v = t_.evaluate(val_);
    r.val_loss = v.loss;
    r.val_accuracy = v.accuracy;
  }
  if (test_) r.test_accuracy = t_.evaluate(*test_).accuracy;
  return r;
}

// The epoch's sums (loss, correct, count) over the ranks' shards.
void Trainer::Run::sum_over_ranks(const float (&stats)[kStatsSize], double (&sums)[kStatsSize]) {
  std::copy(stats, stats + kStatsSize, sums);
  if (ranks_) ranks_->sum(sums, kStatsSize, "the sums of the epoch's loss and accuracy");
}

// Seconds spent training this epoch, including those before a stop when it was resumed.
double Trainer::Run::epoch_seconds() const {
  return seconds_since(started_) + (first_batch_ > 0 ? state_.partial_seconds : 0);
}

TrainState Trainer::fit(const Dataset& train, const Dataset& val, TrainState start,
                        const std::vector<TrainHook*>& hooks, const Dataset* per_epoch_test) {
  return Run(*this, train, val, per_epoch_test, std::move(start), hooks).fit();
}

}  // namespace plinth
