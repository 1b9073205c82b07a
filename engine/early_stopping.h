// Early stopping on val_loss with Keras' EarlyStopping semantics (monitor="val_loss",
// mode="min", no baseline, restore_best_weights=False): an epoch improves when its
// val_loss is below the best so far minus min_delta, and training stops once `patience`
// epochs in a row have not improved. It is computed from the history alone, so a resumed
// run stops exactly where an uninterrupted one would.
#pragma once

#include <limits>
#include <vector>

#include "engine/trainer.h"

namespace plinth {

// Epochs since the last improvement (0 right after one; the first epoch always improves).
inline int epochs_without_improvement(const std::vector<EpochRecord>& history, double min_delta) {
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

}  // namespace plinth
