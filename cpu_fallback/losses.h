// Loss functions: mean over the batch, per-sample sums accumulated into stats (see
// Stat in engine/backend.h). grad may be null (evaluation). Sums are reduced in fixed
// blocks, so stats do not depend on the thread count. The n rows are the first of a batch
// of `batch` rows (one slice of it, or all): gradients are of the batch's mean.
#pragma once

#include <cstdint>

#include "engine/backend.h"

namespace plinth::cpu {

// Fused softmax + categorical cross-entropy on logits [n, classes]. probs (may be null)
// receives the softmax; grad = (softmax - onehot) / batch. A label outside [0, classes)
// counts as a wrong prediction and adds neither loss nor gradient.
template <typename T>
void softmax_cross_entropy(int threads, const T* logits, const int32_t* labels, int n, int batch,
                           int classes, T* probs, T* grad, T* stats);

// Keras MSE: mean over features, then over the batch; grad = 2 (pred - target) /
// (batch * features).
template <typename T>
void mse_loss(int threads, const T* pred, const T* target, int n, int batch, int features, T* grad,
              T* stats);

// Binary cross-entropy on probabilities (clamped as Keras); stats[correct] += per-sample
// fraction of elements with (pred > 0.5) == (target > 0.5).
template <typename T>
void bce_loss(int threads, const T* pred, const T* target, int n, int batch, int features, T* grad,
              T* stats);

// Pseudo-labels: labels[i] = argmax of row i where its softmax probability is at least
// threshold, else -1; counts[c] += rows labelled c.
template <typename T>
void pseudo_label(const T* logits, int n, int classes, T threshold, int32_t* labels, T* counts);

}  // namespace plinth::cpu
