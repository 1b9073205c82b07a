// The OpenMP conventions of the CPU backend. Every op takes its thread count explicitly
// (a backend's own setting, never a process-wide mode) and opens a parallel region only
// when the work pays for the fork/join.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>

namespace plinth::cpu {

// Below this many elements of work a loop runs on the calling thread: waking a team
// costs a few microseconds, more than the loop itself.
inline constexpr size_t kParallelMin = 16384;

inline bool use_threads(int threads, size_t work) { return threads > 1 && work >= kParallelMin; }

// Ranges per thread in parallel_ranges: a thread that the machine's other work deschedules
// holds up the region's end by one range, not by half of the work, while the others take
// the rest.
inline constexpr size_t kRangesPerThread = 4;

// body(lo, hi) on contiguous ranges that cover [0, n), handed to the threads as they come
// free, when the total work, n * grain elements, pays for a parallel region; otherwise one
// call on the calling thread. Each range is a plain loop in a plain function body, so it
// vectorises like serial code.
template <typename F>
void parallel_ranges(int threads, size_t n, size_t grain, F&& body) {
  if (n < 2 || !use_threads(threads, n * grain)) {
    body(size_t{0}, n);
    return;
  }
  const size_t ranges = std::min(n, kRangesPerThread * static_cast<size_t>(threads));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (size_t r = 0; r < ranges; ++r) body(n * r / ranges, n * (r + 1) / ranges);
}

// body(i) for i in [0, n), where each i is `grain` elements of work.
template <typename F>
void parallel_for(int threads, size_t n, size_t grain, F&& body) {
  parallel_ranges(threads, n, grain, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) body(i);
  });
}

template <typename F>
void parallel_for(int threads, size_t n, F&& body) {
  parallel_for(threads, n, 1, body);
}

// A reduction over [0, n) whose result does not depend on the thread count: the range is
// cut into at most kMaxBlocks blocks (the cut depends on n only), block(lo, hi) reduces
// each one, and the block results are added in order. min_block keeps small sums serial.
template <typename Acc, typename F>
Acc block_reduce(int threads, size_t n, size_t min_block, F&& block) {
  constexpr size_t kMaxBlocks = 64;
  const size_t size = std::max({min_block, size_t{1}, (n + kMaxBlocks - 1) / kMaxBlocks});
  const size_t blocks = (n + size - 1) / size;
  Acc partial[kMaxBlocks] = {};
  parallel_for(threads, blocks, size,
               [&](size_t b) { partial[b] = block(b * size, std::min(n, (b + 1) * size)); });
  Acc total{};
  for (size_t b = 0; b < blocks; ++b) total += partial[b];
  return total;
}

// A long sum in a fixed order that still vectorises: term i of a run goes to running sum
// i % kLanes, and the lanes are added in order at the end. Sums in double so long runs of
// float values keep their low bits.
struct LaneSum {
  static constexpr int kLanes = 16;
  double lane[kLanes] = {};

  template <typename F>
  void add(size_t n, F&& term) {
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int l = 0; l < kLanes; ++l) lane[l] += static_cast<double>(term(i + l));
    for (int l = 0; i < n; ++i, ++l) lane[l] += static_cast<double>(term(i));
  }
  double total() const {
    double sum = 0;
    for (double v : lane) sum += v;
    return sum;
  }
};

// Sets the calling thread's OpenMP team size for the duration of one op. OpenBLAS's OpenMP
// build sizes its own team from omp_get_max_threads() and runs single-threaded inside an
// active parallel region; this scope makes a BLAS call outside our regions use exactly
// this backend's threads (one thread for a 1-thread backend, even when nested in an
// inactive region).
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : saved_(omp_get_max_threads()) {
    if (threads != saved_) omp_set_num_threads(threads);
  }
  ~ThreadScope() {
    if (omp_get_max_threads() != saved_) omp_set_num_threads(saved_);
  }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int saved_;
};

}  // namespace plinth::cpu
