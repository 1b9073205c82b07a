// What a training run has measured and where it stands: one record per completed epoch,
// and enough to continue the run exactly. Checkpoints save it; training hooks receive it.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/backend.h"

namespace plinth {

// The most epochs and steps a run may count: far beyond any real run, and far enough
// below the types' limits that counting on never overflows. A checkpoint claiming more is
// refused.
inline constexpr int kMaxEpochs = 1 << 30;
inline constexpr int64_t kMaxSteps = int64_t{1} << 50;

struct EpochRecord {
  int epoch = 0;
  double loss = 0, accuracy = 0, val_loss = 0, val_accuracy = 0;
  double lr = 0, seconds = 0, samples_per_second = 0;
  double test_accuracy = -1;  // only when an evaluation set per epoch was requested
  int64_t steps = 0;
  // Semi-supervised epochs only (-1 and empty otherwise): the unlabelled loss (over all the
  // epoch's unlabelled images, as trained), the fraction of them whose weak view reached
  // the threshold, and how many were pseudo-labelled as each class.
  double unlabelled_loss = -1, above_threshold = -1;
  std::vector<double> pseudo_labels;
};

// The RNG is counter-based, so the seed, epoch and step are the whole random state.
struct TrainState {
  int epoch = 0;               // completed epochs
  int64_t step = 0;            // optimizer steps taken
  int64_t batch_in_epoch = 0;  // > 0 when stopped inside epoch `epoch` (should_stop, max_steps)
  double partial_stats[kStatsSize] = {};  // that epoch's accumulated stats so far
  // Semi-supervised: that epoch's pseudo-label counts per class, then its unlabelled stats
  // (kStatsSize); empty when there are none.
  std::vector<double> partial_unlabelled;
  double partial_seconds = 0;
  std::vector<EpochRecord> history;
  bool finished_early = false;  // stopped by a hook or max_steps before the last epoch's end
};

}  // namespace plinth
