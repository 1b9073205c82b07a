// plinth train: the main job.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/checkpoint.h"
#include "engine/cli/commands.h"
#include "engine/cli/common.h"
#include "engine/cli/logs.h"
#include "engine/trainer.h"

namespace plinth::cli {

namespace {

void on_signal(int) { Trainer::request_stop(); }

// Applies command-line overrides to the model's recipe and optimizer.
void apply_overrides(const Args& a, Model& m) {
  if (a.has("epochs")) m.training.epochs = a.integer("epochs");
  if (a.has("batch-size")) m.training.batch_size = a.integer("batch-size");
  if (a.has("val-split")) m.training.val_split = a.number("val-split");
  if (a.has("optimizer")) m.optimizer.kind = parse_optimizer_kind(a.str("optimizer"), "--optimizer");
  if (a.has("lr")) m.optimizer.lr = static_cast<float>(a.number("lr"));
  if (a.has("weight-decay")) m.optimizer.weight_decay = static_cast<float>(a.number("weight-decay"));
  if (a.has("augment")) {
    const std::string v = a.str("augment");
    nlohmann::json j = nlohmann::json::object();
    if (v != "none") {
      for (const std::string& item : a.list("augment")) {
        const size_t eq = item.find('=');
        const std::string key = item.substr(0, eq);
        if (key == "flip") j["horizontal_flip"] = true;
        else if (eq == std::string::npos) fail("--augment: expected shift=N,rotate=DEG,scale=F,flip or none, got '{}'", item);
        else j[key] = std::stod(item.substr(eq + 1));
      }
    }
    m.training.augment = parse_augment(j, "--augment");
  }
  if (a.has("schedule")) m.training.schedule = parse_schedule({{"type", a.str("schedule")}}, "--schedule");
  if (m.training.epochs < 1 || m.training.batch_size < 1) fail("--epochs and --batch-size must be positive");
  if (!(m.optimizer.lr > 0 && m.optimizer.lr < 1e6)) fail("--lr: expected a positive learning rate, got {}", m.optimizer.lr);
  if (!(m.optimizer.weight_decay >= 0)) fail("--weight-decay: expected a number >= 0");
  if (m.training.val_split < 0 || m.training.val_split >= 1) fail("--val-split: expected a fraction in [0, 1)");
}

nlohmann::json run_config(const Args& a, const Model& m, uint64_t seed) {
  nlohmann::json lr_mult = nlohmann::json::object();
  for (const std::string& item : a.list("lr-multiplier")) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) fail("--lr-multiplier: expected LAYER=FACTOR, got '{}'", item);
    lr_mult[item.substr(0, eq)] = std::stod(item.substr(eq + 1));
  }
  return {{"seed", seed}, {"data", a.str("data")}, {"classes", parse_classes(a)},
          {"labelled_fraction", a.number("labelled-fraction")}, {"freeze", a.list("freeze")},
          {"lr_multiplier", lr_mult}, {"clip_norm", a.number("clip-norm")},
          {"optimizer", optimizer_to_json(m.optimizer)}, {"training", training_to_json(m.training)}};
}

// A resumed run must be the run that was saved: any hyper-parameter given on the command
// line that differs from the checkpoint's is an error, never silently used or ignored.
void check_resume_config(const nlohmann::json& saved, const nlohmann::json& requested, const std::string& path) {
  std::string diff;
  for (auto it = saved.begin(); it != saved.end(); ++it) {
    if (it.key() == "training") {
      for (auto t = it->begin(); t != it->end(); ++t)
        if (t.key() != "epochs" && requested["training"][t.key()] != *t)
          diff += fmt::format(" training.{}: saved {} vs now {};", t.key(), t->dump(), requested["training"][t.key()].dump());
    } else if (requested[it.key()] != *it) {
      diff += fmt::format(" {}: saved {} vs now {};", it.key(), it->dump(), requested[it.key()].dump());
    }
  }
  if (!diff.empty())
    fail("--resume {}: the command line changes the run's settings:{} resume with the same "
         "options (only --epochs may grow), or start a new run with --init-from", path, diff);
}

// --verbose: the layer table Keras' model.summary() prints, with frozen layers marked.
void print_summary(const Model& m, const std::vector<std::string>& frozen) {
  std::printf("%-28s%-18s%10s\n", "Layer (type)", "Output shape", "Params");
  std::vector<Shape> shapes;
  for (const Node& n : m.nodes) {
    const Shape in = n.input < 0 ? Shape{1, m.input[0], m.input[1], m.input[2]} : shapes[n.input];
    size_t count = 0;
    for (const ParamSpec& p : n.layer->param_specs(in)) count += p.shape.numel();
    shapes.push_back(n.layer->output_shape(in));
    Shape out;  // per sample: without the batch dimension
    for (int i = 1; i < shapes.back().rank; ++i) out.dims[out.rank++] = shapes.back().dims[i];
    const bool is_frozen = std::find(frozen.begin(), frozen.end(), n.layer->name()) != frozen.end();
    std::printf("%-28s%-18s%10zu%s\n", (n.layer->name() + " (" + n.layer->type() + ")").c_str(), out.str().c_str(),
                count, is_frozen ? " (frozen)" : "");
  }
  std::printf("Total parameters: %zu\n", m.parameter_count());
  std::fflush(stdout);
}

}  // namespace

int train_command(int argc, char** argv) {
  Args a("train", "Train a model (default: the seed CNN on Fashion-MNIST).");
  a.option("model", "FILE",
           "model file (JSON: layers, loss, optimizer, recipe): a path, or the name of a model shipped with "
           "plinth (e.g. seed_cnn.json)", "models/seed_cnn.json")
      .option("epochs", "N", "epochs (default: the model file's, 10)")
      .option("batch-size", "N", "batch size (default: the model file's, 32)")
      .option("lr", "X", "learning rate (default: the model file's)")
      .option("optimizer", "NAME", "sgd, adam, adamw or rmsprop (default: the model file's)")
      .option("weight-decay", "X", "L2 (adamw: decoupled) weight decay (default: the model file's, 0)")
      .option("schedule", "NAME",
              "learning-rate schedule with its default settings: constant, step, cosine or one_cycle "
              "(default: the model file's; set step_epochs, gamma, min_lr... there)")
      .option("augment", "SPEC",
              "on-the-fly augmentation: none, or any of shift=PX,rotate=DEG,scale=F,flip (default: the model file's)")
      .option("val-split", "F", "fraction of the training set held out for validation (default: the model file's, 0.1)")
      .option("seed", "N", "seed for initialisation, shuffling, dropout and augmentation", "1")
      .option("max-steps", "N", "stop after N optimizer steps, e.g. for smoke runs (default: no limit)")
      .option("history", "FILE", "write the per-epoch history (and the test result) as JSON")
      .option("csv", "FILE", "write one CSV row per epoch")
      .option("tensorboard", "DIR", "write TensorBoard scalar event files")
      .option("save", "FILE",
              "save a safetensors checkpoint at the end, on SIGINT/SIGTERM and with --save-every; the "
              "optimizer state goes to FILE's .optim.safetensors sibling")
      .option("save-every", "N", "with --save: also save every N epochs (0: only at the end)", "0")
      .range(0, std::numeric_limits<int>::max())
      .option("save-best", "FILE", "after each epoch, save the checkpoint here if its val_accuracy is the best so far")
      .option("resume", "CKPT",
              "continue a saved run exactly where it stopped; options that change its settings are "
              "errors (only --epochs may grow)")
      .option("init-from", "CKPT", "initialise weights by layer name from a checkpoint; every tensor must match unless --non-strict")
      .flag("non-strict", "with --init-from: load what matches, report the rest")
      .option("reset", "LAYERS", "with --init-from: re-initialise these layers (e.g. fc2)")
      .option("freeze", "LAYERS", "layers that are not trained (comma-separated, e.g. conv1,conv2,conv3)")
      .option("lr-multiplier", "L=F,...", "per-layer learning-rate factors (e.g. conv1=0.1)")
      .option("clip-norm", "X", "clip gradients to this global norm (0: off)", "0")
      .option("on-nan", "stop|skip-step",
              "what a NaN/Inf loss or gradient does: stop with an error, or skip that step with a warning", "stop")
      .option("target-accuracy", "F",
              "stop once val (or with --test-each-epoch, test) accuracy reaches F (default: off)")
      .option("early-stopping", "PATIENCE", "stop once val_loss has not improved for PATIENCE epochs (0: off)", "0")
      .range(0, std::numeric_limits<int>::max())
      .option("early-stopping-min-delta", "X", "with --early-stopping: the smallest val_loss decrease that counts", "0")
      .flag("test-each-epoch", "also report test accuracy after every epoch (for time-to-accuracy)")
      .flag("quiet", "print only errors, warnings and the final result (no progress or status lines)")
      .flag("verbose", "also print the model's layers, output shapes and parameter counts");
  add_device_options(a);
  add_data_options(a);
  a.option("labelled-fraction", "F", "keep a seeded, class-stratified fraction of the training labels", "1");
  if (!a.parse(argc, argv)) return 0;
  if (a.on("quiet") && a.on("verbose")) fail("plinth train: --quiet and --verbose exclude each other");
  set_quiet(a.on("quiet"));

  const uint64_t seed = static_cast<uint64_t>(a.integer64("seed"));
  Model model;
  CheckpointMeta resume_meta;
  const bool resume = a.has("resume");
  if (resume) {
    resume_meta = read_checkpoint_meta(a.str("resume"));
    model = parse_model(resume_meta.model, a.str("resume") + ":model");
  } else {
    model = load_model(find_model_file(a.str("model")));
  }
  apply_overrides(a, model);
  const nlohmann::json config = run_config(a, model, seed);
  if (resume) check_resume_config(resume_meta.config, config, a.str("resume"));
  if (a.has("reset") && !a.has("init-from")) fail("--reset only makes sense with --init-from");

  DeviceChoice device = open_device_from(a);
  Backend& backend = *device.backend;
  const Data data = load_data(a, model.training.val_split, seed);

  Parameters params(model, backend);
  params.initialize(seed);
  float mean = 0, std = 1;
  if (model.training.normalize) {
    const PixelStats s = dataset_stats(data.train.images);
    mean = static_cast<float>(s.mean);
    std = static_cast<float>(s.std);
  }
  TrainState state;
  if (resume) {
    load_weights(a.str("resume"), params, true);
    load_optimizer_state(a.str("resume"), params);
    state = resume_meta.state;
    mean = resume_meta.mean;
    std = resume_meta.std;
    status(fmt::format("resuming {} after epoch {}, step {}", a.str("resume"), state.epoch, state.step));
  } else if (a.has("init-from")) {
    const LoadReport r = load_weights(a.str("init-from"), params, !a.on("non-strict"), a.list("reset"));
    status(fmt::format("init from {}: loaded {} tensors", a.str("init-from"), r.loaded.size()));
    for (const auto& n : r.loaded) status("  loaded      " + n);
    for (const auto& n : r.mismatched) status("  skipped     " + n + " (shape)");
    for (const auto& n : r.unexpected) status("  ignored     " + n + " (not in the model)");
    for (const auto& n : r.missing) status("  initialised " + n + " (not in the checkpoint)");
    for (const auto& n : a.list("reset")) status("  initialised " + n + " (--reset)");
  }
  status(fmt::format("model {} ({}): {} parameters, loss {}, optimizer {} lr {}", model.name, model.source,
                     params.count(), loss_name(model.loss), optimizer_name(model.optimizer.kind), model.optimizer.lr));
  if (a.on("verbose")) print_summary(model, a.list("freeze"));

  TrainOptions opt;
  opt.epochs = model.training.epochs;
  opt.batch_size = model.training.batch_size;
  opt.seed = seed;
  opt.max_steps = a.has("max-steps") ? a.integer64("max-steps") : -1;
  opt.freeze = a.list("freeze");
  for (auto it = config["lr_multiplier"].begin(); it != config["lr_multiplier"].end(); ++it)
    opt.lr_multiplier[it.key()] = it->get<float>();
  opt.clip_norm = static_cast<float>(a.number("clip-norm"));
  if (!(opt.clip_norm >= 0)) fail("--clip-norm: expected a number >= 0 (0: off)");
  const std::string on_nan = a.str("on-nan");
  if (on_nan != "stop" && on_nan != "skip-step") fail("--on-nan: expected stop or skip-step");
  opt.on_nan = on_nan == "stop" ? OnNan::stop : OnNan::skip_step;
  opt.verbosity = a.on("quiet") ? Verbosity::quiet : a.on("verbose") ? Verbosity::verbose : Verbosity::normal;
  if (a.has("target-accuracy")) opt.target_accuracy = a.number("target-accuracy");
  opt.early_stopping_patience = a.integer("early-stopping");
  opt.early_stopping_min_delta = a.number("early-stopping-min-delta");
  Trainer trainer(model, backend, params, opt);
  trainer.set_normalization(mean, std);

  RunLogs logs(a, backend.description(), model);
  CheckpointMeta meta{model.to_json(), config, {}, mean, std};
  double best = -1;
  for (const EpochRecord& r : state.history) best = std::max(best, r.val_accuracy);
  const int save_every = a.integer("save-every");
  auto save = [&](const std::string& path, const TrainState& s) {
    meta.state = s;
    save_checkpoint(path, params, meta);
  };
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const TrainState end = trainer.fit(data.train, data.val, state, [&](const TrainState& s) {
    logs.epoch(s.history.back());
    if (a.has("save") && save_every > 0 && s.epoch % save_every == 0) save(a.str("save"), s);
    if (a.has("save-best") && s.history.back().val_accuracy > best) {
      best = s.history.back().val_accuracy;
      save(a.str("save-best"), s);
    }
    return true;
  }, a.on("test-each-epoch") ? &data.test : nullptr);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (a.has("save")) {
    save(a.str("save"), end);
    status("saved " + a.str("save"));
  }
  if (Trainer::stop_requested()) {
    notice("stopped by a signal" + std::string(a.has("save") ? "; resume with --resume " + a.str("save") : ""));
    return 130;
  }
  const EvalResult test = trainer.evaluate(data.test);
  logs.finish(end.history, test);
  std::printf("Test accuracy: %.4f - test loss: %.4f (%d images)\n", test.accuracy, test.loss, test.count);
  return 0;
}

}  // namespace plinth::cli
