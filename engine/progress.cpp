#include "engine/progress.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

namespace plinth {

ProgressPrinter::ProgressPrinter(bool enabled, std::FILE* out)
    : enabled_(enabled), interactive_(enabled && isatty(fileno(out))), out_(out) {}

void ProgressPrinter::on_train_begin(const TrainBegin& run) { run_ = run; }

void ProgressPrinter::on_epoch_begin(int epoch) {
  start_ = last_draw_ = clock::now();
  epoch_open_ = true;
  if (enabled_) fmt::print(out_, "Epoch {}/{}\n", epoch, run_.epochs);
  std::fflush(out_);
}

void ProgressPrinter::on_batch_end(const BatchEnd& batch) {
  if (interactive_ && clock::now() - last_draw_ > std::chrono::milliseconds(100))
    draw_bar(batch.batch, batch.metrics());
}

void ProgressPrinter::draw_bar(int64_t batch, const RunningMetrics& m) {
  last_draw_ = clock::now();
  const int64_t batches = run_.batches;
  const double elapsed = std::chrono::duration<double>(last_draw_ - start_).count();
  const double per_step = batch > 0 ? elapsed / batch : 0;
  const int width = 30;
  const int done = batches ? static_cast<int>(width * batch / batches) : 0;
  std::string bar(done, '=');
  if (done < width) bar += '>' + std::string(width - done - 1, '.');
  fmt::print(out_,
             "\r{}/{} [{}] - ETA: {:.0f}s - {:.1f}ms/step - loss: {:.4f} - accuracy: {:.4f}\x1b[K",
             batch, batches, bar, per_step * (batches - batch), per_step * 1e3, m.loss, m.accuracy);
  bar_drawn_ = true;
  std::fflush(out_);
}

void ProgressPrinter::on_step_skipped(const SkippedStep& step) {
  line(fmt::format("warning: skipped step (epoch {}, batch {}): non-finite values, {}", step.epoch,
                   step.batch, step.where));
}

bool ProgressPrinter::on_epoch_end(const EpochRecord& r, const TrainState&) {
  epoch_open_ = false;
  if (!enabled_) return true;
  std::string summary = fmt::format("{}/{} - {:.1f}s - loss: {:.4f} - accuracy: {:.4f}", r.steps,
                                    r.steps, r.seconds, r.loss, r.accuracy);
  if (run_.has_validation)
    summary +=
        fmt::format(" - val_loss: {:.4f} - val_accuracy: {:.4f}", r.val_loss, r.val_accuracy);
  if (run_.has_test) summary += fmt::format(" - test_accuracy: {:.4f}", r.test_accuracy);
  summary += fmt::format(" - {:.0f} samples/s - lr: {:.3g}", r.samples_per_second, r.lr);
  if (r.above_threshold >= 0) {  // semi-supervised: the pseudo-labels' share of each class
    double labelled = 0;
    for (double n : r.pseudo_labels) labelled += n;
    std::string shares;
    for (double n : r.pseudo_labels)
      shares +=
          fmt::format("{}{:.0f}%", shares.empty() ? "" : " ", 100 * n / std::max(1.0, labelled));
    summary += fmt::format(" - unlabelled_loss: {:.4f} - above_threshold: {:.4f} ({})",
                           r.unlabelled_loss, r.above_threshold, shares);
  }
  fmt::print(out_, "{}{}\n", interactive_ ? "\r\x1b[K" : "", summary);
  bar_drawn_ = false;
  std::fflush(out_);
  return true;
}

void ProgressPrinter::on_train_end(const TrainState& state) {
  if (!epoch_open_) return;
  epoch_open_ = false;
  if (!enabled_) return;
  fmt::print(out_, "{}stopped at step {}/{} of epoch {}\n", interactive_ ? "\r\x1b[K" : "",
             state.batch_in_epoch, run_.batches, state.epoch + 1);
  bar_drawn_ = false;
  std::fflush(out_);
}

void ProgressPrinter::line(const std::string& text) {
  if (bar_drawn_) fmt::print(out_, "\r\x1b[K");  // the next redraw brings it back
  bar_drawn_ = false;
  std::fflush(out_);
  fmt::print(stderr, "{}\n", text);
  std::fflush(stderr);
}

}  // namespace plinth
