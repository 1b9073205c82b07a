// Trainer::fit: the training loop over epochs and steps, and what it tells the hooks.
//
// A step queues the same ops with the same arguments at every batch of an epoch, so that a
// backend that records graphs replays it (StepGraph): the batch's place in the epoch's
// order is a device counter, the learning rate is evaluated on the device from the step
// counter, and the check for non-finite values is a device count that the optimizer reads
// to skip the update. The host only reads that count, every step where reading is free
// (the CPU) or asked for (on_nan = skip_step), else every kGpuCheckEvery steps. A training
// set streamed from the host (DeviceDataset) has its batches copied in by the host, so its
// steps run eagerly.
//
// With ranks (TrainOptions::communicator) each rank trains on its shard of every global
// batch, read from its own share of the epoch's order, and the gradients are averaged
// right after the backward pass; the ranks agree on the non-finite count (its mean over
// them) and on stopping. Averaging over MPI goes through the host, so those steps run
// eagerly; over NCCL they are replayed like any other.
//
// With unlabelled images (TrainOptions::unlabelled), each step after the warm-up epochs
// adds their share (Trainer::Unlabelled, engine/semi_supervised.h) to the gradients
// between the backward pass and the checks.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "engine/communicator.h"
#include "engine/device_dataset.h"
#include "engine/rng.h"
#include "engine/semi_supervised.h"
#include "engine/step_graph.h"
#include "engine/thread_governor.h"
#include "engine/trainer.h"

namespace plinth {

namespace {

constexpr uint64_t kAugmentStream = 0x617567;  // separates the augmentation generator
// Steps between the host's looks at the non-finite count on a GPU with on_nan = stop; the
// device keeps bad gradients from the weights meanwhile.
constexpr int64_t kGpuCheckEvery = 50;

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

// This rank's share of the epoch's order: position b * shard + i holds the order's
// b * global + rank * shard + i, so that batch b of the share is the rank's shard of global
// batch b, read as one process reads its batches.
std::vector<int32_t> rank_order(const std::vector<int32_t>& order, int64_t batches, int global,
                                int shard, int rank) {
  std::vector<int32_t> share(static_cast<size_t>(batches) * shard);
  for (int64_t b = 0; b < batches; ++b)
    std::copy_n(order.begin() + b * global + int64_t{rank} * shard, shard,
                share.begin() + b * shard);
  return share;
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
  ~Run();
  TrainState fit();
  std::vector<double> time_steps(int64_t warmup, int64_t steps, int windows);

 private:
  bool train_epoch(int epoch);
  void start_from_rank0();
  void share_buffers_from_rank0();
  void begin_epoch(int epoch);
  void queue_step(int64_t batch);
  void average_gradients();
  void agree_on_checks();
  void queue_gradients(int64_t batch);
  const float* queue_clip_scale();
  void queue_update(const float* scale);
  bool step_taken(int epoch, int64_t batch);
  bool look_at_checks(int epoch, int64_t batch);
  [[noreturn]] void stop_on_nonfinite(int epoch, int64_t batch);
  void set_batch_index(int64_t batch);
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
  const bool skip_bad_steps_;  // on_nan = skip_step
  const int64_t check_every_;  // steps between the host's looks at the non-finite count
  Executor exec_;
  DeviceDataset& data_;
  const bool augment_;
  DeviceBuffer staging_;  // with augment_: the gathered batch, before augmentation
  // With on_nan = skip_step: the layers' buffers (running statistics) before the step, which
  // a skipped step's forward pass must not have moved.
  DeviceBuffer buffers_before_;
  float* grad_sq_;        // device scalars: the gradients' sum of squares,
  float* clip_;           // the clipping scale,
  float* checks_;         // and the step checks' counts (kStatsSize floats)
  int64_t* batch_index_;  // device counter: the batch within the epoch's order
  StepGraph graph_;
  std::optional<ThreadGovernor> governor_;  // with adapt_threads, in one process
  std::unique_ptr<Unlabelled> unlabelled_;  // semi-supervised training, else null
  bool stop_ = false;                       // a hook or max_steps asked to stop
  // The epoch under way.
  uint64_t augment_seed_ = 0;
  bool semi_supervised_ = false;  // its steps take unlabelled images too
  std::vector<LrSchedule> lr_;    // per parameter group
  int64_t first_batch_ = 0;       // > 0 when it resumed midway
  int64_t first_step_ = 0;        // state_.step when it began
  Clock::time_point started_;
  double last_lr_ = 0;                // of the last step
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
      skip_bad_steps_(trainer.options_.on_nan == OnNan::skip_step),
      // Reading the count costs nothing on the CPU; on a GPU it waits for the queued steps.
      check_every_(backend_.kind() == DeviceKind::cpu || skip_bad_steps_ ? 1 : kGpuCheckEvery),
      // Rank 0 keeps the seed of one process; the others draw their own dropout masks.
      exec_(trainer.model_, trainer.params_, backend_, batch_, true, trainer.frozen_,
            trainer.rank() == 0 ? trainer.options_.seed
                                : hash_combine(trainer.options_.seed, trainer.rank()),
            trainer.executor_slice(batch_)),
      data_(trainer.device_data(train, batch_)),
      augment_(trainer.model_.training.augment.enabled()),
      staging_(augment_ ? DeviceBuffer(backend_, exec_.input().numel() * sizeof(float))
                        : DeviceBuffer()),
      buffers_before_(skip_bad_steps_ ? DeviceBuffer(backend_, trainer.params_.buffer_bytes())
                                      : DeviceBuffer()),
      grad_sq_(trainer.scalars_.as<float>()),
      clip_(grad_sq_ + 1),
      checks_(grad_sq_ + 2),
      batch_index_(trainer.counters_.as<int64_t>()),
      graph_(backend_, trainer.options_.cuda_graphs, kEagerSteps) {
  if (data_.streamed()) graph_.disable(DeviceDataset::kNotReplayable);
  if (const Dataset* unlabelled = trainer.options_.unlabelled) {
    unlabelled_ = std::make_unique<Unlabelled>(trainer, *unlabelled, batches_, batch_);
    if (unlabelled_->streamed()) graph_.disable(DeviceDataset::kNotReplayable);
  }
  if (trainer.options_.adapt_threads && !ranks_ && backend_.max_threads() > 1) {
    governor_.emplace(backend_);
    const auto slice_done = [this](int samples) { governor_->slice_done(samples); };
    exec_.on_slice_done(slice_done);
    if (unlabelled_) unlabelled_->on_slice_done(slice_done);
  }
  if (ranks_) {
    ranks_->attach(backend_);
    if (!ranks_->averages_on_stream(backend_)) graph_.disable(Communicator::kNotReplayable);
  }
}

// What ran eagerly and what was replayed, and the arena's size, stay with the trainer, also
// after an error.
Trainer::Run::~Run() {
  t_.training_graph_ = {graph_.replays(), graph_.eager_runs(), graph_.launches(),
                        graph_.eager_reason()};
  t_.training_arena_bytes_ = exec_.arena_bytes();
  t_.training_slice_ = exec_.slice();
  if (governor_) backend_.use_threads(backend_.max_threads());  // what the caller made it with
}

TrainState Trainer::Run::fit() {
  const TrainBegin begin{t_.options_.epochs, batches_, global_batch_, val_.count > 0,
                         test_ != nullptr};
  for (TrainHook* h : hooks_) h->on_train_begin(begin);
  start_from_rank0();
  for (int epoch = state_.epoch; epoch < t_.options_.epochs; ++epoch)
    if (!train_epoch(epoch) || !finish_epoch(epoch)) break;
  share_buffers_from_rank0();  // what rank 0 saves is what every rank evaluates with
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

// The layers' buffers (BatchNorm's running statistics) are not trained, so no gradient
// average keeps them equal: each rank's follow its own shards. As PyTorch's
// DistributedDataParallel does with broadcast_buffers, rank 0's are given to every rank,
// here before each evaluation (sharded over the ranks) and at the end, so that every shard
// is evaluated with the statistics rank 0 saves.
void Trainer::Run::share_buffers_from_rank0() {
  const Parameters& p = t_.params_;
  if (!ranks_ || p.buffer_bytes() == 0) return;
  std::vector<std::byte> host = p.download_buffers();
  ranks_->broadcast(host.data(), host.size(), 0, "the broadcast of rank 0's running statistics");
  p.upload_buffers(host);
}

// Trains the epoch's batches, from where a stopped run left it if it did; false when the
// run stopped inside the epoch.
bool Trainer::Run::train_epoch(int epoch) {
  begin_epoch(epoch);
  for (int64_t b = first_batch_; b < batches_; ++b) {
    last_lr_ = t_.learning_rate(epoch, state_.step, batches_);
    graph_.run([this, b] { queue_step(b); });
    if (step_taken(epoch, b)) ++state_.step;
    const BatchEnd end(epoch + 1, b + 1, state_.step, backend_, exec_.stats());
    for (TrainHook* h : hooks_) h->on_batch_end(end);
    // A stop after the last batch waits for the epoch's evaluation (finish_epoch). A stop
    // inside the epoch records where the run is, so the steps since the host's last look
    // must have been finite.
    if (should_stop() && b + 1 < batches_) {
      if (check_every_ > 1) look_at_checks(epoch, b);
      stop_inside_epoch(b + 1);
      return false;
    }
  }
  return true;
}

// The epoch's sample order, augmentation stream and learning rates, where its batches
// start, and its statistics so far when it resumes midway. The step's graph records these
// per-epoch arguments again.
void Trainer::Run::begin_epoch(int epoch) {
  std::vector<int32_t> order = epoch_permutation(train_.count, t_.options_.seed, epoch);
  if (ranks_) order = rank_order(order, batches_, global_batch_, batch_, t_.rank());
  order.resize(data_.padded(), 0);
  data_.set_order(order);
  augment_seed_ = hash_combine(t_.options_.seed ^ kAugmentStream, epoch);
  const double total_steps = static_cast<double>(t_.options_.epochs) * batches_;
  lr_.clear();
  for (const Group& g : t_.groups_)
    lr_.push_back({t_.model_.training.schedule, epoch, total_steps, g.lr_multiplier});
  semi_supervised_ = unlabelled_ && unlabelled_->active(epoch);
  if (unlabelled_) unlabelled_->begin_epoch(epoch, state_);
  graph_.recapture();
  exec_.reset_stats();
  first_batch_ = state_.batch_in_epoch;
  first_step_ = state_.step;
  set_batch_index(first_batch_);
  // The saved sums are the ranks' total: rank 0 carries them on, the others start at zero.
  if (first_batch_ > 0 && t_.rank() == 0) {
    float partial[kStatsSize];
    for (int i = 0; i < kStatsSize; ++i) partial[i] = static_cast<float>(state_.partial_stats[i]);
    backend_.upload(exec_.stats(), partial, sizeof(partial));
  }
  for (TrainHook* h : hooks_) h->on_epoch_begin(epoch + 1);
  if (governor_) governor_->restart_window();  // not the evaluation since the last step
  started_ = Clock::now();
  last_lr_ = 0;
  backend_.download(last_good_, exec_.stats(), sizeof(last_good_));
  backend_.fill(checks_, kStatsSize, 0.0f);
}

void Trainer::Run::set_batch_index(int64_t batch) {
  backend_.upload(batch_index_, &batch, sizeof(batch));
}

// Everything one training step queues on the device: the same ops with the same arguments
// at every batch of the epoch where the data is resident (streamed, the host copies batch b
// in first). With on_nan = stop the non-finite count is never reset
// within the epoch, so that once a step is bad no later update happens either: the
// weights stay as they were before it until the host looks.
void Trainer::Run::queue_step(int64_t b) {
  if (skip_bad_steps_) {
    backend_.fill(checks_, kStatsSize, 0.0f);
    if (buffers_before_.bytes())
      backend_.copy(buffers_before_.as<void>(), t_.params_.buffers(), buffers_before_.bytes());
  }
  queue_gradients(b);
  if (semi_supervised_) {
    unlabelled_->queue_step(b, batch_index_);
    backend_.count_nonfinite(unlabelled_->loss_stats() + kStatLossSum, 1, checks_);
  }
  average_gradients();
  const float* scale = queue_clip_scale();
  backend_.count_nonfinite(t_.params_.grads(), t_.params_.size(), checks_);
  backend_.count_nonfinite(exec_.stats() + kStatLossSum, 1, checks_);
  agree_on_checks();
  queue_update(scale);
  backend_.increment(batch_index_, nullptr);
}

// Batch b of the epoch's order into the executor's input (resident data: the batch at
// *batch_index_, which is b), augmented if the recipe says so, then forward, loss and
// backward.
void Trainer::Run::queue_gradients(int64_t b) {
  const Model& m = t_.model_;
  const int c = m.input[0], h = m.input[1], w = m.input[2];
  const Trainer::GatheredIds ids =
      t_.gather(data_, b, batch_index_, batch_,
                augment_ ? staging_.as<float>() : exec_.input().data, exec_.labels());
  if (augment_)  // keyed by each sample's index in the data set, wherever its pixels are
    backend_.augment(m.training.augment, staging_.as<float>(), exec_.input().data, batch_, c, h, w,
                     ids.sample_ids, ids.batch_index, augment_seed_);
  exec_.gradients(batch_);
}

// Each rank's gradients are the mean over its shard; their mean over the ranks is the
// gradient of the global batch, as one process would compute it. Every rank then takes the
// same optimizer step.
void Trainer::Run::average_gradients() {
  if (ranks_) ranks_->average(backend_, t_.params_.grads(), t_.params_.size());
}

// The gradients' count is the same on every rank, but a rank's loss is its own: the mean of
// the counts is 0 only when every rank's is, so every rank skips the same updates and the
// host's looks agree.
void Trainer::Run::agree_on_checks() {
  if (ranks_) ranks_->average(backend_, checks_ + kStatNonFinite, 1);
}

// The device scale that clips the gradients to clip_norm, or null when clipping is off.
const float* Trainer::Run::queue_clip_scale() {
  const float max_norm = t_.options_.clip_norm;
  if (max_norm <= 0) return nullptr;
  backend_.fill(grad_sq_, 1, 0.0f);
  backend_.sum_squares(t_.params_.grads(), t_.params_.size(), grad_sq_);
  backend_.clip_scale(grad_sq_, max_norm, clip_);
  return clip_;
}

// The step counter, then one optimizer call per group of trainable parameters with the
// same learning-rate factor; all skipped on the device when the step's count of
// non-finite values is not 0.
void Trainer::Run::queue_update(const float* scale) {
  Parameters& p = t_.params_;
  const float* skip = checks_ + kStatNonFinite;
  backend_.increment(p.step(), skip);
  for (size_t i = 0; i < t_.groups_.size(); ++i) {
    const Group& g = t_.groups_[i];
    backend_.optimizer_update(t_.model_.optimizer, lr_[i], p.values() + g.offset,
                              p.grads() + g.offset, p.moment1() + g.offset, p.moment2() + g.offset,
                              g.count, p.step(), scale, skip);
  }
}

// Whether the step at batch b updated the weights, as far as the host knows: it reads the
// non-finite count every check_every_ steps and at the epoch's last batch.
bool Trainer::Run::step_taken(int epoch, int64_t b) {
  if ((state_.step + 1) % check_every_ != 0 && b + 1 != batches_) return true;
  return look_at_checks(epoch, b);
}

// Reads the non-finite count. A non-finite step stops the run or, with on_nan = skip_step
// (where the host looks at every step), is reported as skipped.
bool Trainer::Run::look_at_checks(int epoch, int64_t b) {
  float bad[kStatsSize], now[kStatsSize];
  backend_.download(bad, checks_, sizeof(bad));
  backend_.download(now, exec_.stats(), sizeof(now));
  if (bad[kStatNonFinite] == 0) {
    std::copy(now, now + kStatsSize, last_good_);
    return true;
  }
  if (!skip_bad_steps_) stop_on_nonfinite(epoch, b);
  // Skipped steps do not advance the step count: epoch and batch say which one it was.
  const SkippedStep skipped{epoch + 1, b + 1, t_.diagnose_nonfinite(exec_)};
  for (TrainHook* h : hooks_) h->on_step_skipped(skipped);
  backend_.upload(exec_.stats(), last_good_, sizeof(last_good_));  // keep the epoch's loss finite
  if (buffers_before_.bytes())  // and the running statistics as they were before the step
    backend_.copy(t_.params_.buffers(), buffers_before_.as<void>(), buffers_before_.bytes());
  return false;
}

// Throws NonFiniteError for the first bad step since the host last looked. The device took
// no step from it on, so the steps it took say which batch that was; when it is not the
// last one queued, that batch runs again (same weights, same step counter, so the same
// dropout and augmentation) to find where the values went bad.
void Trainer::Run::stop_on_nonfinite(int epoch, int64_t b) {
  const int64_t taken = t_.params_.download_step();
  const int64_t bad = first_batch_ + (taken - first_step_);
  if (bad != b) {
    set_batch_index(bad);
    queue_gradients(bad);
  }
  throw NonFiniteError(
      fmt::format("non-finite loss or gradient at step {} (epoch {}, batch {}), {}; stopping",
                  taken + 1, epoch + 1, bad + 1, t_.diagnose_nonfinite(exec_)));
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
  if (unlabelled_) state_.partial_unlabelled = unlabelled_->counts();
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
  state_.partial_unlabelled.clear();
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
  r.lr = last_lr_;
  r.steps = batches_;
  r.seconds = epoch_seconds();
  r.samples_per_second = static_cast<double>((batches_ - first_batch_) * global_batch_) /
                         std::max(1e-9, seconds_since(started_));
  if (semi_supervised_) unlabelled_->record(r);
  if (val_.count > 0 || test_) share_buffers_from_rank0();
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

std::vector<double> Trainer::Run::time_steps(int64_t warmup, int64_t steps, int windows) {
  begin_epoch(0);
  int64_t b = 0;
  auto one_step = [&] {
    if (b == batches_) {
      set_batch_index(0);
      b = 0;
    }
    graph_.run([this, b] { queue_step(b); });
    if (step_taken(0, b)) ++state_.step;
    ++b;
  };
  for (int64_t i = 0; i < warmup; ++i) one_step();
  std::vector<double> seconds;
  for (int w = 0; w < windows; ++w) {
    backend_.synchronize();
    const Clock::time_point start = Clock::now();
    for (int64_t i = 0; i < steps; ++i) one_step();
    backend_.synchronize();
    seconds.push_back(seconds_since(start));
  }
  return seconds;
}

TrainState Trainer::fit(const Dataset& train, const Dataset& val, TrainState start,
                        const std::vector<TrainHook*>& hooks, const Dataset* per_epoch_test) {
  // Every set the run will read, before it starts: a label without an output would add
  // nothing to the loss yet count in every average.
  if (model_.loss == LossKind::categorical_crossentropy)
    for (const Dataset* d : {&train, &val, per_epoch_test})
      if (d) check_labels(*d, classes());
  if (const Dataset* unlabelled = options_.unlabelled) {
    if (model_.loss != LossKind::categorical_crossentropy)
      fail(
          "unlabelled images: semi-supervised training needs a classifier "
          "(categorical_crossentropy), not {}",
          loss_name(model_.loss));
    if (ranks() > 1)
      fail("unlabelled images: semi-supervised training runs in one process, not {} ranks",
           ranks());
    if (unlabelled->count == 0) fail("unlabelled images: the set {} is empty", unlabelled->name);
    check_input_shape(*unlabelled);
  }
  return Run(*this, train, val, per_epoch_test, std::move(start), hooks).fit();
}

std::vector<double> Trainer::time_steps(const Dataset& train, int64_t warmup, int64_t steps,
                                        int windows) {
  return Run(*this, train, Dataset{}, nullptr, {}, {}).time_steps(warmup, steps, windows);
}

}  // namespace plinth
