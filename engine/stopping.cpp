#include "engine/stopping.h"

#include <limits>

#include "engine/error.h"

namespace plinth {

int epochs_without_improvement(const std::vector<EpochRecord>& history, double min_delta) {
  double best = std::numeric_limits<double>::infinity();
  int wait = 0;
  for (const EpochRecord& r : history) {
    if (r.val_loss < best - min_delta) {
      best = r.val_loss;
      wait = 0;
    } else {
      ++wait;
    }
  }
  return wait;
}

EarlyStopping::EarlyStopping(int patience, double min_delta)
    : patience_(patience), min_delta_(min_delta) {
  if (patience < 1) fail("early stopping: patience must be at least 1 epoch, got {}", patience);
}

void EarlyStopping::on_train_begin(const TrainBegin& run) {
  if (!run.has_validation)
    fail(
        "early stopping monitors val_loss, but there is no validation set (use a "
        "validation split)");
}

bool EarlyStopping::on_epoch_end(const EpochRecord&, const TrainState& state) {
  stopped_ = epochs_without_improvement(state.history, min_delta_) >= patience_;
  return !stopped_;
}

std::string EarlyStopping::reason() const {
  return fmt::format("early stopping: val_loss has not improved by more than {} for {} epoch{}",
                     min_delta_, patience_, patience_ == 1 ? "" : "s");
}

bool TargetAccuracy::on_epoch_end(const EpochRecord& record, const TrainState&) {
  const double accuracy = record.test_accuracy >= 0 ? record.test_accuracy : record.val_accuracy;
  return !(accuracy >= target_);
}

}  // namespace plinth
