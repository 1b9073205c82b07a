// Stopping training on SIGINT or SIGTERM: the tool owns the flag the handler sets, and the
// training loop asks it after every step (a training hook), so a run stops after the
// current step, is saved, and resumes exactly. The library holds no process-global state.
#pragma once

#include "engine/train_hook.h"

namespace plinth::cli {

// Catches SIGINT and SIGTERM while it exists; their default actions come back when it goes.
class StopOnSignal : public TrainHook {
 public:
  StopOnSignal();
  ~StopOnSignal() override;
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

  bool should_stop() override { return received(); }
  bool received() const;  // since this object was made
};

}  // namespace plinth::cli
