// Keeps the CPU's training steps (and `plinth bench`'s inference batches) at the thread count
// that runs fastest now. It is told of each slice of a batch (Executor::on_slice_done; the
// batch where it is not sliced) and changes the count between slices: a count tried and lost
// then costs a few slices, where whole steps cost 9-30% of the throughput at batch 256 and
// 1024 (quiet machine, `plinth bench --adapt-threads on|off` in 6 alternating rounds,
// benchmarks/results/2026-12-03-governor-slices/).
//
// On a shared machine (a CI runner, a laptop) another process may hold a core. Each step has
// many short parallel regions, and at every barrier the threads wait for one that is
// descheduled: measured here with one other core busy, the seed CNN trained at 2,045
// samples/s on 2 threads against 5,252 on 1. No OpenMP wait policy fixes that without
// costing the quiet machine (benchmarks/results/2026-12-02-wait-policy-quiet/). Results do
// not depend on the thread count (fixed chunks and reduction orders), so the governor may
// change it between slices: it times windows of slices, now and then tries one thread fewer
// (or more) for a window, and moves when that ran clearly faster.
#pragma once

#include <functional>

namespace plinth {

class Backend;

class ThreadGovernor {
 public:
  // Seconds of slices per timed window, and how much faster a tried count must run to be
  // kept. The first probe follows the first window, so that a contended start costs one
  // short window (a benchmark's or a short run's figures are taken within seconds); a probe on
  // a quiet machine runs at about half speed (until it is abandoned, below), so probes then
  // back off: 4 windows after a probe that lost, twice as long after each further loss, up to
  // every 256 windows (26 s); 32 windows after one that won (the other process may end).
  static constexpr double kWindowSeconds = 0.1;
  static constexpr double kMargin = 1.10;
  static constexpr int kFirstProbeAfter = 1, kProbeAfterLoss = 4, kProbeAfterWin = 32,
                       kLastProbeEvery = 256;
  // A probe whose first timed slices run below this share of the rate it left is lost
  // already: it ends there instead of finishing its window (with another process on a core,
  // probes of 2 threads ran at 10-40%; on a quiet machine probes of 1 thread run at about
  // 55%). A probe's first slice is not timed: the new team's start (about 90 ms under that
  // load) made probes of 1 thread that would have won look lost. The share is well below the
  // margin because the rate left behind swings with the other process (a 2-thread window
  // sometimes ran at 8,000-9,000 samples/s where most ran at 2,000-3,500).
  static constexpr double kAbandonBelow = 0.65;
  static constexpr int kAbandonAfterSlices = 2;

  // Idle where backend.max_threads() < 2 (one core, or a GPU). `now` returns seconds.
  explicit ThreadGovernor(Backend& backend, std::function<double()> now = {});

  // After each slice, with its samples.
  void slice_done(int samples);
  // Drops the window under way, for a pause between steps that is not training (an epoch's
  // evaluation, a checkpoint): timed, it would make the count in use look slow. The next
  // slice_done starts a new window.
  void restart_window();
  int threads() const { return threads_; }
  int changes() const { return changes_; }

 private:
  void end_window(double rate);
  void use(int threads);

  Backend& backend_;
  std::function<double()> now_;
  int max_threads_;
  int threads_;
  double window_start_ = -1;
  double samples_ = 0;
  int slices_ = 0;
  double rate_ = 0;       // the last window's samples/s at threads_
  int probing_from_ = 0;  // the count to return to when the window is a probe, else 0
  int windows_to_probe_ = kFirstProbeAfter;
  int probe_every_ = kProbeAfterLoss / 2;  // doubled at each loss
  bool probe_down_ = true;                 // probes alternate between one thread fewer and one more
  int changes_ = 0;
};

}  // namespace plinth
