// Runs a step of ops either as it is (eagerly) or as a graph recorded once and replayed
// (Backend::capture): how a training step or an evaluation batch becomes one CUDA graph
// launch. The first `eager_runs` runs are eager, so that cuBLAS and cuDNN settle first (lazy
// set-up, an algorithm that fails at run time dropped for the next); the next run records
// the step and replays it, and later runs replay it. A step must queue the same ops with
// the same arguments every time it runs (tests/test_recording_backend.cpp proves it of the
// training step); after recapture() (its arguments changed: a new epoch) the next run
// records it again, updating the graph in place.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/backend.h"

namespace plinth {

class StepGraph {
 public:
  // enabled false, or a backend that cannot capture, runs every step eagerly.
  StepGraph(Backend& backend, bool enabled, int eager_runs);

  void run(const std::function<void()>& step);
  void recapture() { stale_ = true; }
  // Runs every later step eagerly, for `why`: a step whose arguments change between runs
  // (e.g. it reads a data set that the host copies in batch by batch).
  void disable(std::string why);

  bool replaying() const { return graph_ != nullptr; }
  // Kernel launches, copies and fills per replay; 0 before the first capture.
  size_t launches() const { return graph_ ? graph_->launches() : 0; }
  int64_t replays() const { return replays_; }
  int64_t eager_runs() const { return eager_; }
  // Why steps run eagerly ("" while capture is on): off, the backend cannot, disable(), or a
  // capture failed (then every later step runs eagerly).
  const std::string& eager_reason() const { return eager_reason_; }

 private:
  Backend& backend_;
  std::string eager_reason_;
  int eager_left_;
  bool stale_ = true;
  std::unique_ptr<OpGraph> graph_;
  int64_t eager_ = 0, replays_ = 0;
};

}  // namespace plinth
