// Semi-supervised training's share of a training step (FixMatch, Sohn et al. 2020; the
// settings are SemiSupervisedRecipe in engine/model.h). After the labelled batch's backward
// pass, each step takes the next ratio x batch unlabelled images of an endless stream:
//  1. the weak view (the recipe's augment) runs forward in inference mode, so no gradient
//     flows through it, and pseudo_label turns its predictions into labels (-1 below the
//     threshold);
//  2. the strong view (strong_augment) of the same images trains towards those labels:
//     softmax cross-entropy over all its rows (rows labelled -1 add no loss and no
//     gradient), its own mean, so with weight 1 next to the labelled loss;
//  3. its gradient is added to the labelled one, which was set aside before.
// Every op reads fixed buffers and the step's device batch counter, as the labelled half
// does, so the whole step still records as one graph.
//
// The stream's position is a function of the epoch and the batch: epoch e's steps take
// the positions [e * batches * per_step, (e + 1) * batches * per_step), warm-up epochs
// included (they skip theirs). A resumed run therefore reads the same images with the
// same augmentation without saving anything but where it stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/device_dataset.h"
#include "engine/trainer.h"

namespace plinth {

// Positions [first, first + length) of an endless stream over `count` images that visits
// each image once per pass, in a seeded order of its own for every pass.
std::vector<int32_t> unlabelled_order(int count, uint64_t seed, int64_t first, int64_t length);

class Trainer::Unlabelled {
 public:
  // batches: labelled steps per epoch; batch: labelled images per step.
  Unlabelled(Trainer& trainer, const Dataset& data, int64_t batches, int batch);

  bool streamed() const { return data_.streamed(); }
  // Whether epoch's steps take unlabelled images (after the warm-up epochs).
  bool active(int epoch) const { return epoch >= recipe_.warmup_epochs; }
  // The epoch's stream and augmentation seeds; its counts from `state` when it resumes
  // inside the epoch, else zero.
  void begin_epoch(int epoch, const TrainState& state);
  // Queues step b's unlabelled share (see above): the gradients hold the labelled batch's
  // and get the unlabelled one's added.
  void queue_step(int64_t b, const int64_t* batch_index);
  // Executor::on_slice_done for both passes of the share.
  void on_slice_done(const std::function<void(int)>& f) {
    weak_.on_slice_done(f);
    strong_.on_slice_done(f);
  }
  const float* loss_stats() const { return strong_.stats(); }
  // The epoch's counts so far: per class, then the unlabelled stats (TrainState's
  // partial_unlabelled).
  std::vector<double> counts() const;
  void record(EpochRecord& r) const;

 private:
  Trainer& t_;
  const SemiSupervisedRecipe& recipe_;
  const int per_step_;  // unlabelled images per step: ratio x batch
  const int count_, classes_;
  const int64_t batches_;
  DeviceDataset data_;
  Executor weak_, strong_;
  DeviceBuffer staging_;         // the gathered images, before either augmentation
  DeviceBuffer labelled_grads_;  // the labelled batch's gradients, set aside
  DeviceBuffer pseudo_counts_;   // per class: images pseudo-labelled so far this epoch
  uint64_t weak_seed_ = 0, strong_seed_ = 0;
};

}  // namespace plinth
