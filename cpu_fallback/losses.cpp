#include "cpu_fallback/losses.h"

#include <algorithm>
#include <cmath>

#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"
#include "engine/elementwise.h"

namespace plinth::cpu {
namespace {

struct LossSums {
  double loss = 0, correct = 0;
  LossSums& operator+=(const LossSums& o) {
    loss += o.loss;
    correct += o.correct;
    return *this;
  }
};

// Rows per block: enough elements that a block is worth a thread.
size_t min_rows(int features) { return std::max<size_t>(1, 4096 / std::max(1, features)); }

// Adds row(i) (a LossSums) over the n rows of width `width` to stats, in blocks whose cut
// does not depend on the thread count.
template <typename T, typename Row>
void add_row_sums(int threads, int n, int width, T* stats, Row&& row) {
  const LossSums sums =
      block_reduce<LossSums>(threads, n, min_rows(width), [&](size_t lo, size_t hi) {
        LossSums s;
        for (size_t i = lo; i < hi; ++i) s += row(i);
        return s;
      });
  stats[kStatLossSum] += static_cast<T>(sums.loss);
  stats[kStatCorrect] += static_cast<T>(sums.correct);
  stats[kStatCount] += static_cast<T>(n);
}

}  // namespace

template <typename T>
void softmax_cross_entropy(int threads, const T* logits, const int32_t* labels, int n, int batch,
                           int classes, T* probs, T* grad, T* stats) {
  const T inv_n = T(1) / static_cast<T>(batch);
  auto row = [&](size_t i) {
    const T* z = logits + i * classes;
    int best = 0;  // the first maximum wins ties
    for (int j = 1; j < classes; ++j)
      if (z[j] > z[best]) best = j;
    const T zmax = z[best];  // subtracted for numerical stability
    T sum = 0;
    for (int j = 0; j < classes; ++j) sum += std::exp(z[j] - zmax);
    const int label = labels[i];
    const bool valid = label >= 0 && label < classes;
    if (probs || grad) {
      for (int j = 0; j < classes; ++j) {
        const T p = std::exp(z[j] - zmax) / sum;
        if (probs) probs[i * classes + j] = p;
        if (grad) grad[i * classes + j] = valid ? (p - (j == label ? T(1) : T(0))) * inv_n : T(0);
      }
    }
    LossSums s;
    if (valid) {
      s.loss = static_cast<double>(std::log(sum) - (z[label] - zmax));
      s.correct = best == label ? 1.0 : 0.0;
    }
    return s;
  };
  add_row_sums(threads, n, classes, stats, row);
}

template <typename T>
void mse_loss(int threads, const T* pred, const T* target, int n, int batch, int features, T* grad,
              T* stats) {
  const T scale = T(2) / (static_cast<T>(batch) * static_cast<T>(features));
  auto row = [&](size_t i) {
    const size_t base = i * features;
    T sum = 0;
    for (int j = 0; j < features; ++j) {
      const T d = pred[base + j] - target[base + j];
      sum += d * d;
      if (grad) grad[base + j] = scale * d;
    }
    return LossSums{static_cast<double>(sum) / features, 0};
  };
  add_row_sums(threads, n, features, stats, row);
}

template <typename T>
void bce_loss(int threads, const T* pred, const T* target, int n, int batch, int features, T* grad,
              T* stats) {
  const T scale = T(1) / (static_cast<T>(batch) * static_cast<T>(features));
  auto row = [&](size_t i) {
    const size_t base = i * features;
    T loss = 0;
    int agree = 0;
    for (int j = 0; j < features; ++j) {
      const T p = pred[base + j], t = target[base + j];
      T dp;
      loss += bce_element(p, t, &dp);
      if (grad) grad[base + j] = scale * dp;
      agree += (p > T(0.5)) == (t > T(0.5));
    }
    return LossSums{static_cast<double>(loss) / features, static_cast<double>(agree) / features};
  };
  add_row_sums(threads, n, features, stats, row);
}

// One pass over n rows of a few classes: too little work to share among threads, and in
// one thread the counts are the same in any run.
template <typename T>
void pseudo_label(const T* logits, int n, int classes, T threshold, int32_t* labels, T* counts) {
  for (int i = 0; i < n; ++i) {
    const T* z = logits + static_cast<size_t>(i) * classes;
    int best = 0;  // the first maximum wins ties
    for (int j = 1; j < classes; ++j)
      if (z[j] > z[best]) best = j;
    T sum = 0;
    for (int j = 0; j < classes; ++j) sum += std::exp(z[j] - z[best]);
    const bool confident = T(1) / sum >= threshold;  // the argmax's softmax probability
    labels[i] = confident ? best : -1;
    if (confident) counts[best] += T(1);
  }
}

template void softmax_cross_entropy<float>(int, const float*, const int32_t*, int, int, int, float*,
                                           float*, float*);
template void softmax_cross_entropy<double>(int, const double*, const int32_t*, int, int, int,
                                            double*, double*, double*);
template void pseudo_label<float>(const float*, int, int, float, int32_t*, float*);
template void pseudo_label<double>(const double*, int, int, double, int32_t*, double*);
template void mse_loss<float>(int, const float*, const float*, int, int, int, float*, float*);
template void mse_loss<double>(int, const double*, const double*, int, int, int, double*, double*);
template void bce_loss<float>(int, const float*, const float*, int, int, int, float*, float*);
template void bce_loss<double>(int, const double*, const double*, int, int, int, double*, double*);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::softmax_cross_entropy(const float* logits, const int32_t* labels, int n, int batch,
                                       int classes, float* probs, float* grad, float* stats) {
  cpu::softmax_cross_entropy(threads_, logits, labels, n, batch, classes, probs, grad, stats);
}

void CpuBackend::pseudo_label(const float* logits, int n, int classes, float threshold,
                              int32_t* labels, float* counts) {
  cpu::pseudo_label(logits, n, classes, threshold, labels, counts);
}

void CpuBackend::mse_loss(const float* pred, const float* target, int n, int batch, int features,
                          float* grad, float* stats) {
  cpu::mse_loss(threads_, pred, target, n, batch, features, grad, stats);
}

void CpuBackend::bce_loss(const float* pred, const float* target, int n, int batch, int features,
                          float* grad, float* stats) {
  cpu::bce_loss(threads_, pred, target, n, batch, features, grad, stats);
}

}  // namespace plinth
