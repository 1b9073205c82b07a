#include "engine/progress.h"

#include <unistd.h>

#include <fmt/format.h>

namespace plinth {

Progress::Progress(bool enabled, std::FILE* out)
    : enabled_(enabled), interactive_(enabled && isatty(fileno(out))), out_(out) {}

void Progress::begin_epoch(int epoch, int epochs, int64_t steps) {
  steps_ = steps;
  start_ = last_draw_ = clock::now();
  if (enabled_) fmt::print(out_, "Epoch {}/{}\n", epoch, epochs);
  std::fflush(out_);
}

bool Progress::wants_update() const {
  return interactive_ && clock::now() - last_draw_ > std::chrono::milliseconds(100);
}

void Progress::update(int64_t step, double loss, double accuracy) {
  last_draw_ = clock::now();
  const double elapsed = std::chrono::duration<double>(last_draw_ - start_).count();
  const double per_step = step > 0 ? elapsed / step : 0;
  const int width = 30;
  const int done = steps_ ? static_cast<int>(width * step / steps_) : 0;
  std::string bar(done, '=');
  if (done < width) bar += '>' + std::string(width - done - 1, '.');
  fmt::print(out_, "\r{}/{} [{}] - ETA: {:.0f}s - {:.1f}ms/step - loss: {:.4f} - accuracy: {:.4f}\x1b[K",
             step, steps_, bar, per_step * (steps_ - step), per_step * 1e3, loss, accuracy);
  bar_drawn_ = true;
  std::fflush(out_);
}

void Progress::end_epoch(const std::string& summary) {
  if (!enabled_) return;
  fmt::print(out_, "{}{}\n", interactive_ ? "\r\x1b[K" : "", summary);
  bar_drawn_ = false;
  std::fflush(out_);
}

void Progress::line(const std::string& text) {
  if (bar_drawn_) fmt::print(out_, "\r\x1b[K");  // the next update() redraws it
  bar_drawn_ = false;
  std::fflush(out_);
  fmt::print(stderr, "{}\n", text);
  std::fflush(stderr);
}

}  // namespace plinth
