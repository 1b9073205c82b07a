#include "engine/step_graph.h"

#include "engine/error.h"

namespace plinth {

StepGraph::StepGraph(Backend& backend, bool enabled, int eager_runs)
    : backend_(backend),
      eager_reason_(enabled ? backend.capture_unavailable() : "CUDA graphs are off"),
      eager_left_(eager_runs) {}

void StepGraph::run(const std::function<void()>& step) {
  if (!eager_reason_.empty() || eager_left_ > 0) {
    if (eager_left_ > 0) --eager_left_;
    step();
    ++eager_;
    return;
  }
  if (stale_) {
    try {
      graph_ = backend_.capture(step, std::move(graph_));
      stale_ = false;
    } catch (const Error& e) {
      // Nothing ran during the failed capture: the step runs eagerly, now and from now on.
      eager_reason_ = std::string("the capture failed: ") + e.what();
      graph_.reset();
      step();
      ++eager_;
      return;
    }
  }
  graph_->replay();
  ++replays_;
}

void StepGraph::disable(std::string why) {
  if (eager_reason_.empty()) eager_reason_ = std::move(why);
  graph_.reset();
}

}  // namespace plinth
