// Hooks that end a run when its goal is met or can no longer be: Keras' EarlyStopping on
// val_loss, and a target accuracy. Both decide from the history alone, so a resumed run
// stops exactly where an uninterrupted one would.
#pragma once

#include <string>
#include <vector>

#include "engine/train_hook.h"
#include "engine/train_state.h"

namespace plinth {

// Keras' EarlyStopping semantics (monitor="val_loss", mode="min", no baseline,
// restore_best_weights=False): an epoch improves when its val_loss is below the best so
// far minus min_delta. Returns the epochs since the last improvement (0 right after one;
// the first epoch always improves).
int epochs_without_improvement(const std::vector<EpochRecord>& history, double min_delta);

// Stops once `patience` epochs in a row have not improved val_loss; needs a validation set.
class EarlyStopping : public TrainHook {
 public:
  explicit EarlyStopping(int patience, double min_delta = 0);
  void on_train_begin(const TrainBegin& run) override;
  bool on_epoch_end(const EpochRecord& record, const TrainState& state) override;
  bool stopped() const { return stopped_; }
  // One line saying why the run stopped, for the caller to show.
  std::string reason() const;

 private:
  int patience_;
  double min_delta_;
  bool stopped_ = false;
};

// Stops once an epoch's accuracy reaches `target`: the test accuracy where the run
// measures it every epoch, else the validation accuracy. The target is a float, as the
// accuracies are (a count over a count in float): 0.9f is reached by 9000 of 10000.
class TargetAccuracy : public TrainHook {
 public:
  explicit TargetAccuracy(float target) : target_(target) {}
  bool on_epoch_end(const EpochRecord& record, const TrainState& state) override;
  float target() const { return target_; }

 private:
  float target_;
};

}  // namespace plinth
