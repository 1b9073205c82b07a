// Keras-style progress as a training hook: on a terminal a bar that updates in place,
// elsewhere (CI logs, pipes) one plain line per epoch, "Epoch 1/10" then
// "1687/1687 - 9.2s - loss: 0.5277 - accuracy: 0.8061 - val_loss: ...". Warnings (skipped
// steps) go to stderr even when the progress itself is off.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "engine/train_hook.h"

namespace plinth {

class ProgressPrinter : public TrainHook {
 public:
  explicit ProgressPrinter(bool enabled, std::FILE* out = stdout);
  bool interactive() const { return interactive_; }

  void on_train_begin(const TrainBegin& run) override;
  void on_epoch_begin(int epoch) override;
  // Redraws the bar at most ~10 times a second, and reads the running metrics only then.
  void on_batch_end(const BatchEnd& batch) override;
  void on_step_skipped(const SkippedStep& step) override;
  bool on_epoch_end(const EpochRecord& record, const TrainState& state) override;
  void on_train_end(const TrainState& state) override;

  // A message the user must see even with progress off: a warning, or why training
  // stopped early. It goes to stderr, after clearing a half-drawn bar.
  void line(const std::string& text);

 private:
  using clock = std::chrono::steady_clock;
  void draw_bar(int64_t batch, const RunningMetrics& m);

  bool enabled_, interactive_;
  std::FILE* out_;
  TrainBegin run_;
  bool bar_drawn_ = false;   // an in-place bar is on screen without its newline
  bool epoch_open_ = false;  // an epoch began and has not ended: a stop lands inside it
  clock::time_point start_, last_draw_;
};

}  // namespace plinth
