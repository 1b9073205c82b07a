#include "engine/semi_supervised.h"

#include <algorithm>

#include "engine/rng.h"

namespace plinth {

namespace {

// Separate the stream's order and its two views' augmentation from the labelled ones.
constexpr uint64_t kStreamOrder = 0x756e6c6162;  // "unlab"
constexpr uint64_t kWeakView = 0x7765616b;       // "weak"
constexpr uint64_t kStrongView = 0x7374726f6e;   // "stron"

}  // namespace

std::vector<int32_t> unlabelled_order(int count, uint64_t seed, int64_t first, int64_t length) {
  std::vector<int32_t> order;
  order.reserve(static_cast<size_t>(length));
  std::vector<int32_t> pass;
  int64_t pass_index = -1;
  for (int64_t p = first; p < first + length; ++p) {
    if (p / count != pass_index) {
      pass_index = p / count;
      pass = epoch_permutation(count, seed, static_cast<int>(pass_index));
    }
    order.push_back(pass[static_cast<size_t>(p % count)]);
  }
  return order;
}

Trainer::Unlabelled::Unlabelled(Trainer& trainer, const Dataset& data, int64_t batches, int batch)
    : t_(trainer),
      recipe_(trainer.model_.training.semi_supervised),
      per_step_(recipe_.ratio * batch),
      count_(data.count),
      classes_(trainer.classes()),
      batches_(batches),
      data_(trainer.backend_, data, per_step_, trainer.options_.data_memory, batches * per_step_),
      weak_(trainer.model_, trainer.params_, trainer.backend_, per_step_, false, {}, 0,
            trainer.executor_slice(per_step_)),
      strong_(trainer.model_, trainer.params_, trainer.backend_, per_step_, true, trainer.frozen_,
              hash_combine(trainer.options_.seed, kStrongView), trainer.executor_slice(per_step_)),
      staging_(trainer.backend_, weak_.input().numel() * sizeof(float)),
      labelled_grads_(trainer.backend_, trainer.params_.size() * sizeof(float)),
      pseudo_counts_(trainer.backend_, classes_ * sizeof(float)) {}

void Trainer::Unlabelled::begin_epoch(int epoch, const TrainState& state) {
  const uint64_t seed = t_.options_.seed;
  const int64_t first = int64_t{epoch} * batches_ * per_step_;
  data_.set_order(unlabelled_order(count_, seed ^ kStreamOrder, first, batches_ * per_step_));
  weak_seed_ = hash_combine(seed ^ kWeakView, epoch);
  strong_seed_ = hash_combine(seed ^ kStrongView, epoch);
  t_.backend_.fill(pseudo_counts_.as<float>(), classes_, 0.0f);
  strong_.reset_stats();
  const std::vector<double>& saved = state.partial_unlabelled;
  if (state.batch_in_epoch > 0 && saved.size() == size_t(classes_) + kStatsSize) {
    const std::vector<float> counts(saved.begin(), saved.begin() + classes_);
    const std::vector<float> stats(saved.begin() + classes_, saved.end());
    t_.backend_.upload(pseudo_counts_.as<void>(), counts.data(), counts.size() * sizeof(float));
    t_.backend_.upload(strong_.stats(), stats.data(), stats.size() * sizeof(float));
  }
}

void Trainer::Unlabelled::queue_step(int64_t b, const int64_t* batch_index) {
  Backend& be = t_.backend_;
  Parameters& p = t_.params_;
  const Model& m = t_.model_;
  const int c = m.input[0], h = m.input[1], w = m.input[2];
  be.copy(labelled_grads_.as<void>(), p.grads(), p.size() * sizeof(float));
  const GatheredIds ids =
      t_.gather(data_, b, batch_index, per_step_, staging_.as<float>(), nullptr);
  be.augment(m.training.augment, staging_.as<float>(), weak_.input().data, per_step_, c, h, w,
             ids.sample_ids, ids.batch_index, weak_seed_);
  weak_.forward(false);
  be.pseudo_label(weak_.output().data, per_step_, classes_, recipe_.threshold, strong_.labels(),
                  pseudo_counts_.as<float>());
  be.augment(recipe_.strong, staging_.as<float>(), strong_.input().data, per_step_, c, h, w,
             ids.sample_ids, ids.batch_index, strong_seed_);
  strong_.gradients(per_step_);
  be.accumulate(labelled_grads_.as<float>(), p.grads(), p.size());
}

std::vector<double> Trainer::Unlabelled::counts() const {
  std::vector<float> counts(classes_), stats(kStatsSize);
  t_.backend_.download(counts.data(), pseudo_counts_.as<void>(), counts.size() * sizeof(float));
  t_.backend_.download(stats.data(), strong_.stats(), stats.size() * sizeof(float));
  std::vector<double> all(counts.begin(), counts.end());
  all.insert(all.end(), stats.begin(), stats.end());
  return all;
}

void Trainer::Unlabelled::record(EpochRecord& r) const {
  const std::vector<double> all = counts();
  r.pseudo_labels.assign(all.begin(), all.begin() + classes_);
  const double* stats = all.data() + classes_;
  const double seen = std::max(1.0, stats[kStatCount]);
  r.unlabelled_loss = stats[kStatLossSum] / seen;
  double labelled = 0;
  for (double n : r.pseudo_labels) labelled += n;
  r.above_threshold = labelled / seen;
}

}  // namespace plinth
