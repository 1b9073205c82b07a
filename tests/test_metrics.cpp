// Classification metrics: precision, recall, F1, their averages, top-k and mistakes.
#include <catch2/catch.hpp>

#include <vector>

#include "engine/error.h"
#include "engine/metrics.h"

namespace plinth {
namespace {

TEST_CASE("metrics: precision, recall, F1 and their averages match hand computation", "[metrics]") {
  // Five samples of three classes; argmax predictions 0, 1, 1, 2, 0 for truths 0, 0, 1, 2, 2.
  const std::vector<float> p = {0.7f, 0.2f, 0.1f,  //
                                0.3f, 0.6f, 0.1f,  //
                                0.1f, 0.8f, 0.1f,  //
                                0.2f, 0.2f, 0.6f,  //
                                0.9f, 0.0f, 0.1f};
  const std::vector<int32_t> labels = {0, 0, 1, 2, 2};
  const ClassificationReport r = classification_report(p, labels, 3, 2, 10);
  CHECK(r.confusion == std::vector<std::vector<int64_t>>{{1, 1, 0}, {0, 1, 0}, {1, 0, 1}});
  CHECK(r.accuracy == Approx(0.6));
  // class 0: precision 1/2, recall 1/2; class 1: 1/2, 1; class 2: 1, 1/2.
  CHECK(r.per_class[0].precision == Approx(0.5));
  CHECK(r.per_class[0].recall == Approx(0.5));
  CHECK(r.per_class[1].f1 == Approx(2.0 / 3));
  CHECK(r.per_class[2].precision == Approx(1.0));
  CHECK(r.per_class[2].f1 == Approx(2.0 / 3));
  CHECK(r.per_class[2].support == 2);
  CHECK(r.macro.precision == Approx((0.5 + 0.5 + 1) / 3));
  CHECK(r.macro.f1 == Approx((0.5 + 2.0 / 3 + 2.0 / 3) / 3));
  CHECK(r.weighted.recall == Approx((2 * 0.5 + 1 * 1 + 2 * 0.5) / 5));
  CHECK(r.weighted.support == 5);
  // Top-2: sample 4's truth (class 2, 0.1) ranks second after class 0 (0.9), ahead of 0.0.
  CHECK(r.top_k_accuracy == Approx(1.0));
  CHECK(classification_report(p, labels, 3, 1, 10).top_k_accuracy == Approx(0.6));
  // Mistakes, most confident first: sample 4 (0.9 for class 0), then sample 1 (0.6).
  REQUIRE(r.mistakes.size() == 2);
  CHECK(r.mistakes[0].index == 4);
  CHECK(r.mistakes[0].truth == 2);
  CHECK(r.mistakes[0].predicted == 0);
  CHECK(r.mistakes[0].confidence == 0.9f);
  CHECK(r.mistakes[1].index == 1);
  CHECK(classification_report(p, labels, 3, 1, 1).mistakes.size() == 1);
}

TEST_CASE("metrics: a class never predicted or never present scores 0, not NaN", "[metrics]") {
  const std::vector<float> p = {1, 0, 0, 1, 0, 0};
  const ClassificationReport r = classification_report(p, {0, 0}, 3, 1, 0);
  CHECK(r.per_class[1].precision == 0);
  CHECK(r.per_class[1].recall == 0);
  CHECK(r.per_class[1].f1 == 0);
  CHECK(r.per_class[0].f1 == Approx(1.0));
  CHECK(r.mistakes.empty());
  CHECK_THROWS_AS(classification_report(p, {0, 3}, 3, 1, 0), Error);
  CHECK_THROWS_AS(classification_report(p, {0}, 3, 1, 0), Error);
}

}  // namespace
}  // namespace plinth
