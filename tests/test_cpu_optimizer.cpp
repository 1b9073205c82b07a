// CPU optimizer updates against straightforward double-precision re-implementations of the
// published formulas (PyTorch's SGD; Keras-style Adam with epsilon added before the bias
// correction; decoupled AdamW; RMSprop).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu_fallback/optimizer.h"
#include "engine/elementwise.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

struct Reference {
  std::vector<double> p, m, v;

  void step(const OptimizerSpec& s, const std::vector<double>& grads, int64_t t, double scale) {
    const double lr = s.lr, wd = s.weight_decay, b1 = s.beta1, b2 = s.beta2, eps = s.eps;
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grads[i] * scale;
      switch (s.kind) {
        case OptimizerKind::sgd: {
          g += wd * p[i];
          if (s.momentum == 0) {
            p[i] -= lr * g;
            break;
          }
          m[i] = s.momentum * m[i] + g;  // torch.optim.SGD, dampening 0
          p[i] -= lr * (s.nesterov ? g + s.momentum * m[i] : m[i]);
          break;
        }
        case OptimizerKind::adam:
        case OptimizerKind::adamw: {
          if (s.kind == OptimizerKind::adam)
            g += wd * p[i];
          else
            p[i] -= lr * wd * p[i];  // decoupled decay, before the Adam step
          m[i] = b1 * m[i] + (1 - b1) * g;
          v[i] = b2 * v[i] + (1 - b2) * g * g;
          const double c2 = std::sqrt(1 - std::pow(b2, t)), c1 = 1 - std::pow(b1, t);
          p[i] -= lr * c2 / c1 * m[i] / (std::sqrt(v[i]) + eps * c2);
          break;
        }
        case OptimizerKind::rmsprop: {
          g += wd * p[i];
          v[i] = b2 * v[i] + (1 - b2) * g * g;
          p[i] -= lr * g / (std::sqrt(v[i]) + eps);
          break;
        }
      }
    }
  }
};

// Runs five steps of the float op next to the reference and compares the parameters.
void check_optimizer(const OptimizerSpec& spec, bool use_m, bool use_v, const float* grad_scale,
                     double grad_range = 0.5) {
  const size_t n = 20000;  // large enough for the threaded path
  const std::vector<double> random = test::random_values(n, 81);
  std::vector<float> p(random.begin(), random.end()), m(n, 0.0f), v(n, 0.0f);
  const std::vector<double> start(p.begin(), p.end());  // the same start for both
  Reference ref{start, std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  double worst = 0;
  for (int64_t t = 1; t <= 5; ++t) {
    const std::vector<double> g = test::random_values(n, 100 + t, -grad_range, grad_range);
    const std::vector<float> gf(g.begin(), g.end());
    ref.step(spec, std::vector<double>(gf.begin(), gf.end()), t, grad_scale ? *grad_scale : 1.0);
    cpu::optimizer_update<float>(2, spec, LrSchedule{}, p.data(), gf.data(),
                                 use_m ? m.data() : nullptr, use_v ? v.data() : nullptr, n, &t,
                                 grad_scale, nullptr);
  }
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(p[i] - ref.p[i]));
  // |p| <= about 1: five steps of float rounding on p are a few 1e-7.
  CHECK(worst < 1e-6);
  // and the parameters did move: a no-op update would fail by the size of the steps
  double moved = 0;
  for (size_t i = 0; i < n; ++i) moved = std::max(moved, std::abs(ref.p[i] - start[i]));
  CHECK(moved > 1e-3);
}

TEST_CASE("cpu optimizer: sgd", "[cpu]") {
  OptimizerSpec s{.kind = OptimizerKind::sgd, .lr = 0.1f};
  check_optimizer(s, false, false, nullptr);  // plain sgd needs neither state buffer
  s.momentum = 0.9f;
  check_optimizer(s, true, false, nullptr);
  s.nesterov = true;
  check_optimizer(s, true, false, nullptr);
  s.weight_decay = 0.01f;
  check_optimizer(s, true, false, nullptr);
}

TEST_CASE("cpu optimizer: adam and adamw", "[cpu]") {
  OptimizerSpec s{.kind = OptimizerKind::adam, .lr = 1e-3f};
  check_optimizer(s, true, true, nullptr);
  // Gradients near epsilon: where epsilon goes (before or after the bias correction) matters.
  check_optimizer(s, true, true, nullptr, 3e-7);
  s.weight_decay = 0.1f;
  check_optimizer(s, true, true, nullptr);
  s.kind = OptimizerKind::adamw;
  check_optimizer(s, true, true, nullptr);
}

TEST_CASE("cpu optimizer: rmsprop", "[cpu]") {
  OptimizerSpec s{.kind = OptimizerKind::rmsprop, .lr = 1e-3f, .beta2 = 0.9f};
  check_optimizer(s, false, true, nullptr);  // rmsprop keeps only v
  s.weight_decay = 0.05f;
  check_optimizer(s, false, true, nullptr);
}

TEST_CASE("cpu optimizer: grad_scale multiplies every gradient", "[cpu]") {
  const float scale = 0.37f;
  check_optimizer({.kind = OptimizerKind::sgd, .lr = 0.1f, .momentum = 0.9f}, true, false, &scale);
  check_optimizer({.kind = OptimizerKind::adam, .lr = 1e-3f}, true, true, &scale);
}

TEST_CASE("cpu optimizer: a non-zero skip flag leaves parameters and moments as they are",
          "[cpu]") {
  const size_t n = 5000;
  const std::vector<double> start = test::random_values(n, 3);
  const std::vector<double> g = test::random_values(n, 4);
  const std::vector<float> grads(g.begin(), g.end());
  for (const float flag : {0.0f, 1.0f, 3.0f}) {
    std::vector<float> p(start.begin(), start.end()), m(n, 0.5f), v(n, 0.25f);
    const std::vector<float> p0 = p, m0 = m, v0 = v;
    const int64_t step = 1;
    cpu::optimizer_update<float>(2, OptimizerSpec{.kind = OptimizerKind::adam}, LrSchedule{},
                                 p.data(), grads.data(), m.data(), v.data(), n, &step, nullptr,
                                 &flag);
    INFO("flag " << flag);
    CHECK((p == p0) == (flag != 0.0f));
    CHECK((m == m0) == (flag != 0.0f));
    CHECK((v == v0) == (flag != 0.0f));
  }
}

// The learning rate of each update comes from the step counter along the schedule:
// plain SGD moves each parameter by exactly lr(t - 1) * g.
TEST_CASE("cpu optimizer: the learning rate follows the schedule from the step counter", "[cpu]") {
  const Schedule schedules[] = {
      {},
      {.kind = ScheduleKind::step, .step_epochs = 2, .gamma = 0.5f},
      {.kind = ScheduleKind::cosine, .min_lr = 0.01f},
      {.kind = ScheduleKind::one_cycle, .min_lr = 0.0f, .warmup = 0.25f, .start_factor = 0.1f}};
  const OptimizerSpec spec{.kind = OptimizerKind::sgd, .lr = 0.5f};
  for (const Schedule& schedule : schedules) {
    const LrSchedule lr{schedule, 3, 8, 0.5f};  // epoch 3 of a run of 8 steps, multiplier 0.5
    for (int64_t t = 1; t <= 9; ++t) {
      std::vector<float> pf = {1.0f}, gf = {0.25f};
      cpu::optimizer_update<float>(1, spec, lr, pf.data(), gf.data(), nullptr, nullptr, 1, &t,
                                   nullptr, nullptr);
      const double expected_lr = scheduled_lr(schedule, spec.lr, 3, t - 1, 8) * 0.5;
      INFO("schedule " << static_cast<int>(schedule.kind) << " step " << t);
      CHECK(pf[0] == Approx(1.0 - expected_lr * 0.25).epsilon(1e-6));
    }
  }
}

// The schedules' values where they are known in closed form.
TEST_CASE("scheduled_lr: each schedule's known values", "[cpu]") {
  const double lr = 0.1;
  CHECK(scheduled_lr({}, lr, 7, 123, 1000) == lr);
  const Schedule step{.kind = ScheduleKind::step, .step_epochs = 2, .gamma = 0.5f};
  CHECK(scheduled_lr(step, lr, 1, 0, 10) == lr);
  CHECK(scheduled_lr(step, lr, 2, 0, 10) == Approx(0.05));
  CHECK(scheduled_lr(step, lr, 5, 0, 10) == Approx(0.025));
  const Schedule cosine{.kind = ScheduleKind::cosine, .min_lr = 0.02f};
  CHECK(scheduled_lr(cosine, lr, 0, 0, 100) == Approx(lr));
  CHECK(scheduled_lr(cosine, lr, 0, 50, 100) == Approx((lr + 0.02) / 2));
  CHECK(scheduled_lr(cosine, lr, 0, 100, 100) == Approx(0.02));
  CHECK(scheduled_lr(cosine, lr, 0, 150, 100) == Approx(0.02));  // past the end: the floor
  const Schedule cycle{
      .kind = ScheduleKind::one_cycle, .min_lr = 0.0f, .warmup = 0.2f, .start_factor = 0.1f};
  CHECK(scheduled_lr(cycle, lr, 0, 0, 100) == Approx(0.01));
  CHECK(scheduled_lr(cycle, lr, 0, 10, 100) == Approx(0.01 + 0.09 * 0.5));
  CHECK(scheduled_lr(cycle, lr, 0, 20, 100) == Approx(lr));
  CHECK(scheduled_lr(cycle, lr, 0, 60, 100) == Approx(lr / 2));
  CHECK(scheduled_lr(cycle, lr, 0, 100, 100) == Approx(0.0).margin(1e-12));
}

}  // namespace
}  // namespace plinth
