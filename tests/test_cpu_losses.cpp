// CPU losses: hand-computed values, stats bookkeeping, gradients against finite differences.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu_fallback/losses.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

using Stats = std::vector<double>;

TEST_CASE("cpu softmax cross-entropy: two classes by hand", "[cpu]") {
  // softmax([0, ln 3]) = [1/4, 3/4]
  const std::vector<double> logits = {0, std::log(3.0), 0, std::log(3.0)};
  const std::vector<int32_t> labels = {1, 0};
  std::vector<double> probs(4), grad(4);
  Stats stats(kStatsSize, 0.0);
  cpu::softmax_cross_entropy(1, logits.data(), labels.data(), 2, 2, 2, probs.data(), grad.data(),
                             stats.data());
  CHECK(probs[0] == Approx(0.25).epsilon(1e-15));
  CHECK(probs[1] == Approx(0.75).epsilon(1e-15));
  // -ln(3/4) for the first sample, -ln(1/4) for the second
  CHECK(stats[kStatLossSum] == Approx(std::log(4.0 / 3.0) + std::log(4.0)).epsilon(1e-15));
  CHECK(stats[kStatCorrect] == 1);
  CHECK(stats[kStatCount] == 2);
  CHECK(stats[kStatNonFinite] == 0);
  // (softmax - onehot) / n
  const std::vector<double> expected = {0.125, -0.125, -0.375, 0.375};
  for (size_t i = 0; i < 4; ++i) CHECK(grad[i] == Approx(expected[i]).epsilon(1e-15));

  // stats accumulate across calls; probs and grad may be null
  cpu::softmax_cross_entropy<double>(1, logits.data(), labels.data(), 1, 1, 2, nullptr, nullptr,
                                     stats.data());
  CHECK(stats[kStatLossSum] == Approx(2 * std::log(4.0 / 3.0) + std::log(4.0)).epsilon(1e-15));
  CHECK(stats[kStatCorrect] == 2);
  CHECK(stats[kStatCount] == 3);
}

TEST_CASE("cpu softmax cross-entropy: ties and invalid labels", "[cpu]") {
  const std::vector<double> logits = {1, 1, 1, 1, 2, 0, 2, 0};
  const std::vector<int32_t> labels = {0, 1, 5, -1};  // tie picks class 0; 5 and -1 are invalid
  std::vector<double> grad(8, 99.0);
  Stats stats(kStatsSize, 0.0);
  cpu::softmax_cross_entropy<double>(1, logits.data(), labels.data(), 4, 4, 2, nullptr, grad.data(),
                                     stats.data());
  CHECK(stats[kStatCorrect] == 1);
  CHECK(stats[kStatCount] == 4);
  CHECK(stats[kStatLossSum] == Approx(2 * std::log(2.0)).epsilon(1e-15));
  for (size_t i = 4; i < 8; ++i) CHECK(grad[i] == 0);  // invalid labels: no gradient
}

TEST_CASE("cpu softmax cross-entropy: stable for huge logits", "[cpu]") {
  const std::vector<float> logits = {1000.0f, 0.0f, -1000.0f};
  const int32_t label = 1;
  std::vector<float> grad(3);
  std::vector<float> stats(kStatsSize, 0.0f);
  cpu::softmax_cross_entropy<float>(1, logits.data(), &label, 1, 1, 3, nullptr, grad.data(),
                                    stats.data());
  CHECK(stats[kStatLossSum] == Approx(1000.0f));
  CHECK(grad[0] == Approx(1.0f));
  CHECK(grad[1] == Approx(-1.0f));
  CHECK(grad[2] == 0.0f);
}

// dL/dlogits where L = loss sum / n (the mean the op's gradient is for).
TEST_CASE("cpu softmax cross-entropy: gradient matches finite differences", "[cpu]") {
  const int n = 4, classes = 5;
  std::vector<double> logits = test::random_values(n * classes, 71, -3, 3);
  const std::vector<int32_t> labels = {0, 3, 4, 2};
  std::vector<double> grad(logits.size());
  auto loss = [&] {
    Stats stats(kStatsSize, 0.0);
    cpu::softmax_cross_entropy<double>(1, logits.data(), labels.data(), n, n, classes, nullptr,
                                       nullptr, stats.data());
    return stats[kStatLossSum] / n;
  };
  Stats stats(kStatsSize, 0.0);
  cpu::softmax_cross_entropy<double>(1, logits.data(), labels.data(), n, n, classes, nullptr,
                                     grad.data(), stats.data());
  test::check_gradient(loss, logits, grad);
}

TEST_CASE("cpu pseudo-labels: the argmax where its probability reaches the threshold, else -1",
          "[cpu]") {
  // Row probabilities: [0.75, 0.25] (softmax of [ln 3, 0]), [0.5, 0.5] (a tie: the first
  // index), [0.2, 0.8].
  const std::vector<double> logits = {std::log(3.0), 0, 1, 1, 0, std::log(4.0)};
  for (const auto& [threshold, expected] : {std::pair{0.0, std::vector<int32_t>{0, 0, 1}},
                                            std::pair{0.5, std::vector<int32_t>{0, 0, 1}},
                                            std::pair{0.76, std::vector<int32_t>{-1, -1, 1}},
                                            std::pair{0.9, std::vector<int32_t>{-1, -1, -1}}}) {
    CAPTURE(threshold);
    std::vector<int32_t> labels(3, 99);
    std::vector<double> counts = {10, 20};  // added to
    cpu::pseudo_label(logits.data(), 3, 2, threshold, labels.data(), counts.data());
    CHECK(labels == expected);
    const auto count = [&](int32_t c) {
      return double(std::count(expected.begin(), expected.end(), c));
    };
    CHECK(counts == std::vector<double>{10 + count(0), 20 + count(1)});
    // Below the threshold a row has no loss and no gradient in the cross-entropy.
    std::vector<double> grad(6, 7.0);
    Stats stats(kStatsSize, 0.0);
    cpu::softmax_cross_entropy<double>(1, logits.data(), labels.data(), 3, 3, 2, nullptr,
                                       grad.data(), stats.data());
    for (int i = 0; i < 3; ++i)
      if (labels[i] < 0) CHECK((grad[2 * i] == 0 && grad[2 * i + 1] == 0));
    if (threshold == 0.9) CHECK(stats[kStatLossSum] == 0);
  }
}

TEST_CASE("cpu mse: Keras definition and gradient", "[cpu]") {
  const std::vector<double> pred = {1, 2, 3, 0, 0, 0}, target = {1, 0, 0, 0, 1, 1};
  std::vector<double> grad(6);
  Stats stats(kStatsSize, 0.0);
  cpu::mse_loss(1, pred.data(), target.data(), 2, 2, 3, grad.data(), stats.data());
  CHECK(stats[kStatLossSum] ==
        Approx(13.0 / 3 + 2.0 / 3).epsilon(1e-15));  // per-sample means, summed
  CHECK(stats[kStatCount] == 2);
  CHECK(grad == std::vector<double>{0, 2.0 / 3, 1, 0, -1.0 / 3, -1.0 / 3});

  const int n = 3, features = 4;
  std::vector<double> p = test::random_values(n * features, 72);
  const std::vector<double> t = test::random_values(n * features, 73);
  std::vector<double> g(p.size());
  auto loss = [&] {
    Stats s(kStatsSize, 0.0);
    cpu::mse_loss<double>(1, p.data(), t.data(), n, n, features, nullptr, s.data());
    return s[kStatLossSum] / n;
  };
  cpu::mse_loss(1, p.data(), t.data(), n, n, features, g.data(), stats.data());
  test::check_gradient(loss, p, g);
}

TEST_CASE("cpu bce: values, agreement fraction and gradient", "[cpu]") {
  const std::vector<double> pred = {0.9, 0.2, 0.6, 0.4}, target = {1, 0, 0, 1};
  Stats stats(kStatsSize, 0.0);
  cpu::bce_loss<double>(1, pred.data(), target.data(), 2, 2, 2, nullptr, stats.data());
  const double expected =
      (-std::log(0.9) - std::log(0.8)) / 2 + (-std::log(0.4) - std::log(0.4)) / 2;
  CHECK(stats[kStatLossSum] == Approx(expected).epsilon(1e-14));
  CHECK(stats[kStatCorrect] == 1);  // sample 0 agrees on both elements, sample 1 on neither
  CHECK(stats[kStatCount] == 2);

  const int n = 3, features = 4;
  std::vector<double> p = test::random_values(n * features, 74, 0.05, 0.95);
  const std::vector<double> t = test::random_values(n * features, 75, 0, 1);
  std::vector<double> g(p.size());
  auto loss = [&] {
    Stats s(kStatsSize, 0.0);
    cpu::bce_loss<double>(1, p.data(), t.data(), n, n, features, nullptr, s.data());
    return s[kStatLossSum] / n;
  };
  cpu::bce_loss(1, p.data(), t.data(), n, n, features, g.data(), stats.data());
  test::check_gradient(loss, p, g);
}

TEST_CASE("cpu losses: stats do not depend on the thread count", "[cpu]") {
  const int n = 3000, classes = 10;
  const std::vector<double> values = test::random_values(size_t(n) * classes, 76, -4, 4);
  const std::vector<float> logits(values.begin(), values.end());
  std::vector<int32_t> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = (i * 7) % classes;
  std::vector<float> one(kStatsSize, 0.0f), two(kStatsSize, 0.0f);
  cpu::softmax_cross_entropy<float>(1, logits.data(), labels.data(), n, n, classes, nullptr,
                                    nullptr, one.data());
  cpu::softmax_cross_entropy<float>(2, logits.data(), labels.data(), n, n, classes, nullptr,
                                    nullptr, two.data());
  CHECK(one == two);
}

// The rows of one slice of a larger batch: the gradient is of the whole batch's mean (the
// slice's own mean times rows / batch: with batch = 4 rows, exactly a quarter), while stats
// count the slice's rows alone.
TEST_CASE("cpu losses: rows that are a slice of a batch get the batch's mean gradient", "[cpu]") {
  const int n = 3, features = 5, batch = 4 * n;
  const std::vector<double> logits = test::random_values(n * features, 77, -3, 3);
  const std::vector<double> pred = test::random_values(n * features, 78, 0.05, 0.95);
  const std::vector<double> target = test::random_values(n * features, 79, 0, 1);
  const std::vector<int32_t> labels = {0, 4, 2};
  auto quarter = [](std::vector<double> v) {
    for (double& x : v) x /= 4;
    return v;
  };
  std::vector<double> own(n * features), sliced(n * features);
  Stats own_stats(kStatsSize, 0.0), sliced_stats(kStatsSize, 0.0);
  cpu::softmax_cross_entropy<double>(1, logits.data(), labels.data(), n, n, features, nullptr,
                                     own.data(), own_stats.data());
  cpu::softmax_cross_entropy<double>(1, logits.data(), labels.data(), n, batch, features, nullptr,
                                     sliced.data(), sliced_stats.data());
  CHECK(sliced == quarter(own));
  CHECK(sliced_stats == own_stats);
  CHECK(sliced_stats[kStatCount] == n);
  for (const bool mse : {true, false}) {
    CAPTURE(mse);
    Stats a(kStatsSize, 0.0), b(kStatsSize, 0.0);
    auto loss = mse ? cpu::mse_loss<double> : cpu::bce_loss<double>;
    loss(1, pred.data(), target.data(), n, n, features, own.data(), a.data());
    loss(1, pred.data(), target.data(), n, batch, features, sliced.data(), b.data());
    CHECK(sliced == quarter(own));
    CHECK(a == b);
  }
}

}  // namespace
}  // namespace plinth
