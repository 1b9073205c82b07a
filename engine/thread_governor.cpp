#include "engine/thread_governor.h"

#include <algorithm>
#include <chrono>

#include "engine/backend.h"

namespace plinth {

ThreadGovernor::ThreadGovernor(Backend& backend, std::function<double()> now)
    : backend_(backend),
      now_(now ? std::move(now) : [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
      }),
      max_threads_(backend.max_threads()),
      threads_(max_threads_) {
  if (max_threads_ >= 2) backend_.use_threads(max_threads_);  // whatever an earlier one left
}

void ThreadGovernor::slice_done(int samples) {
  if (max_threads_ < 2) return;
  const double t = now_();
  if (window_start_ < 0) {  // the first slice warms caches and the thread team: not timed
    window_start_ = t;
    return;
  }
  samples_ += samples;
  ++slices_;
  const double seconds = t - window_start_;
  const bool probe_lost = probing_from_ > 0 && slices_ >= kAbandonAfterSlices &&
                          samples_ / seconds < kAbandonBelow * rate_;
  if (!probe_lost && (seconds < kWindowSeconds || slices_ < 2)) return;
  end_window(samples_ / seconds);
  restart_window();
  if (probing_from_ == 0) window_start_ = now_();  // a probe's first slice is not timed
}

void ThreadGovernor::restart_window() {
  window_start_ = -1;
  samples_ = 0;
  slices_ = 0;
}

void ThreadGovernor::end_window(double rate) {
  if (probing_from_ > 0) {  // the probe's window against the last one before it
    if (rate > kMargin * rate_) {
      ++changes_;
      rate_ = rate;
      probe_every_ = kProbeAfterWin;  // the machine changed: look again soon
    } else {
      use(probing_from_);
      probe_every_ = std::min(kLastProbeEvery, 2 * probe_every_);
    }
    probing_from_ = 0;
    windows_to_probe_ = probe_every_;
    return;
  }
  rate_ = rate;
  if (--windows_to_probe_ > 0) return;
  const bool can_go_down = threads_ > 1, can_go_up = threads_ < max_threads_;
  const bool down = can_go_down && (probe_down_ || !can_go_up);
  probe_down_ = !probe_down_;
  probing_from_ = threads_;
  use(down ? threads_ - 1 : threads_ + 1);
}

void ThreadGovernor::use(int threads) {
  threads_ = std::clamp(threads, 1, max_threads_);
  backend_.use_threads(threads_);
}

}  // namespace plinth
