// Classification metrics from predicted probabilities: the confusion matrix, precision,
// recall and F1 per class with their macro and weighted averages, top-k accuracy and the
// most confident mistakes (the report `plinth eval` prints).
#pragma once

#include <cstdint>
#include <vector>

namespace plinth {

struct ClassMetrics {
  // A class never predicted has precision 0, one never present recall 0, and F1 is 0 when
  // both are (scikit-learn's zero_division=0).
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;  // samples whose true class it is (the averages: all samples)
};

struct Mistake {
  int index = 0;  // the sample's position in the data set
  int truth = 0, predicted = 0;
  float confidence = 0;  // the predicted class's probability
};

struct ClassificationReport {
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  std::vector<ClassMetrics> per_class;
  ClassMetrics macro;     // unweighted mean over classes
  ClassMetrics weighted;  // mean weighted by support
  double accuracy = 0;
  int top_k = 1;
  double top_k_accuracy = 0;      // the true class is among the k most probable
  std::vector<Mistake> mistakes;  // the most confident wrong predictions, most confident first
};

// probabilities: [labels.size(), classes]; labels in [0, classes). A tie in probability
// ranks the lower class first, as the argmax does. Keeps at most `mistakes` mistakes.
ClassificationReport classification_report(const std::vector<float>& probabilities,
                                           const std::vector<int32_t>& labels, int classes,
                                           int top_k, int mistakes);

}  // namespace plinth
