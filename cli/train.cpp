// plinth train: the main job.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/distributed.h"
#include "cli/logs.h"
#include "cli/signals.h"
#include "engine/atomic_file.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/progress.h"
#include "engine/stopping.h"
#include "engine/trainer.h"
#include "engine/user_text.h"

namespace plinth::cli {

namespace {

Args train_args() {
  Args a("train", "Train a model (default: the seed CNN on Fashion-MNIST).");
  a.option("model", "FILE",
           "model file (JSON: layers, loss, optimizer, recipe): a path, or the name of a model "
           "shipped with "
           "plinth (e.g. seed_cnn.json)",
           "models/seed_cnn.json")
      .option("epochs", "N", "epochs (default: the model file's, 10)")
      .range(1, kMaxEpochs)
      .option("batch-size", "N", "batch size (default: the model file's, 32)")
      .range(1, std::numeric_limits<int>::max())
      .option("lr", "X", "learning rate (default: the model file's)")
      .number_range(0, 1e6)
      .option("optimizer", "NAME", "sgd, adam, adamw or rmsprop (default: the model file's)")
      .option("weight-decay", "X",
              "L2 (adamw: decoupled) weight decay (default: the model file's, 0)")
      .number_range(0, 1e6)
      .option(
          "schedule", "NAME",
          "learning-rate schedule with its default settings: constant, step, cosine or one_cycle "
          "(default: the model file's; set step_epochs, gamma, min_lr... there)")
      .option("augment", "SPEC",
              "on-the-fly augmentation: none, or any of shift=PX,rotate=DEG,scale=F,flip,"
              "contrast=F,brightness=F,cutout=PX (default: the model file's)")
      .option(
          "val-split", "F",
          "fraction of the training set held out for validation (default: the model file's, 0.1)")
      .number_range(0, 1)
      .option("seed", "N", "seed for initialisation, shuffling, dropout and augmentation", "1")
      .range(0, std::numeric_limits<int64_t>::max())
      .option("max-steps", "N",
              "stop after N optimizer steps, N >= 1, e.g. for smoke runs (default: no limit)")
      .range(1, kMaxSteps)
      .option("history", "FILE", "write the per-epoch history (and the test result) as JSON")
      .option("csv", "FILE", "write one CSV row per epoch")
      .option("tensorboard", "DIR", "write TensorBoard scalar event files")
      .option(
          "save", "FILE",
          "save a safetensors checkpoint at the end, on SIGINT/SIGTERM and with --save-every; the "
          "optimizer state goes to FILE's .optim.safetensors sibling")
      .option("save-every", "N", "with --save: also save every N epochs (0: only at the end)", "0")
      .range(0, std::numeric_limits<int>::max())
      .option("save-best", "FILE",
              "after each epoch, save the checkpoint here if its val_accuracy is the best so far")
      .option("resume", "CKPT",
              "continue a saved run exactly where it stopped; options that change its settings are "
              "errors (only --epochs may grow)")
      .option("init-from", "CKPT",
              "initialise weights by layer name from a checkpoint; every tensor must match unless "
              "--non-strict")
      .flag("non-strict", "with --init-from: load what matches, report the rest")
      .option("reset", "LAYERS", "with --init-from: re-initialise these layers (e.g. fc2)")
      .option("freeze", "LAYERS",
              "layers that are not trained (comma-separated, e.g. conv1,conv2,conv3); a frozen "
              "batchnorm also keeps its running statistics")
      .option("lr-multiplier", "L=F,...", "per-layer learning-rate factors (e.g. conv1=0.1)")
      .option("clip-norm", "X", "clip gradients to this global norm (0: off)", "0")
      .number_range(0, 1e30)
      .option("on-nan", "stop|skip-step",
              "what a NaN/Inf loss or gradient does: stop with an error, or skip that step with a "
              "warning",
              "stop")
      .option("target-accuracy", "F",
              "stop once val (or with --test-each-epoch, test) accuracy reaches F (default: off)")
      .number_range(0, 1)
      .option("early-stopping", "PATIENCE",
              "stop once val_loss has not improved for PATIENCE epochs (0: off)", "0")
      .range(0, std::numeric_limits<int>::max())
      .option("early-stopping-min-delta", "X",
              "with --early-stopping: the smallest val_loss decrease that counts", "0")
      .number_range(0, 1e30)
      .flag("test-each-epoch", "also report test accuracy after every epoch (for time-to-accuracy)")
      .flag("quiet",
            "print only errors, warnings and the final result (no progress or status lines)")
      .flag("verbose",
            "also print the model's layers, output shapes and parameter counts, the GPU's "
            "convolution algorithms and how the steps ran (CUDA graphs or eagerly)")
      .option("adapt-threads", "on|off",
              "CPU: train on fewer threads while that is clearly faster (another process "
              "holding a core; results do not change); off keeps --threads",
              "on")
      .option("slices", "on|off",
              "CPU: run batches larger than 12 MB of activations slice by slice (each slice "
              "through every layer while it is in the caches; the same gradients to fp32 "
              "rounding); off: whole batches",
              "on");
  add_device_options(a);
  add_distributed_options(a);
  add_data_options(a);
  a.option("normalize", "train|none|MEANS/STDS",
           "input normalisation per channel: the training set's mean and std, none (pixel / 255), "
           "or given (e.g. 0.49,0.48,0.45/0.25,0.24,0.26) (default: the model file's)");
  a.option("labelled-fraction", "F",
           "keep a seeded, class-stratified fraction of the training labels", "1")
      .number_range(0, 1);
  a.option("unlabelled", "rest|PATH",
           "semi-supervised training (FixMatch) with unlabelled images: rest (the training images "
           "--labelled-fraction leaves unlabelled) or a data set whose training images are used "
           "without labels (default: none)")
      .option("semi-ratio", "N",
              "with --unlabelled: unlabelled images per labelled one in a step (default: the model "
              "file's, 7)")
      .range(1, 1 << 16)
      .option("semi-threshold", "F",
              "with --unlabelled: the weak view's probability a pseudo-label needs (default: the "
              "model file's, 0.95)")
      .number_range(0, 1)
      .option("semi-warmup-epochs", "N",
              "with --unlabelled: epochs on the labelled images alone first (default: the model "
              "file's, 0)")
      .range(0, kMaxEpochs)
      .option("strong-augment", "SPEC",
              "with --unlabelled: the strong view's augmentation, as --augment (default: the model "
              "file's)");
  return a;
}

// --augment: none, or shift=PX,rotate=DEG,scale=F and flip (a bare word, or flip=1/true
// and flip=0/false meaning what they say), as the model file's "augment" object.
nlohmann::json augment_json(const Args& a, const std::string& option) {
  nlohmann::json j = nlohmann::json::object();
  if (a.str(option) == "none") return j;
  for (const std::string& item : a.list(option)) {
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq), value = eq == item.npos ? "" : item.substr(eq + 1);
    const bool number = key == "shift" || key == "rotate" || key == "scale" || key == "contrast" ||
                        key == "brightness" || key == "cutout";
    if (key == "flip" && (eq == item.npos || value == "1" || value == "true"))
      j["horizontal_flip"] = true;
    else if (key == "flip" && (value == "0" || value == "false"))
      j["horizontal_flip"] = false;
    else if (number && eq != item.npos)
      j[key] = parse_real(value, a.who(option) + " " + key);
    else
      fail(
          "{} expects none or shift=PX,rotate=DEG,scale=F,flip[=0|1],contrast=F,brightness=F,"
          "cutout=PX, got {}",
          a.who(option), quoted_input(item));
  }
  return j;
}

// Applies command-line overrides to the model's recipe and optimizer.
void apply_overrides(const Args& a, Model& m) {
  if (a.has("epochs")) m.training.epochs = a.integer("epochs");
  if (a.has("batch-size")) m.training.batch_size = a.integer("batch-size");
  if (a.has("val-split")) m.training.val_split = a.number("val-split");
  if (a.has("optimizer"))
    m.optimizer.kind = parse_optimizer_kind(a.str("optimizer"), "--optimizer");
  if (a.has("lr")) m.optimizer.lr = static_cast<float>(a.number("lr"));
  if (a.has("weight-decay"))
    m.optimizer.weight_decay = static_cast<float>(a.number("weight-decay"));
  if (a.has("augment")) m.training.augment = parse_augment(augment_json(a, "augment"), "--augment");
  SemiSupervisedRecipe& semi = m.training.semi_supervised;
  if (a.has("semi-ratio")) semi.ratio = a.integer("semi-ratio");
  if (a.has("semi-threshold")) semi.threshold = static_cast<float>(a.number("semi-threshold"));
  if (a.has("semi-warmup-epochs")) semi.warmup_epochs = a.integer("semi-warmup-epochs");
  if (a.has("strong-augment"))
    semi.strong = parse_augment(augment_json(a, "strong-augment"), "--strong-augment");
  for (const char* option :
       {"semi-ratio", "semi-threshold", "semi-warmup-epochs", "strong-augment"})
    if (a.has(option) && !a.has("unlabelled"))
      fail("--{} only makes sense with --unlabelled", option);
  if (a.has("schedule"))
    m.training.schedule = parse_schedule({{"type", a.str("schedule")}}, "--schedule");
  if (!(m.optimizer.lr > 0 && m.optimizer.lr < 1e6))
    fail("--lr: expected a positive learning rate below 1e6, got {}", m.optimizer.lr);
  if (m.training.val_split >= 1) fail("--val-split: expected a fraction in [0, 1)");
}

// --lr-multiplier LAYER=F,...: each factor a finite number from 0 to 1e6.
nlohmann::json lr_multipliers(const Args& a) {
  nlohmann::json factors = nlohmann::json::object();
  for (const std::string& item : a.list("lr-multiplier")) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      fail("{} expects LAYER=FACTOR, got {}", a.who("lr-multiplier"), quoted_input(item));
    const std::string layer = item.substr(0, eq);
    factors[layer] =
        parse_real(item.substr(eq + 1), a.who("lr-multiplier") + " " + quoted_input(layer), 0, 1e6);
  }
  return factors;
}

nlohmann::json run_config(const Args& a, const Model& m, uint64_t seed) {
  return {{"seed", seed},
          {"data", a.str("data")},
          {"classes", parse_classes(a)},
          {"labelled_fraction", a.number("labelled-fraction")},
          {"unlabelled", a.str("unlabelled")},
          {"freeze", a.list("freeze")},
          {"lr_multiplier", lr_multipliers(a)},
          {"clip_norm", a.number("clip-norm")},
          {"normalize", a.str("normalize")},
          {"optimizer", optimizer_to_json(m.optimizer)},
          {"training", training_to_json(m.training)}};
}

// A resumed run must be the run that was saved: any hyper-parameter given on the command
// line that differs from the checkpoint's is an error, never silently used or ignored.
void check_resume_config(const nlohmann::json& saved, const nlohmann::json& requested,
                         const std::string& path) {
  // The saved side comes from a file: every piece is cut, and so is the number of them.
  // Objects are compared key by key, so that a difference names its leaf ("optimizer.lr");
  // keys the saved run did not know (settings newer than the checkpoint) are not compared.
  std::string diff;
  int differences = 0;
  const auto text = [](const nlohmann::json& j) {
    return quoted_input(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  };
  std::function<void(const std::string&, const nlohmann::json&, const nlohmann::json&)> compare =
      [&](const std::string& name, const nlohmann::json& was, const nlohmann::json& now) {
        if (was == now || name == "training.epochs") return;
        if (was.is_object() && now.is_object()) {
          for (const auto& [key, value] : was.items())
            compare(name.empty() ? key : name + "." + key, value,
                    now.contains(key) ? now[key] : nlohmann::json());
          return;
        }
        if (++differences > 8) return;
        diff +=
            fmt::format(" {}: saved {} vs now {};", quoted_input(name, 60), text(was), text(now));
      };
  if (saved.is_object()) compare("", saved, requested);
  if (!diff.empty())
    fail(
        "--resume {}: the command line changes the run's settings:{} resume with the same "
        "options (only --epochs may grow), or start a new run with --init-from",
        path, diff + (differences > 8 ? fmt::format(" ({} in all);", differences) : ""));
}

// --verbose: the layer table Keras' model.summary() prints, with each layer's inputs and
// the frozen layers marked.
void print_summary(const Model& m, const std::vector<std::string>& frozen) {
  std::fputs(m.layer_table(frozen).c_str(), stdout);
  std::printf("Total parameters: %zu\n", m.parameter_count());
  std::fflush(stdout);
}

// The run the command line asks for: the model with its overrides and the settings a
// checkpoint records; with --resume, the saved run, whose settings they must equal.
struct RunSpec {
  Model model;
  nlohmann::json config;
  std::optional<CheckpointMeta> resumed;
  uint64_t seed = 1;
};

RunSpec read_run_spec(const Args& a) {
  RunSpec run;
  run.seed = static_cast<uint64_t>(a.integer64("seed"));
  if (a.has("resume")) {
    run.resumed = read_checkpoint_meta(a.str("resume"));
    run.model = parse_model(run.resumed->model, a.str("resume") + ":model");
  } else {
    run.model = load_model(find_model_file(a.str("model")));
  }
  apply_overrides(a, run.model);
  run.config = run_config(a, run.model, run.seed);
  if (run.resumed) check_resume_config(run.resumed->config, run.config, a.str("resume"));
  if (a.has("reset") && !a.has("init-from")) fail("--reset only makes sense with --init-from");
  return run;
}

// The files the run will write, checked before any work: a save target must be absent or
// a regular file in a writable directory, no two outputs may be one file, and a lock keeps
// a second run from saving to the same path (it would lose its work only at the end).
class RunOutputs {
 public:
  explicit RunOutputs(const Args& a) {
    std::vector<std::pair<std::string, std::string>> files;  // option, path
    for (const char* option : {"save", "save-best"}) {
      if (!a.has(option)) continue;
      const std::string path = a.str(option);
      check_save_target(path);
      files.emplace_back("--" + std::string(option), path);
      files.emplace_back("--" + std::string(option) + "'s optimizer state",
                         optimizer_state_path(path));
    }
    if (a.has("history")) {
      check_save_target(a.str("history"));  // it is replaced atomically after each epoch
      files.emplace_back("--history", a.str("history"));
    }
    if (a.has("csv")) files.emplace_back("--csv", a.str("csv"));
    for (size_t i = 0; i < files.size(); ++i)
      for (size_t j = i + 1; j < files.size(); ++j)
        if (same_file(files[i].second, files[j].second))
          fail("{} and {} name the same file {}; give each its own", files[i].first, files[j].first,
               files[i].second);
    for (const char* option : {"save", "save-best"})
      if (a.has(option)) locks_.push_back(std::make_unique<SaveLock>(a.str(option)));
  }

 private:
  static bool same_file(const std::string& x, const std::string& y) {
    std::error_code ex, ey;
    namespace fs = std::filesystem;
    return fs::weakly_canonical(x, ex) == fs::weakly_canonical(y, ey) && !ex && !ey;
  }
  std::vector<std::unique_ptr<SaveLock>> locks_;
};

// --init-from: weights by layer name, strict unless --non-strict, reporting every tensor.
void init_from(const Args& a, Parameters& params) {
  const std::string path = a.str("init-from");
  const LoadReport r = naming_options({{"reset", "--reset"}}, [&] {
    return load_weights(path, params, /*strict=*/false, a.list("reset"));
  });
  if (!a.on("non-strict") && !r.complete())
    fail(
        "{}: weights do not match the model:{} use --non-strict to load what matches, "
        "or --reset LAYER to re-initialise a layer",
        path, r.mismatches());
  status(fmt::format("init from {}: loaded {} tensors", path, r.loaded.size()));
  for (const auto& n : r.loaded) status("  loaded      " + n);
  for (const auto& n : r.mismatched) status("  skipped     " + n + " (shape)");
  for (const auto& n : r.unexpected) status("  ignored     " + n + " (not in the model)");
  for (const auto& n : r.missing) status("  initialised " + n + " (not in the checkpoint)");
  for (const auto& n : a.list("reset")) status("  initialised " + n + " (--reset)");
}

// Where training starts: fresh weights, a resumed run or weights loaded by name; and the
// input normalisation, the saved one or the training set's.
struct Start {
  TrainState state;
  Normalization normalization;
};

// --normalize, or the model file's "normalize".
Normalization normalization_for(const Args& a, const Model& model, const Dataset& train) {
  const std::string spec = a.has("normalize")         ? a.str("normalize")
                           : model.training.normalize ? "train"
                                                      : "none";
  if (spec == "train") return normalization_of(train);
  if (spec == "none") return {};
  auto refuse = [&] {
    fail(
        "--normalize: expected train, none or MEANS/STDS (e.g. 0.5,0.5,0.5/0.25,0.25,0.25), got "
        "'{}'",
        spec);
  };
  auto numbers = [&](const std::string& list) {
    std::vector<float> values;
    for (size_t start = 0, end = 0; start <= list.size(); start = end + 1) {
      end = std::min(list.find(',', start), list.size());
      const std::string item = list.substr(start, end - start);
      values.push_back(static_cast<float>(parse_real(item, "--normalize", -1e6, 1e6)));
    }
    return values;
  };
  const size_t slash = spec.find('/');
  if (slash == std::string::npos) refuse();
  return {numbers(spec.substr(0, slash)), numbers(spec.substr(slash + 1))};
}

Start load_start(const Args& a, const RunSpec& run, const Data& data, Parameters& params) {
  params.initialize(run.seed);
  Start start;
  if (run.resumed) {
    load_weights(a.str("resume"), params, true);
    load_optimizer_state(a.str("resume"), params);
    start.state = run.resumed->state;
    start.normalization = run.resumed->normalization;
    status(fmt::format("resuming {} after epoch {}, step {}", a.str("resume"), start.state.epoch,
                       start.state.step));
    return start;
  }
  start.normalization = normalization_for(a, run.model, data.train);
  if (a.has("init-from")) init_from(a, params);
  return start;
}

TrainOptions train_options(const Args& a, const RunSpec& run) {
  TrainOptions opt;
  opt.epochs = run.model.training.epochs;
  opt.batch_size = run.model.training.batch_size;
  opt.seed = run.seed;
  opt.max_steps = a.has("max-steps") ? a.integer64("max-steps") : -1;
  opt.freeze = a.list("freeze");
  const nlohmann::json& lr_multiplier = run.config["lr_multiplier"];
  for (auto it = lr_multiplier.begin(); it != lr_multiplier.end(); ++it)
    opt.lr_multiplier[it.key()] = it->get<float>();
  opt.clip_norm = static_cast<float>(a.number("clip-norm"));
  if (!(opt.clip_norm >= 0)) fail("--clip-norm: expected a number >= 0 (0: off)");
  const std::string on_nan = a.str("on-nan");
  if (on_nan != "stop" && on_nan != "skip-step") fail("--on-nan: expected stop or skip-step");
  opt.on_nan = on_nan == "stop" ? OnNan::stop : OnNan::skip_step;
  opt.cuda_graphs = cuda_graphs_from(a);
  opt.adapt_threads = on_off(a, "adapt-threads");
  opt.slices = on_off(a, "slices");
  opt.data_memory = data_memory(a);
  return opt;
}

// Writes the run's checkpoints: its weights, settings, normalisation and where it stands.
class RunSaver {
 public:
  RunSaver(const Parameters& params, CheckpointMeta meta)
      : params_(params), meta_(std::move(meta)) {
    if (meta_.run_id.empty()) meta_.run_id = new_run_id();  // one id for all its saves
  }
  void save(const std::string& path, const TrainState& state) {
    meta_.state = state;
    save_checkpoint(path, params_, meta_);
  }

 private:
  const Parameters& params_;
  CheckpointMeta meta_;
};

// --save-every and --save-best: checkpoints at epoch ends.
class EpochCheckpoints : public TrainHook {
 public:
  EpochCheckpoints(const Args& a, RunSaver& saver, const TrainState& start)
      : saver_(saver),
        every_(a.integer("save-every")),
        every_path_(a.str("save")),
        best_path_(a.str("save-best")) {
    for (const EpochRecord& r : start.history) best_ = std::max(best_, r.val_accuracy);
  }
  bool on_epoch_end(const EpochRecord& record, const TrainState& state) override {
    if (!every_path_.empty() && every_ > 0 && state.epoch % every_ == 0)
      saver_.save(every_path_, state);
    if (!best_path_.empty() && record.val_accuracy > best_) {
      best_ = record.val_accuracy;
      saver_.save(best_path_, state);
    }
    return true;
  }

 private:
  RunSaver& saver_;
  int every_;
  std::string every_path_, best_path_;
  double best_ = -1;
};

// One rank of a data-parallel job, or one process when ranks is null: every rank trains
// and evaluates; rank 0 alone prints, logs and saves.
int train(const Args& a, Communicator* ranks) {
  const bool leader = !ranks || ranks->rank() == 0;
  if (a.on("quiet") && a.on("verbose"))
    fail("plinth train: --quiet and --verbose exclude each other");
  set_quiet(a.on("quiet"));
  // Rank 0 alone writes the outputs, so it alone checks and locks them.
  std::optional<RunOutputs> outputs;
  if (leader) outputs.emplace(a);
  const RunSpec run = read_run_spec(a);
  DeviceChoice device =
      a.on("verbose") ? open_device_from(a, ranks, [](const std::string& line) { status(line); })
                      : open_device_from(a, ranks);
  Backend& backend = *device.backend;
  const AttachedRanks attached(ranks, backend);
  if (ranks) {
    const int batch = run.model.training.batch_size, n = ranks->size();
    status(batch % n == 0 ? fmt::format("data-parallel: {}; global batch {} = {} x {} per rank",
                                        ranks->description(), batch, n, batch / n)
                          : fmt::format("data-parallel: {}", ranks->description()));
  }
  const Data data = load_data(a, run.model, run.model.training.val_split, run.seed);
  const double megabytes = static_cast<double>(data.train.pixel_bytes()) / (1 << 20);
  const bool streamed = data.train.pixel_bytes() > data_memory(a);
  // The trainer runs streamed steps eagerly (DeviceDataset::kNotReplayable); said once, here.
  const bool graphs_lost = streamed && backend.kind() == DeviceKind::cuda && cuda_graphs_from(a);
  status(streamed
             ? fmt::format("training set: {:.1f} MB of pixels, more than --data-memory {}: "
                           "streamed in chunks of at most that (at least one batch){}",
                           megabytes, a.integer64("data-memory"),
                           graphs_lost ? "; steps run eagerly, not from CUDA graphs, which "
                                         "cannot replay the host's copies"
                                       : "")
             : fmt::format("training set: {:.1f} MB of pixels, resident on the device", megabytes));
  Parameters params(run.model, backend);
  const Start start = load_start(a, run, data, params);
  const Model& model = run.model;
  status(fmt::format("model {} ({}): {} parameters, loss {}, optimizer {} lr {}", model.name,
                     model.source, params.count(), loss_name(model.loss),
                     optimizer_name(model.optimizer.kind), model.optimizer.lr));
  if (a.on("verbose") && leader) print_summary(model, a.list("freeze"));
  TrainOptions options = train_options(a, run);
  options.communicator = ranks;
  if (data.unlabelled.count > 0) {
    if (ranks)
      fail("--unlabelled: semi-supervised training runs in one process, not {} ranks",
           ranks->size());
    if (model.loss != LossKind::categorical_crossentropy)
      fail("--unlabelled: semi-supervised training needs a classifier, not a {} model",
           loss_name(model.loss));
    options.unlabelled = &data.unlabelled;
    const SemiSupervisedRecipe& semi = model.training.semi_supervised;
    status(
        fmt::format("semi-supervised (FixMatch): {} unlabelled images per step ({} x {}), "
                    "threshold {}, {} warm-up epochs",
                    semi.ratio * options.batch_size, semi.ratio, options.batch_size, semi.threshold,
                    semi.warmup_epochs));
  }
  Trainer trainer = naming_options({{"freeze", "--freeze"},
                                    {"lr_multiplier", "--lr-multiplier"},
                                    {"batch_size", "--batch-size"}},
                                   [&] { return Trainer(model, backend, params, options); });
  naming_options({{"normalization", "--normalize"}},
                 [&] { trainer.set_normalization(start.normalization); });

  // A resumed run keeps its id: its checkpoints stay one run's.
  RunSaver saver(params, {model.to_json(),
                          run.config,
                          {},
                          start.normalization,
                          data.train.class_names,
                          run.resumed ? run.resumed->run_id : ""});
  std::optional<RunLogs> logs;
  std::optional<EpochCheckpoints> checkpoints;
  ProgressPrinter progress(!a.on("quiet") && leader);
  std::vector<TrainHook*> hooks{&progress};
  if (leader) {
    hooks.push_back(&logs.emplace(a, backend.description(), model));
    hooks.push_back(&checkpoints.emplace(a, saver, start.state));
  }
  std::optional<TargetAccuracy> target;
  if (a.has("target-accuracy"))
    hooks.push_back(&target.emplace(static_cast<float>(a.number("target-accuracy"))));
  std::optional<EarlyStopping> early;
  if (a.integer("early-stopping") > 0)
    hooks.push_back(
        &early.emplace(a.integer("early-stopping"), a.number("early-stopping-min-delta")));
  TrainState end;
  bool signalled = false;
  try {
    StopOnSignal signals;  // only while training: a signal stops the run after the current step
    std::vector<TrainHook*> training_hooks = hooks;
    training_hooks.push_back(&signals);
    end = trainer.fit(data.train, data.val, start.state, training_hooks,
                      a.on("test-each-epoch") ? &data.test : nullptr);
    signalled =
        ranks ? ranks->any(signals.received(), "the agreement to stop") : signals.received();
  } catch (const NonFiniteError& e) {
    fail("{} (try a lower --lr or --clip-norm; --on-nan skip-step skips such steps)", e.finding());
  }
  if (early && early->stopped() && leader) progress.line(early->reason());
  if (a.on("verbose")) status(trainer.graph_report());
  if (a.has("save") && leader) {
    saver.save(a.str("save"), end);
    status("saved " + a.str("save"));
  }
  if (signalled) {
    notice("stopped by a signal" +
           std::string(a.has("save") ? "; resume with --resume " + a.str("save") : ""));
    return 130;
  }
  const EvalResult test = trainer.evaluate(data.test);
  if (!leader) return 0;
  logs->finish(end.history, test);
  std::printf("Test accuracy: %.4f - test loss: %.4f (%d images)\n", test.accuracy, test.loss,
              test.count);
  return 0;
}

}  // namespace

int train_command(int argc, char** argv) {
  Args a = train_args();
  if (!a.parse(argc, argv)) return 0;
  const std::unique_ptr<Communicator> ranks = join_job(a);
  return as_rank(ranks.get(), [&] { return train(a, ranks.get()); });
}

}  // namespace plinth::cli
