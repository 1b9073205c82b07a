// The thread governor against simulated step times (a clock the test advances by what a step
// would take at the backend's thread count now), and a run whose thread count changes at
// every step against one that keeps it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "cpu_fallback/cpu_backend.h"
#include "engine/thread_governor.h"
#include "engine/train_hook.h"
#include "engine/trainer.h"
#include "tests/engine_fixtures.h"

namespace plinth {
namespace {

// Runs `steps` steps of 32 samples; seconds_per_step(step, threads) is the simulated step
// time. Returns the thread count of each step.
std::vector<int> simulate(CpuBackend& backend, int steps,
                          const std::function<double(int, int)>& seconds_per_step) {
  double now = 0;
  ThreadGovernor governor(backend, [&] { return now; });
  std::vector<int> used;
  for (int i = 0; i < steps; ++i) {
    used.push_back(backend.threads());
    now += seconds_per_step(i, backend.threads());
    governor.slice_done(32);
    CHECK(governor.threads() == backend.threads());
  }
  return used;
}

int count(const std::vector<int>& used, int threads, size_t from = 0, size_t to = SIZE_MAX) {
  const auto end = used.begin() + static_cast<std::ptrdiff_t>(std::min(to, used.size()));
  return static_cast<int>(std::count(
      used.begin() + static_cast<std::ptrdiff_t>(std::min(from, used.size())), end, threads));
}

// The longest run of consecutive steps at `threads` from step `from` on.
int longest_run(const std::vector<int>& used, int threads, size_t from) {
  int longest = 0, run = 0;
  for (size_t i = from; i < used.size(); ++i) {
    run = used[i] == threads ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return longest;
}

}  // namespace

TEST_CASE("thread governor: another process holding a core sends it to 1 thread", "[engine][cpu]") {
  CpuBackend backend(2);
  // As measured with a busy loop beside the seed CNN: 2 threads at about 40% of 1 thread.
  const std::vector<int> used =
      simulate(backend, 4000, [](int, int threads) { return threads == 2 ? 0.015 : 0.006; });
  CHECK(used.front() == 2);
  CHECK(used.back() == 1);
  // After one window (0.1 s, 7 steps) and the probe's: a short contended run loses little.
  CHECK(count(used, 2, 0, 40) < 15);
  CHECK(count(used, 1, 2000) > 1900);  // and stays there, probing 2 threads now and then
  CHECK(count(used, 2, 2000) > 0);
  // Each probe of 2 threads ends after its untimed first step and 2 timed ones, not after its
  // window (7).
  CHECK(longest_run(used, 2, 100) == 1 + ThreadGovernor::kAbandonAfterSlices);
}

TEST_CASE("thread governor: on a quiet machine it keeps every thread, probing rarely",
          "[engine][cpu]") {
  CpuBackend backend(2);
  const std::vector<int> used =
      simulate(backend, 20000, [](int, int threads) { return threads == 2 ? 0.005 : 0.009; });
  CHECK(used.back() == 2);
  // Each probe costs 3 steps on 1 thread (abandoned below 65%); they back off to one every
  // 256 windows, so over these 100 s of steps less than 1% of the steps run on 1 thread.
  CHECK(count(used, 1) > 0);
  CHECK(count(used, 1) < static_cast<int>(used.size()) / 100);
  // Each ends after its untimed first step and 2 timed ones, not after its window (12).
  CHECK(longest_run(used, 1, 0) == 1 + ThreadGovernor::kAbandonAfterSlices);
}

TEST_CASE(
    "thread governor: a slow first step after each switch does not end a probe of fewer "
    "threads",
    "[engine][cpu]") {
  CpuBackend backend(2);
  // 1 thread runs 12.5% faster than 2 (above the 10% margin), and the first step after any
  // switch takes 7.5 times as long: judged on its first steps, each probe of 1 thread
  // would look lost.
  int last = 2;
  const std::vector<int> used = simulate(backend, 6000, [&](int, int threads) {
    const bool switched = threads != last;
    last = threads;
    if (switched) return 0.03;
    return threads == 2 ? 0.0045 : 0.004;
  });
  CHECK(used.back() == 1);
  CHECK(count(used, 1, 500) > 5400);
}

TEST_CASE("thread governor: it comes back to every thread when the other process ends",
          "[engine][cpu]") {
  CpuBackend backend(2);
  const std::vector<int> used = simulate(backend, 8000, [](int step, int threads) {
    const bool contended = step < 3000;
    return threads == 2 ? (contended ? 0.015 : 0.005) : (contended ? 0.006 : 0.009);
  });
  CHECK(count(used, 1, 2500) > 0);
  CHECK(used.back() == 2);
}

TEST_CASE("thread governor: within 10% it does not move, and a 1-thread backend is left alone",
          "[engine][cpu]") {
  CpuBackend two(2);
  const std::vector<int> used =
      simulate(two, 4000, [](int, int threads) { return threads == 2 ? 0.0100 : 0.0095; });
  CHECK(used.back() == 2);
  CpuBackend one(1);
  const std::vector<int> alone = simulate(one, 1000, [](int, int) { return 0.01; });
  CHECK(count(alone, 1) == 1000);
}

TEST_CASE("thread governor: a pause between epochs, with its window restarted, moves nothing",
          "[engine][cpu]") {
  // Quiet machine, a 1-second pause every 50 steps (a window's worth on 2 threads): timed,
  // the windows holding one look slow and a probe of 1 thread without one wins.
  for (bool restart : {true, false}) {
    CpuBackend backend(2);
    double now = 0;
    ThreadGovernor governor(backend, [&] { return now; });
    int on_one = 0;
    for (int i = 0; i < 20000; ++i) {
      if (i % 50 == 0) {
        now += 1.0;
        if (restart) governor.restart_window();
      }
      on_one += backend.threads() == 1;
      now += backend.threads() == 2 ? 0.005 : 0.009;
      governor.slice_done(32);
    }
    CAPTURE(restart, on_one);
    if (restart)
      CHECK(on_one < 20000 * 3 / 100);
    else
      CHECK(on_one > 20000 * 3 / 100);  // the failure restart_window prevents
  }
}

TEST_CASE("thread governor: changing the thread count between steps changes no weight",
          "[engine][cpu]") {
  REQUIRE_FASHION();
  const Model m = test::seed_cnn();
  const Dataset train = test::head(test::fashion_train(), 320);
  struct Toggle : TrainHook {
    CpuBackend* backend = nullptr;
    void on_batch_end(const BatchEnd& end) override {
      if (backend) backend->use_threads(end.batch % 2 ? 1 : 2);
    }
  };
  auto weights = [&](bool toggle) {
    CpuBackend backend(2);
    Parameters p(m, backend);
    p.initialize(3);
    TrainOptions o;
    o.epochs = 1;
    o.batch_size = 32;
    o.adapt_threads = false;
    Trainer t(m, backend, p, o);
    Toggle hook;
    if (toggle) hook.backend = &backend;
    t.fit(train, Dataset{}, {}, {&hook});
    return p.download(p.values());
  };
  CHECK(weights(true) == weights(false));
}

}  // namespace plinth
