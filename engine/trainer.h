// The training loop: data resident on the device, one executor for training and one for
// evaluation sharing the parameters, per-epoch validation, Keras-style progress, history.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "engine/executor.h"
#include "engine/model.h"
#include "engine/parameters.h"

namespace plinth {

enum class OnNan { stop, skip_step };
enum class Verbosity { quiet, normal, verbose };

struct TrainOptions {
  int epochs = 10;
  int batch_size = 32;
  int eval_batch_size = 500;
  uint64_t seed = 1;
  int64_t max_steps = -1;  // stop after this many optimizer steps in total (smoke runs)
  std::vector<std::string> freeze;            // layer names
  std::map<std::string, float> lr_multiplier;  // layer name -> factor on the lr
  float clip_norm = 0;                         // global-norm clipping; 0 is off
  OnNan on_nan = OnNan::stop;
  Verbosity verbosity = Verbosity::normal;
  std::optional<float> target_accuracy;  // stop once validation/test accuracy reaches it
  // Keras EarlyStopping(monitor="val_loss"): stop once val_loss has not fallen below its
  // best minus min_delta for `patience` epochs in a row (engine/early_stopping.h). 0 is
  // off; on, it needs a validation set.
  int early_stopping_patience = 0;
  double early_stopping_min_delta = 0;
};

struct EpochRecord {
  int epoch = 0;
  double loss = 0, accuracy = 0, val_loss = 0, val_accuracy = 0;
  double lr = 0, seconds = 0, samples_per_second = 0;
  double test_accuracy = -1;  // only when an evaluation set per epoch was requested
  int64_t steps = 0;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  int count = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted], categorical only
};

// Where a run stands: enough to continue it exactly (the RNG is counter-based, so the
// seed, epoch and step are the whole random state).
struct TrainState {
  int epoch = 0;             // completed epochs
  int64_t step = 0;          // optimizer steps taken
  int64_t batch_in_epoch = 0;  // > 0 when stopped inside epoch `epoch` (after a signal)
  double partial_stats[kStatsSize] = {};  // that epoch's accumulated stats so far
  double partial_seconds = 0;
  std::vector<EpochRecord> history;
  bool finished_early = false;  // stopped by a signal, max_steps, target accuracy or early stopping
};

class Trainer {
 public:
  Trainer(const Model& model, Backend& backend, Parameters& params, TrainOptions options);
  ~Trainer();

  // Called after every epoch with the state reached; return false to stop.
  using EpochCallback = std::function<bool(const TrainState&)>;
  TrainState fit(const Dataset& train, const Dataset& val, TrainState start = {},
                 const EpochCallback& on_epoch = {}, const Dataset* per_epoch_test = nullptr);
  EvalResult evaluate(const Dataset& data, bool confusion = false);
  // Softmax probabilities (or, with logits, the last layer's raw outputs) [count, classes]
  // of a categorical model.
  std::vector<float> predict(const Dataset& data, bool logits = false);

  double learning_rate(int epoch, int64_t step_in_run, int64_t steps_per_epoch) const;
  const TrainOptions& options() const { return options_; }
  // Inputs are (pixel / 255 - mean) / std; the defaults (0, 1) keep them in [0, 1].
  void set_normalization(float mean, float std) { mean_ = mean; std_ = std; }
  // Set by a signal handler: finish the current step, then stop as after an epoch.
  static void request_stop();
  static bool stop_requested();

 private:
  struct DeviceData;
  const Model& model_;
  Backend& backend_;
  Parameters& params_;
  TrainOptions options_;
  struct Group {
    size_t offset, count;
    float lr_multiplier;
  };
  DeviceData& device_data(const Dataset& data, int batch);
  Executor& eval_executor(int batch);
  std::string diagnose_nonfinite(const Executor& exec) const;
  void check_input_shape(const Dataset& d) const;

  std::vector<bool> frozen_;
  std::vector<Group> groups_;  // contiguous runs of trainable parameters
  float mean_ = 0, std_ = 1;
  DeviceBuffer scalars_;  // [0] grad sum of squares, [1] clip scale, [2..] step checks
  std::map<const Dataset*, std::unique_ptr<DeviceData>> data_;
  std::unique_ptr<Executor> eval_;
};

}  // namespace plinth
