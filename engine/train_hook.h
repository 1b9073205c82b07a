// Training hooks: how Trainer::fit reports to its caller and how the caller steers it, in
// the manner of Keras' callbacks and Caffe's Solver callbacks. The loop prints nothing; a
// progress bar, logs, checkpoints at epoch ends, early stopping and stopping on a signal
// are hooks. fit() calls every hook, in the order given, at each event. All a hook receives
// is host data, except BatchEnd::metrics(), which reads the device (on a GPU it waits for
// the queued steps), so a hook calls it only when it shows the figures.
#pragma once

#include <cstdint>
#include <string>

#include "engine/backend.h"
#include "engine/train_state.h"

namespace plinth {

// The run fit() is about to start.
struct TrainBegin {
  int epochs = 0;       // the run ends after this many epochs
  int64_t batches = 0;  // per epoch
  int batch_size = 0;
  bool has_validation = false;  // EpochRecord::val_loss and val_accuracy are measured
  bool has_test = false;        // EpochRecord::test_accuracy is measured
};

// The epoch's mean loss and accuracy over the batches trained so far.
struct RunningMetrics {
  double loss = 0, accuracy = 0;
};

// One training batch done (its optimizer step taken, or skipped).
class BatchEnd {
 public:
  BatchEnd(int epoch, int64_t batch, int64_t step, Backend& backend, const float* device_stats)
      : epoch(epoch), batch(batch), step(step), backend_(&backend), stats_(device_stats) {}
  int epoch;      // 1-based
  int64_t batch;  // 1-based, within the epoch
  int64_t step;   // optimizer steps taken in the run so far
  // Reads the running figures from the device: a wait on a GPU, so only when shown.
  RunningMetrics metrics() const;

 private:
  Backend* backend_;
  const float* stats_;
};

// A step whose loss or gradient was not finite, skipped with on_nan = skip_step. The step
// count did not advance; epoch and batch say which batch it was.
struct SkippedStep {
  int epoch = 0;      // 1-based
  int64_t batch = 0;  // 1-based, within the epoch
  std::string where;  // e.g. "first in the output of layer 'fc1'"
};

class TrainHook {
 public:
  virtual ~TrainHook() = default;
  // Before the first step. A hook that cannot work with this run throws plinth::Error.
  virtual void on_train_begin(const TrainBegin& run) {}
  virtual void on_epoch_begin(int epoch) {}  // 1-based; also for an epoch resumed midway
  virtual void on_batch_end(const BatchEnd& batch) {}
  virtual void on_step_skipped(const SkippedStep& step) {}
  // After each whole epoch and its evaluations; record is state.history.back(). Return
  // false to stop the run after this epoch (every hook still sees the epoch).
  virtual bool on_epoch_end(const EpochRecord& record, const TrainState& state) { return true; }
  // Asked after every step: true stops the run there, inside the epoch if need be; the
  // state fit() returns says where, and a run resumed from it continues exactly.
  virtual bool should_stop() { return false; }
  // The run ended without an error: after its last epoch, or where it was stopped.
  virtual void on_train_end(const TrainState& state) {}
};

}  // namespace plinth
