// The training loop: data resident on the device, one executor for training and one for
// evaluation sharing the parameters, per-epoch validation and history. It prints nothing:
// progress, logs, checkpoints and stopping rules are training hooks (engine/train_hook.h).
// A training step and an evaluation batch queue the same ops with the same arguments each
// time, so a backend that records graphs (CUDA) replays them (engine/step_graph.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "engine/model.h"
#include "engine/parameters.h"
#include "engine/train_hook.h"
#include "engine/train_state.h"

namespace plinth {

class Communicator;
class DeviceDataset;
class StepGraph;

enum class OnNan { stop, skip_step };

struct TrainOptions {
  int epochs = 10;
  int batch_size = 32;
  // evaluate() and predict() run batches of this size, 0 meaning batch_size, or of the
  // largest size the device can hold if that is less (a model that trains at batch 32
  // must not fail, or swap, in its evaluation).
  int eval_batch_size = 0;
  uint64_t seed = 1;
  int64_t max_steps = -1;  // stop after this many optimizer steps in total (smoke runs)
  // Layer names: no parameter updates; a frozen BatchNorm also keeps its running statistics.
  std::vector<std::string> freeze;
  std::map<std::string, float> lr_multiplier;  // layer name -> factor on the lr
  float clip_norm = 0;                         // global-norm clipping; 0 is off
  OnNan on_nan = OnNan::stop;
  // Device memory a data set's pixels may take: a set that fits is uploaded whole, a larger
  // one streams through a chunk of this size (engine/device_dataset.h), with the same
  // batches either way. Steps that read a streamed set cannot be replayed from a graph.
  int64_t data_memory = int64_t{4} << 30;
  // Data-parallel ranks (engine/communicator.h), or null for this process alone. Every rank
  // draws the same order and trains on its shard of each batch: batch_size is the global
  // batch, which must divide by the ranks, so a run equals one process's with that batch.
  // Every rank calls fit() and evaluate(), which are then collectives; evaluate() takes
  // each rank's share of the batches and reduces the sums.
  Communicator* communicator = nullptr;
  // Replay training steps and evaluation batches from graphs where the backend can
  // record them (CUDA graphs; Backend::capture), after kEagerSteps eager ones.
  bool cuda_graphs = true;
  // CPU: while training, run on fewer threads than the backend's whenever that is clearly
  // faster, as when another process holds a core (engine/thread_governor.h). One process
  // only: a rank's step time also waits on the other ranks.
  bool adapt_threads = true;
  // Run a batch larger than the backend's slice slice by slice (Executor: the CPU's caches);
  // false: whole batches, as a GPU runs them (the same gradients to fp32 rounding).
  bool slices = true;
  // Semi-supervised training (the model's SemiSupervisedRecipe) with these unlabelled
  // images, or null. Categorical models, one process.
  const Dataset* unlabelled = nullptr;
};

// How steps ran: replayed from a recorded graph or eagerly, and why.
struct GraphUse {
  int64_t replays = 0, eager = 0;
  size_t launches = 0;       // per replay
  std::string eager_reason;  // why steps ran eagerly; "" while they were replayed
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  int count = 0;
  int batch = 0;  // the batch size it ran at (TrainOptions::eval_batch_size)
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted], categorical only
};

// What fit() throws when on_nan is stop and a step's loss or gradient is not finite.
// finding() says where ("non-finite loss or gradient at step 7 (epoch 1, batch 7), first in
// the output of layer 'fc1'; stopping"); what() adds what to change, in TrainOptions' terms.
class NonFiniteError : public Error {
 public:
  explicit NonFiniteError(const std::string& finding);
  const std::string& finding() const { return finding_; }

 private:
  std::string finding_;
};

class Trainer {
 public:
  Trainer(const Model& model, Backend& backend, Parameters& params, TrainOptions options);
  ~Trainer();

  // Trains from `start` (a new run, or the state of a stopped one to resume it exactly)
  // until options().epochs epochs are done, max_steps steps are taken or a hook stops the
  // run, and returns where it ended. val (may be empty) and per_epoch_test (may be null)
  // are evaluated after every epoch. Hooks are called in the order given.
  TrainState fit(const Dataset& train, const Dataset& val, TrainState start = {},
                 const std::vector<TrainHook*>& hooks = {},
                 const Dataset* per_epoch_test = nullptr);
  // Benchmarks: `warmup` training steps, then `windows` timed runs of `steps` steps each,
  // run as fit() runs them (graphs included) over the training set's first-epoch order,
  // from its start again as needed; returns each window's seconds, the device's work
  // included. The weights train as in fit().
  std::vector<double> time_steps(const Dataset& train, int64_t warmup, int64_t steps, int windows);
  EvalResult evaluate(const Dataset& data, bool confusion = false);
  // Softmax probabilities (or, with logits, the last layer's raw outputs) [count, classes]
  // of a categorical model.
  std::vector<float> predict(const Dataset& data, bool logits = false);

  double learning_rate(int epoch, int64_t step_in_run, int64_t steps_per_epoch) const;
  // How the last fit()'s training steps ran, and this trainer's evaluation batches.
  const GraphUse& training_graph() const { return training_graph_; }
  // The last fit()'s (or time_steps') training executor's arena, for memory reports.
  size_t training_arena_bytes() const { return training_arena_bytes_; }
  int training_slice() const { return training_slice_; }  // samples per slice (Executor)
  GraphUse evaluation_graph() const;
  // One line saying both, e.g. for a log: "training steps: 1685 replayed from a CUDA
  // graph of 52 launches, 2 eager; evaluation batches: ...".
  std::string graph_report() const;
  // Steps run eagerly before the first capture: cuBLAS and cuDNN settle first.
  static constexpr int kEagerSteps = 2;
  const TrainOptions& options() const { return options_; }
  // Inputs are (pixel / 255 - mean[c]) / std[c] per channel c; one value stands for every
  // channel, and the defaults (0, 1) keep inputs in [0, 1].
  void set_normalization(const Normalization& normalization);
  void set_normalization(float mean, float std) { set_normalization(Normalization{{mean}, {std}}); }

 private:
  class Run;         // one fit(): the loop over epochs and steps, with its executor, data and hooks
  class Unlabelled;  // a step's unlabelled share (engine/semi_supervised.h)
  struct Group {
    size_t offset, count;
    float lr_multiplier;
  };
  template <typename Visit>
  void forward_batches(DeviceDataset& data, int count, int batch, StepGraph* graph, Visit&& visit,
                       bool sharded = false);
  int ranks() const;
  int rank() const;
  DeviceDataset& device_data(const Dataset& data, int batch);
  // An inference executor for up to `count` samples a batch: see eval_batch_size.
  Executor& eval_executor(int count);
  int classes() const;  // outputs of a categorical model
  // The Executor slice for a batch: the backend's choice, or whole with slices off.
  int executor_slice(int batch) const { return options_.slices ? Executor::kAutoSlice : batch; }
  std::string diagnose_nonfinite(Executor& exec) const;
  void check_input_shape(const Dataset& d) const;
  // What augment reads for a gathered batch: sample_ids[*batch_index * batch + i].
  struct GatheredIds {
    const int32_t* sample_ids;
    const int64_t* batch_index;  // null for 0
  };
  // Queues gather_batch of batch b of data's order into out (normalised) and labels_out.
  // Resident data: the batch is *batch_index (a device counter) and b is not read, so every
  // batch queues the same call; streamed data: the host first copies batch b into the
  // device's chunk, and batch_index is not read.
  GatheredIds gather(DeviceDataset& data, int64_t b, const int64_t* batch_index, int batch,
                     float* out, int32_t* labels_out);

  const Model& model_;
  Backend& backend_;
  Parameters& params_;
  TrainOptions options_;
  std::vector<bool> frozen_;
  std::vector<Group> groups_;   // contiguous runs of trainable parameters
  DeviceBuffer normalization_;  // [2, channels]: the mean, then the std, of each channel
  DeviceBuffer scalars_;        // [0] grad sum of squares, [1] clip scale, [2..] step checks
  DeviceBuffer counters_;       // device batch counters: [0] training, [1] evaluation
  std::map<const Dataset*, std::unique_ptr<DeviceDataset>> data_;
  std::unique_ptr<Executor> eval_;
  int eval_requested_ = 0;  // the batch eval_ was asked for (it may hold fewer)
  // Per data set on the device: its evaluation batch as a graph (for eval_'s batch size).
  std::map<const DeviceDataset*, std::unique_ptr<StepGraph>> eval_graphs_;
  GraphUse training_graph_;
  size_t training_arena_bytes_ = 0;
  int training_slice_ = 0;
};

}  // namespace plinth
