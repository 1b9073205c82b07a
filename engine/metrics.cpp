#include "engine/metrics.h"

#include <algorithm>

#include "engine/error.h"

namespace plinth {
namespace {

double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

}  // namespace

ClassificationReport classification_report(const std::vector<float>& probabilities,
                                           const std::vector<int32_t>& labels, int classes,
                                           int top_k, int mistakes) {
  const size_t n = labels.size();
  if (classes < 1 || probabilities.size() != n * classes)
    fail("classification_report: {} probabilities for {} samples of {} classes",
         probabilities.size(), n, classes);
  if (top_k < 1) fail("classification_report: top_k must be at least 1, got {}", top_k);
  ClassificationReport r;
  r.top_k = top_k;
  r.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  int64_t correct = 0, in_top_k = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* p = probabilities.data() + i * classes;
    const int truth = labels[i];
    if (truth < 0 || truth >= classes)
      fail("classification_report: label {} of sample {} is outside 0 to {}", truth, i,
           classes - 1);
    const int predicted = static_cast<int>(std::max_element(p, p + classes) - p);
    ++r.confusion[truth][predicted];
    correct += predicted == truth;
    // The true class's rank: the classes ahead of it, lower classes winning ties.
    int ahead = 0;
    for (int c = 0; c < classes; ++c) ahead += p[c] > p[truth] || (p[c] == p[truth] && c < truth);
    in_top_k += ahead < top_k;
    if (predicted != truth)
      r.mistakes.push_back({static_cast<int>(i), truth, predicted, p[predicted]});
  }
  std::stable_sort(r.mistakes.begin(), r.mistakes.end(),
                   [](const Mistake& a, const Mistake& b) { return a.confidence > b.confidence; });
  if (r.mistakes.size() > static_cast<size_t>(std::max(0, mistakes))) r.mistakes.resize(mistakes);
  r.accuracy = ratio(double(correct), double(n));
  r.top_k_accuracy = ratio(double(in_top_k), double(n));

  for (int c = 0; c < classes; ++c) {
    int64_t predicted = 0;
    for (int t = 0; t < classes; ++t) predicted += r.confusion[t][c];
    ClassMetrics m;
    for (int64_t v : r.confusion[c]) m.support += v;
    const double hits = double(r.confusion[c][c]);
    m.precision = ratio(hits, double(predicted));
    m.recall = ratio(hits, double(m.support));
    m.f1 = ratio(2 * m.precision * m.recall, m.precision + m.recall);
    r.per_class.push_back(m);
    r.macro.precision += m.precision / classes;
    r.macro.recall += m.recall / classes;
    r.macro.f1 += m.f1 / classes;
    r.weighted.precision += m.precision * ratio(double(m.support), double(n));
    r.weighted.recall += m.recall * ratio(double(m.support), double(n));
    r.weighted.f1 += m.f1 * ratio(double(m.support), double(n));
  }
  r.macro.support = r.weighted.support = static_cast<int64_t>(n);
  return r;
}

}  // namespace plinth
