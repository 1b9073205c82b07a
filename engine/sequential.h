// A Keras-like C++ front end: build a model layer by layer, compile, fit, evaluate,
// predict, save and load.
//
//   plinth::Sequential model({1, 28, 28});
//   model.add(plinth::conv2d(32, 3, "relu")).add(plinth::maxpool2d(2))
//        .add(plinth::flatten()).add(plinth::dense(10, "softmax"));
//   model.compile(plinth::adam(1e-3), "categorical_crossentropy");
//   auto history = model.fit(train, {.epochs = 10, .batch_size = 32, .validation_split = 0.1});
//   auto result = model.evaluate(test);
//   model.save("cnn.safetensors");
//
// It is a thin layer over the engine, not a second one: each layer is the JSON object a
// model file holds, compile() builds the Model with parse_model (same validation, same
// errors), training is the Trainer and checkpoints are engine/checkpoint.h's. Layers get
// the names the CLI's model files use (conv1, pool1, flatten, fc1, ...), so a model built
// here and models/seed_cnn.json share checkpoints in both directions.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/dataset.h"
#include "engine/model.h"
#include "engine/trainer.h"

namespace plinth {

// One layer: the JSON object of a model file's "layers" entry.
struct LayerSpec {
  nlohmann::json json;
  LayerSpec named(const std::string& name) const;  // instead of the automatic name
};

// Any registered layer type (`plinth layers` lists them) with its model-file fields:
// layer("conv2d", {{"filters", 32}, {"kernel", 3}}), or with "input" a graph's branches.
// The helpers below are shorthands.
LayerSpec layer(const std::string& type, const nlohmann::json& fields = nlohmann::json::object());

// activation: "linear" (none), "relu", "sigmoid", "tanh"; "softmax" only on the last
// dense layer (fused with categorical_crossentropy). padding: "valid", "same" or pixels.
LayerSpec conv2d(int filters, int kernel, const std::string& activation = "linear", int stride = 1,
                 const nlohmann::json& padding = "valid");
LayerSpec maxpool2d(int size = 2, int stride = 0);  // stride 0: the window size (Keras)
LayerSpec dense(int units, const std::string& activation = "linear");
LayerSpec flatten();
LayerSpec dropout(double rate);
LayerSpec activation(const std::string& name);
LayerSpec batchnorm2d(const std::string& activation = "linear");
LayerSpec batchnorm1d(const std::string& activation = "linear");
LayerSpec avgpool2d(int size = 2, int stride = 0);  // stride 0: the window size
LayerSpec global_avgpool();
// Layers that merge branches name their inputs: the names of earlier layers (automatic
// ones included), or "input". A residual connection:
//   model.add(conv2d(8, 3, "relu", 1, "same")).add(conv2d(8, 3, "linear", 1, "same"))
//        .add(merge("add", {"conv1", "conv2"}, "relu"));
LayerSpec merge(const std::string& type, const std::vector<std::string>& inputs,
                const std::string& activation = "linear");

// Optimizers with Keras' defaults.
OptimizerSpec sgd(float lr = 0.01f, float momentum = 0, bool nesterov = false);
OptimizerSpec adam(float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f);
OptimizerSpec adamw(float lr = 1e-3f, float weight_decay = 0.01f);
OptimizerSpec rmsprop(float lr = 1e-3f, float rho = 0.9f);

// Learning-rate schedules over one fit() (see Trainer::learning_rate).
Schedule constant_lr();
Schedule step_decay(int step_epochs, float gamma = 0.1f);  // lr * gamma^(epoch / step_epochs)
Schedule cosine(float min_lr = 0);                         // per step, from lr down to min_lr
Schedule one_cycle(float min_lr = 0, float warmup = 0.3f, float start_factor = 0.04f);

struct CompileOptions {
  std::string device = "auto";  // "auto", "cpu", "cuda" or "cuda:N" (see open_device)
  int threads = 0;              // CPU threads; 0: all cores
  uint64_t seed = 1;            // weight initialisation
  CudaOptions cuda;
  bool quiet = false;  // otherwise one line on stderr says which device runs (and why)
};

enum class Verbosity { quiet, normal, verbose };

struct FitOptions {
  int epochs = 10;
  int batch_size = 32;
  // Keras validation_split: this fraction at the end of the data (before any shuffling)
  // is held out for validation. Only with fit(data, options).
  double validation_split = 0;
  std::optional<Schedule> schedule;  // unset: the model's (constant unless loaded otherwise)
  AugmentSpec augment;
  // Standardise inputs with this training set's mean and std per channel, which
  // evaluate(), predict() and save() then keep; false feeds pixel / 255.
  bool normalize = false;
  // Keras EarlyStopping on val_loss (see engine/stopping.h); 0 is off.
  int early_stopping_patience = 0;
  double early_stopping_min_delta = 0;
  uint64_t seed = 1;       // shuffling, dropout, augmentation
  int64_t max_steps = -1;  // stop after this many optimizer steps (smoke runs)
  // normal: Keras-style progress on stdout; quiet: only warnings (on stderr).
  Verbosity verbosity = Verbosity::normal;
  // The caller's training hooks (engine/train_hook.h), called after the progress and
  // early stopping; any of them can stop the run.
  std::vector<TrainHook*> hooks;
};

struct History {
  std::vector<EpochRecord> epochs;  // one record per completed epoch
  bool stopped_early = false;       // by early stopping, max_steps or a hook
  bool early_stopped = false;       // by early stopping
};

class Sequential {
 public:
  explicit Sequential(std::array<int, 3> input, std::string name = "sequential");  // {C, H, W}
  Sequential(Sequential&&) noexcept;
  Sequential& operator=(Sequential&&) noexcept;
  ~Sequential();

  // Appends a layer, named by its type's prefix (conv<k>, pool<k>, fc<k>, dropout<k>,
  // act<k>, bn<k>, add<k>, ..., or flatten then flatten<k>) unless it has a name. It
  // consumes the layer before it unless its "input" names others. Checks the layer's own
  // fields now; shapes are checked by compile().
  Sequential& add(const LayerSpec& layer);

  // Builds the model, opens the device, allocates and initialises the parameters.
  // loss: "categorical_crossentropy" (labels are class indices), "mse" or
  // "binary_crossentropy". Compiling again (after add(), or to change the optimizer)
  // keeps the weights of layers whose name and shape are unchanged and resets the
  // optimizer state, as Keras does.
  void compile(const OptimizerSpec& optimizer, const std::string& loss = "categorical_crossentropy",
               const CompileOptions& options = {});

  // Each fit() is one run of options.epochs epochs (the schedule spans it); weights and
  // the optimizer state carry over from earlier calls.
  History fit(const Dataset& data, const FitOptions& options = {});
  History fit(const Dataset& train, const Dataset& validation, const FitOptions& options = {});
  EvalResult evaluate(const Dataset& data, bool confusion = false);
  // Softmax probabilities [count, classes], row-major; labels are not needed.
  std::vector<float> predict(const Dataset& images);

  // A safetensors checkpoint (PyTorch names and layouts, the model JSON and the last
  // fit's history in its metadata, the optimizer state in a sibling file): readable by
  // `plinth eval/predict --checkpoint`, `plinth train --init-from/--resume` and PyTorch.
  void save(const std::string& path) const;
  // Loads weights by layer name into this compiled model; every tensor must match.
  void load_weights(const std::string& path);
  // Rebuilds and compiles the saved model, with its weights, optimizer state and input
  // normalisation: training can continue where it stopped.
  static Sequential load(const std::string& path, const CompileOptions& options = {});

  bool compiled() const { return compiled_ != nullptr; }
  // The model file JSON: layers and input always; loss, optimizer and recipe once compiled.
  nlohmann::json to_json() const;
  // Need compile():
  size_t parameter_count() const;
  std::string summary() const;  // a table of layers, output shapes and parameter counts
  const Model& model() const;
  Parameters& parameters();
  Backend& backend();

 private:
  struct Compiled;
  Compiled& require_compiled(const char* what) const;
  History run_fit(const Dataset& train, const Dataset& val, const FitOptions& options);
  std::unique_ptr<Trainer> make_trainer(const TrainOptions& options) const;

  std::string name_;
  std::array<int, 3> input_;
  std::vector<nlohmann::json> layers_;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace plinth
