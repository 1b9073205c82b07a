#include "engine/sequential.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "engine/checkpoint.h"
#include "engine/device_select.h"
#include "engine/error.h"
#include "engine/parameters.h"
#include "engine/progress.h"
#include "engine/stopping.h"

namespace plinth {

struct Sequential::Compiled {
  std::unique_ptr<Backend> backend;  // first: destroyed after the parameters it holds
  Model model;
  std::unique_ptr<Parameters> params;
  Normalization normalization;  // of the last fit (or of the checkpoint)
  TrainState state;             // where the last fit ended, saved with the weights
  uint64_t seed = 1;            // the last fit's seed, saved in the checkpoint's config
};

namespace {

// Layers whose name and shape did not change keep their weights (and buffers) across a
// recompile.
void copy_matching_weights(const Parameters& from, Parameters& to) {
  const std::vector<float> src = from.download(from.values());
  std::vector<float> dst = to.download(to.values());
  for (const ParamEntry& e : to.entries()) {
    const ParamEntry* old = from.find(e.name);
    if (old && old->shape == e.shape)
      std::copy_n(src.begin() + static_cast<ptrdiff_t>(old->offset), e.shape.numel(),
                  dst.begin() + static_cast<ptrdiff_t>(e.offset));
  }
  to.upload(to.values(), dst);
  const std::vector<std::byte> src_buffers = from.download_buffers();
  std::vector<std::byte> dst_buffers = to.download_buffers();
  for (const BufferEntry& e : to.buffer_entries()) {
    const BufferEntry* old = from.find_buffer(e.name);
    if (old && old->shape == e.shape && old->type == e.type)
      std::copy_n(src_buffers.begin() + static_cast<ptrdiff_t>(old->offset), e.bytes(),
                  dst_buffers.begin() + static_cast<ptrdiff_t>(e.offset));
  }
  to.upload_buffers(dst_buffers);
}

// The names the CLI's model files use: conv1, pool1, flatten, fc1, ...; the k-th layer
// of a type is <prefix>k (LayerType::name_prefix), skipping names already taken.
std::string automatic_name(const std::vector<nlohmann::json>& layers, const std::string& type) {
  const LayerType* t = find_layer_type(type);
  const std::string prefix = t ? t->name_prefix : "layer";
  auto taken = [&](const std::string& name) {
    return std::any_of(layers.begin(), layers.end(),
                       [&](const nlohmann::json& l) { return l["name"] == name; });
  };
  const auto same_type = [&](const nlohmann::json& l) { return l["type"] == type; };
  int k = 1 + static_cast<int>(std::count_if(layers.begin(), layers.end(), same_type));
  for (;; ++k) {
    const std::string name = t && t->bare_first && k == 1 ? prefix : prefix + std::to_string(k);
    if (!taken(name)) return name;
  }
}

// How errors name the model.
std::string who(const std::string& name) { return fmt::format("Sequential '{}'", name); }

}  // namespace

LayerSpec LayerSpec::named(const std::string& name) const {
  LayerSpec s = *this;
  s.json["name"] = name;
  return s;
}

LayerSpec layer(const std::string& type, const nlohmann::json& fields) {
  if (!fields.is_object()) fail("layer('{}'): the fields must be a JSON object", type);
  LayerSpec s{fields};
  s.json["type"] = type;
  return s;
}

LayerSpec conv2d(int filters, int kernel, const std::string& activation, int stride,
                 const nlohmann::json& padding) {
  return layer("conv2d", {{"filters", filters},
                          {"kernel", kernel},
                          {"stride", stride},
                          {"padding", padding},
                          {"activation", activation}});
}

LayerSpec maxpool2d(int size, int stride) {
  LayerSpec s = layer("maxpool2d", {{"size", size}});
  if (stride != 0) s.json["stride"] = stride;
  return s;
}

LayerSpec dense(int units, const std::string& activation) {
  return layer("dense", {{"units", units}, {"activation", activation}});
}

LayerSpec flatten() { return layer("flatten"); }
LayerSpec dropout(double rate) { return layer("dropout", {{"rate", rate}}); }
LayerSpec activation(const std::string& name) {
  return layer("activation", {{"activation", name}});
}
LayerSpec batchnorm2d(const std::string& activation) {
  return layer("batchnorm2d", {{"activation", activation}});
}
LayerSpec batchnorm1d(const std::string& activation) {
  return layer("batchnorm1d", {{"activation", activation}});
}
LayerSpec avgpool2d(int size, int stride) {
  LayerSpec s = layer("avgpool2d", {{"size", size}});
  if (stride != 0) s.json["stride"] = stride;
  return s;
}
LayerSpec global_avgpool() { return layer("global_avgpool"); }
LayerSpec merge(const std::string& type, const std::vector<std::string>& inputs,
                const std::string& activation) {
  LayerSpec s = layer(type, {{"input", inputs}});
  if (activation != "linear") s.json["activation"] = activation;
  return s;
}

OptimizerSpec sgd(float lr, float momentum, bool nesterov) {
  return {.kind = OptimizerKind::sgd, .lr = lr, .momentum = momentum, .nesterov = nesterov};
}
OptimizerSpec adam(float lr, float beta1, float beta2) {
  return {.kind = OptimizerKind::adam, .lr = lr, .beta1 = beta1, .beta2 = beta2};
}
OptimizerSpec adamw(float lr, float weight_decay) {
  return {.kind = OptimizerKind::adamw, .lr = lr, .weight_decay = weight_decay};
}
OptimizerSpec rmsprop(float lr, float rho) {
  return {.kind = OptimizerKind::rmsprop, .lr = lr, .beta2 = rho};
}

Schedule constant_lr() { return {}; }
Schedule step_decay(int step_epochs, float gamma) {
  return {.kind = ScheduleKind::step, .step_epochs = step_epochs, .gamma = gamma};
}
Schedule cosine(float min_lr) { return {.kind = ScheduleKind::cosine, .min_lr = min_lr}; }
Schedule one_cycle(float min_lr, float warmup, float start_factor) {
  return {.kind = ScheduleKind::one_cycle,
          .min_lr = min_lr,
          .warmup = warmup,
          .start_factor = start_factor};
}

Sequential::Sequential(std::array<int, 3> input, std::string name)
    : name_(std::move(name)), input_(input) {}
Sequential::Sequential(Sequential&&) noexcept = default;
Sequential& Sequential::operator=(Sequential&&) noexcept = default;
Sequential::~Sequential() = default;

Sequential& Sequential::add(const LayerSpec& layer) {
  const nlohmann::json& j = layer.json;
  const bool typed = j.is_object() && j.contains("type") && j["type"].is_string();
  const std::string name = automatic_name(layers_, typed ? j["type"].get<std::string>() : "");
  // Builds the layer once, so a bad field fails here, at the add() that has it.
  const auto built = layer_from_json(
      j, fmt::format("{} layer {} ({})", who(name_), layers_.size() + 1, name), name);
  nlohmann::json named = j;
  named["name"] = built->name();
  layers_.push_back(std::move(named));
  return *this;
}

void Sequential::compile(const OptimizerSpec& optimizer, const std::string& loss,
                         const CompileOptions& options) {
  if (layers_.empty()) fail("{}: compile() needs layers; add() them first", who(name_));
  nlohmann::json j{{"name", name_},
                   {"input", input_},
                   {"layers", layers_},
                   {"loss", loss},
                   {"optimizer", optimizer_to_json(optimizer)}};
  if (compiled_) j["training"] = training_to_json(compiled_->model.training);
  auto c = std::make_unique<Compiled>();
  c->model = parse_model(j, who(name_));
  DeviceChoice device = open_device(options.device, options.threads, options.cuda);
  c->backend = std::move(device.backend);
  if (!options.quiet) {
    if (!device.note.empty()) std::fprintf(stderr, "%s\n", device.note.c_str());
    std::fprintf(stderr, "plinth: device: %s\n", c->backend->description().c_str());
  }
  c->params = std::make_unique<Parameters>(c->model, *c->backend);
  c->params->initialize(options.seed);
  if (compiled_) {
    copy_matching_weights(*compiled_->params, *c->params);
    c->normalization = compiled_->normalization;
  }
  compiled_ = std::move(c);
}

Sequential::Compiled& Sequential::require_compiled(const char* what) const {
  if (!compiled_) fail("{}: {}() needs a compiled model; call compile() first", who(name_), what);
  return *compiled_;
}

std::unique_ptr<Trainer> Sequential::make_trainer(const TrainOptions& options) const {
  auto trainer =
      std::make_unique<Trainer>(compiled_->model, *compiled_->backend, *compiled_->params, options);
  trainer->set_normalization(compiled_->normalization);
  return trainer;
}

History Sequential::fit(const Dataset& data, const FitOptions& options) {
  if (options.validation_split == 0) return run_fit(data, Dataset{}, options);
  const auto [train, val] = split_validation(data, options.validation_split);
  return run_fit(train, val, options);
}

History Sequential::fit(const Dataset& train, const Dataset& validation,
                        const FitOptions& options) {
  if (options.validation_split != 0)
    fail("{}: fit() takes validation data or a validation_split, not both", who(name_));
  return run_fit(train, validation, options);
}

History Sequential::run_fit(const Dataset& train, const Dataset& val, const FitOptions& o) {
  Compiled& c = require_compiled("fit");
  if (o.epochs < 1 || o.batch_size < 1)
    fail("{}: fit() needs positive epochs and batch_size, got {} and {}", who(name_), o.epochs,
         o.batch_size);
  // The recipe goes into the model so that save() records how the weights were made;
  // the model file's parsers check the augmentation and the schedule.
  TrainingRecipe& r = c.model.training;
  r.epochs = o.epochs;
  r.batch_size = o.batch_size;
  r.val_split = o.validation_split;
  r.normalize = o.normalize;
  r.augment = o.augment;
  if (o.schedule) r.schedule = *o.schedule;
  const nlohmann::json recipe = training_to_json(r);
  r.augment = parse_augment(recipe["augment"], who(name_) + " fit() augment");
  r.schedule = parse_schedule(recipe["schedule"], who(name_) + " fit() schedule");
  c.normalization = o.normalize ? normalization_of(train) : Normalization{};

  TrainOptions t;
  t.epochs = o.epochs;
  t.batch_size = o.batch_size;
  t.seed = o.seed;
  t.max_steps = o.max_steps;
  ProgressPrinter progress(o.verbosity != Verbosity::quiet);
  std::optional<EarlyStopping> early;
  std::vector<TrainHook*> hooks{&progress};
  if (o.early_stopping_patience > 0)
    hooks.push_back(&early.emplace(o.early_stopping_patience, o.early_stopping_min_delta));
  hooks.insert(hooks.end(), o.hooks.begin(), o.hooks.end());
  c.state = make_trainer(t)->fit(train, val, {}, hooks);
  c.seed = o.seed;
  if (early && early->stopped()) progress.line(early->reason());
  const bool early_stopped = c.state.finished_early && early && early->stopped();
  return {c.state.history, c.state.finished_early, early_stopped};
}

EvalResult Sequential::evaluate(const Dataset& data, bool confusion) {
  require_compiled("evaluate");
  if (data.count > 0 &&
      (data.channels != input_[0] || data.height != input_[1] || data.width != input_[2]))
    fail("{}: evaluate() needs {}x{}x{} images, '{}' has {}x{}x{}", who(name_), input_[0],
         input_[1], input_[2], data.name, data.channels, data.height, data.width);
  return make_trainer({})->evaluate(data, confusion);
}

std::vector<float> Sequential::predict(const Dataset& images) {
  require_compiled("predict");
  if (images.count > 0 &&
      (images.channels != input_[0] || images.height != input_[1] || images.width != input_[2]))
    fail("{}: predict() needs {}x{}x{} images, '{}' has {}x{}x{}", who(name_), input_[0], input_[1],
         input_[2], images.name, images.channels, images.height, images.width);
  return make_trainer({})->predict(images);
}

void Sequential::save(const std::string& path) const {
  const Compiled& c = require_compiled("save");
  const nlohmann::json config{{"seed", c.seed},
                              {"optimizer", optimizer_to_json(c.model.optimizer)},
                              {"training", training_to_json(c.model.training)}};
  save_checkpoint(path, *c.params, {c.model.to_json(), config, c.state, c.normalization, {}, {}});
}

void Sequential::load_weights(const std::string& path) {
  plinth::load_weights(path, *require_compiled("load_weights").params, true);
}

Sequential Sequential::load(const std::string& path, const CompileOptions& options) {
  const CheckpointMeta meta = read_checkpoint_meta(path);
  const Model saved = parse_model(meta.model, path + ":model");
  Sequential s(saved.input, saved.name);
  const nlohmann::json definition = saved.to_json();
  for (const nlohmann::json& layer : definition["layers"]) s.layers_.push_back(layer);
  s.compile(saved.optimizer, loss_name(saved.loss), options);
  Compiled& c = *s.compiled_;
  c.model.training = saved.training;
  plinth::load_weights(path, *c.params, true);
  if (std::filesystem::exists(optimizer_state_path(path))) load_optimizer_state(path, *c.params);
  c.normalization = meta.normalization;
  c.state = meta.state;
  c.seed = meta.config.value("seed", uint64_t{1});
  return s;
}

nlohmann::json Sequential::to_json() const {
  if (compiled_) return compiled_->model.to_json();
  return {{"name", name_}, {"input", input_}, {"layers", layers_}};
}

size_t Sequential::parameter_count() const {
  return require_compiled("parameter_count").params->count();
}

std::string Sequential::summary() const {
  const Compiled& c = require_compiled("summary");
  const Model& m = c.model;
  const std::string out =
      fmt::format("Model: {} on {}\n", m.name, c.backend->description()) + m.layer_table();
  return out + fmt::format("Total parameters: {}, loss {}, optimizer {} (lr {})\n",
                           c.params->count(), loss_name(m.loss), optimizer_name(m.optimizer.kind),
                           m.optimizer.lr);
}

const Model& Sequential::model() const { return require_compiled("model").model; }
Parameters& Sequential::parameters() { return *require_compiled("parameters").params; }
Backend& Sequential::backend() { return *require_compiled("backend").backend; }

}  // namespace plinth
