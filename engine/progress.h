// Keras-style progress: on a terminal a bar that updates in place, elsewhere (CI logs,
// pipes) one plain line per epoch.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace plinth {

class Progress {
 public:
  Progress(bool enabled, std::FILE* out = stdout);
  bool interactive() const { return interactive_; }
  void begin_epoch(int epoch, int epochs, int64_t steps);
  // Called each step; redraws at most ~10 times a second. wants_update() says whether a
  // redraw is due, so callers fetch running metrics (a device sync) only then.
  bool wants_update() const;
  void update(int64_t step, double loss, double accuracy);
  void end_epoch(const std::string& summary);
  // A message the user must see even with progress off (--quiet): a warning, or why
  // training stopped early. It goes to stderr, after clearing a half-drawn bar.
  void line(const std::string& text);

 private:
  using clock = std::chrono::steady_clock;
  bool enabled_, interactive_;
  bool bar_drawn_ = false;  // an in-place bar is on screen without its newline
  std::FILE* out_;
  int64_t steps_ = 0;
  clock::time_point start_, last_draw_;
};

}  // namespace plinth
