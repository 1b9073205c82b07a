#include "engine/model.h"

#include <climits>
#include <set>

#include "engine/atomic_file.h"
#include "engine/json_fields.h"

namespace plinth {

namespace {

LossKind parse_loss(const std::string& s, const std::string& where) {
  if (s == "categorical_crossentropy" || s == "sparse_categorical_crossentropy")
    return LossKind::categorical_crossentropy;
  if (s == "mse" || s == "mean_squared_error") return LossKind::mse;
  if (s == "binary_crossentropy") return LossKind::binary_crossentropy;
  fail("{}.loss: unknown loss {} (expected categorical_crossentropy, mse, binary_crossentropy)",
       where, quoted_input(s));
}

OptimizerSpec parse_optimizer(const nlohmann::json& j, const std::string& where) {
  OptimizerSpec s;
  if (j.is_string()) {
    s.kind = parse_optimizer_kind(j.get<std::string>(), where + ".optimizer");
  } else {
    const JsonFields f(j, where + ".optimizer");
    f.only({"type", "lr", "momentum", "nesterov", "beta1", "beta2", "rho", "eps", "weight_decay"});
    s.kind = parse_optimizer_kind(f.str("type"), f.where());
    s.lr = static_cast<float>(f.number("lr", s.kind == OptimizerKind::sgd ? 0.01 : 1e-3));
    s.momentum = static_cast<float>(f.number("momentum", 0.0, 0, 1));
    s.nesterov = f.boolean("nesterov", false);
    s.beta1 = static_cast<float>(f.number("beta1", 0.9, 0, 1));
    s.beta2 = static_cast<float>(f.number(s.kind == OptimizerKind::rmsprop ? "rho" : "beta2",
                                          s.kind == OptimizerKind::rmsprop ? 0.9 : 0.999, 0, 1));
    s.eps = static_cast<float>(f.number("eps", 1e-7, 0, 1));
    s.weight_decay = static_cast<float>(
        f.number("weight_decay", s.kind == OptimizerKind::adamw ? 0.01 : 0.0, 0, 1e6));
    if (!(s.lr > 0 && s.lr <= 1e6)) fail("{}.lr: expected a positive number up to 1e6", f.where());
    if (s.nesterov && s.momentum <= 0) fail("{}.nesterov: needs momentum > 0", f.where());
  }
  if (j.is_string() && s.kind == OptimizerKind::sgd) s.lr = 0.01f;
  if (j.is_string() && s.kind == OptimizerKind::rmsprop) s.beta2 = 0.9f;
  if (j.is_string() && s.kind == OptimizerKind::adamw) s.weight_decay = 0.01f;
  return s;
}

}  // namespace

OptimizerKind parse_optimizer_kind(const std::string& name, const std::string& where) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adam") return OptimizerKind::adam;
  if (name == "adamw") return OptimizerKind::adamw;
  if (name == "rmsprop") return OptimizerKind::rmsprop;
  fail("{}: unknown optimizer {} (expected sgd, adam, adamw, rmsprop)", where, quoted_input(name));
}

AugmentSpec parse_augment(const nlohmann::json& j, const std::string& where) {
  const JsonFields f(j, where);
  f.only({"shift", "rotate", "scale", "horizontal_flip"});
  AugmentSpec a;
  a.max_shift = static_cast<float>(f.number("shift", 0));
  a.max_rotate = static_cast<float>(f.number("rotate", 0));
  a.max_scale = static_cast<float>(f.number("scale", 0));
  a.horizontal_flip = f.boolean("horizontal_flip", false);
  // Written as !(in range) so NaN (from --augment shift=nan) is refused too.
  if (!(a.max_shift >= 0 && a.max_shift <= 65536) || !(a.max_rotate >= 0 && a.max_rotate <= 360) ||
      !(a.max_scale >= 0 && a.max_scale < 1))
    fail("{}: shift must be in [0, 65536], rotate in [0, 360] and scale in [0, 1)", where);
  return a;
}

Schedule parse_schedule(const nlohmann::json& j, const std::string& where) {
  Schedule s;
  const JsonFields f(j, where);
  f.only({"type", "step_epochs", "gamma", "min_lr", "warmup", "start_factor"});
  const std::string type = f.str("type");
  if (type == "constant")
    s.kind = ScheduleKind::constant;
  else if (type == "step")
    s.kind = ScheduleKind::step;
  else if (type == "cosine")
    s.kind = ScheduleKind::cosine;
  else if (type == "one_cycle")
    s.kind = ScheduleKind::one_cycle;
  else
    fail("{}.type: unknown schedule {} (expected constant, step, cosine, one_cycle)", where,
         quoted_input(type));
  s.step_epochs = f.positive_int("step_epochs", s.step_epochs);
  s.gamma = static_cast<float>(f.number("gamma", s.gamma, 0, 1e38));
  s.min_lr = static_cast<float>(f.number("min_lr", s.min_lr, 0, 1e6));
  s.warmup = static_cast<float>(f.number("warmup", s.warmup));
  s.start_factor = static_cast<float>(f.number("start_factor", s.start_factor, 0, 1e6));
  if (s.warmup <= 0 || s.warmup >= 1) fail("{}.warmup: expected a fraction in (0, 1)", where);
  return s;
}

Model parse_model(const nlohmann::json& j, const std::string& where) {
  const JsonFields f(j, where);
  f.only({"name", "description", "input", "layers", "loss", "optimizer", "training"});
  Model m;
  m.source = where;
  m.name = f.str("name", "model");
  const auto& input = f.raw().contains("input") ? f.raw()["input"] : nlohmann::json();
  if (!input.is_array() || input.size() != 3)
    fail("{}.input: expected [channels, height, width]", where);
  for (int i = 0; i < 3; ++i)
    m.input[i] =
        static_cast<int>(json_integer(input[i], fmt::format("{}.input[{}]", where, i), 1, 65536));
  const auto& layers = f.raw().contains("layers") ? f.raw()["layers"] : nlohmann::json();
  if (!layers.is_array() || layers.empty()) fail("{}.layers: expected a non-empty array", where);
  std::set<std::string> names;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string at = fmt::format("{}.layers[{}]", where, i);
    Node node{layer_from_json(layers[i], at, fmt::format("layer{}", i + 1)),
              static_cast<int>(i) - 1};
    if (!names.insert(node.layer->name()).second)
      fail("{}.name: duplicate layer name {}", at, quoted_input(node.layer->name()));
    if (layers[i].contains("input")) {
      const JsonFields lf(layers[i], at);
      const std::string in = lf.str("input");
      node.input = in == "input" ? -1 : m.find(in);
      if (in != "input" && node.input < 0)
        fail("{}.input: no earlier layer named {}", at, quoted_input(in));
    }
    m.nodes.push_back(std::move(node));
  }
  for (size_t i = 0; i + 1 < m.nodes.size(); ++i)
    if (m.nodes[i].layer->softmax_output())
      fail("{}.layers[{}]: softmax is only supported on the last layer", where, i);
  m.loss = parse_loss(f.str("loss", "categorical_crossentropy"), where);
  if (m.loss == LossKind::categorical_crossentropy && !m.nodes.back().layer->softmax_output())
    fail("{}.loss: categorical_crossentropy needs a dense last layer with activation 'softmax'",
         where);
  if (m.loss != LossKind::categorical_crossentropy && m.nodes.back().layer->softmax_output())
    fail("{}.loss: a softmax output only goes with categorical_crossentropy", where);
  if (f.has("optimizer")) m.optimizer = parse_optimizer(f.raw()["optimizer"], where);
  if (f.has("training")) {
    const JsonFields t = f.object("training");
    t.only({"epochs", "batch_size", "val_split", "augment", "schedule", "normalize"});
    m.training.epochs = t.positive_int("epochs", m.training.epochs);
    m.training.batch_size = t.positive_int("batch_size", m.training.batch_size);
    m.training.val_split = t.number("val_split", m.training.val_split);
    if (m.training.val_split < 0 || m.training.val_split >= 1)
      fail("{}.val_split: expected a fraction in [0, 1)", t.where());
    if (t.has("augment"))
      m.training.augment = parse_augment(t.raw()["augment"], t.where() + ".augment");
    if (t.has("schedule"))
      m.training.schedule = parse_schedule(t.raw()["schedule"], t.where() + ".schedule");
    m.training.normalize = t.boolean("normalize", false);
  }
  // Validate the shapes once, with batch 1, so a bad file fails before any allocation.
  std::vector<NodeShapes> shapes;
  try {
    shapes = m.shapes(1);
  } catch (const Error& e) {
    fail("{}: {}", where, e.what());  // name the file, not just the layer
  }
  const size_t out = shapes.back().output.per_sample();
  const size_t in_size = static_cast<size_t>(m.input[0]) * m.input[1] * m.input[2];
  if (m.loss != LossKind::categorical_crossentropy && out != in_size)
    fail(
        "{}.loss: {} compares the output with the input image, but the output has {} values "
        "per sample and the input {}",
        where, loss_name(m.loss), out, in_size);
  return m;
}

Model load_model(const std::string& path) {
  return parse_model(parse_json(read_file(path, kMaxModelFileBytes), path), path);
}

int Model::find(const std::string& layer_name) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].layer->name() == layer_name) return static_cast<int>(i);
  return -1;
}

std::vector<NodeShapes> Model::shapes(int batch) const {
  std::vector<NodeShapes> out;
  out.reserve(nodes.size());
  for (const Node& n : nodes) {
    const Shape in = n.input < 0 ? Shape{batch, input[0], input[1], input[2]} : out[n.input].output;
    const Shape y = n.layer->output_shape(in);
    // Shapes hold ints: a larger sample would wrap (flatten) or overflow further on.
    if (in.per_sample() > INT_MAX || y.per_sample() > INT_MAX)
      fail("layer {}: more than 2^31 - 1 values per sample", n.layer->name());
    out.push_back({in, y});
  }
  return out;
}

size_t Model::parameter_count() const {
  const std::vector<NodeShapes> shapes = this->shapes(1);
  size_t total = 0;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const ParamSpec& p : nodes[i].layer->param_specs(shapes[i].input))
      total += p.shape.numel();
  return total;
}

nlohmann::json Model::describe() const {
  const std::vector<NodeShapes> shapes = this->shapes(1);
  auto per_sample = [](const Shape& s) {
    return std::vector<int>(s.dims.begin() + 1, s.dims.begin() + s.rank);
  };
  nlohmann::json described = nlohmann::json::array();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    const Shape& in = shapes[i].input;
    nlohmann::json params = nlohmann::json::array();
    for (const ParamSpec& p : n.layer->param_specs(in))
      params.push_back(
          {{"name", n.layer->name() + "." + p.suffix},
           {"shape", std::vector<int>(p.shape.dims.begin(), p.shape.dims.begin() + p.shape.rank)},
           {"init_limit", p.init_limit}});
    const TorchModule torch = n.layer->torch_module(in);
    described.push_back(
        {{"name", n.layer->name()},
         {"type", n.layer->type()},
         {"inputs", {n.input < 0 ? "input" : nodes[n.input].layer->name()}},
         {"input_shapes", {per_sample(in)}},
         {"output_shape", per_sample(shapes[i].output)},
         {"parameters", params},
         {"softmax_output", n.layer->softmax_output()},
         {"torch",
          {{"module", torch.module.empty() ? nlohmann::json() : nlohmann::json(torch.module)},
           {"args", torch.args},
           {"kwargs", torch.kwargs},
           {"activation",
            torch.activation.empty() ? nlohmann::json() : nlohmann::json(torch.activation)}}}});
  }
  return {{"name", name},
          {"input", {input[0], input[1], input[2]}},
          {"nodes", described},
          {"output", nodes.back().layer->name()}};
}

const char* loss_name(LossKind kind) {
  switch (kind) {
    case LossKind::mse:
      return "mse";
    case LossKind::binary_crossentropy:
      return "binary_crossentropy";
    default:
      return "categorical_crossentropy";
  }
}

const char* optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::sgd:
      return "sgd";
    case OptimizerKind::adamw:
      return "adamw";
    case OptimizerKind::rmsprop:
      return "rmsprop";
    default:
      return "adam";
  }
}

nlohmann::json optimizer_to_json(const OptimizerSpec& s) {
  nlohmann::json j{{"type", optimizer_name(s.kind)},
                   {"lr", s.lr},
                   {"weight_decay", s.weight_decay},
                   {"eps", s.eps}};
  if (s.kind == OptimizerKind::sgd) {
    j["momentum"] = s.momentum;
    j["nesterov"] = s.nesterov;
  } else if (s.kind == OptimizerKind::rmsprop) {
    j["rho"] = s.beta2;
  } else {
    j["beta1"] = s.beta1;
    j["beta2"] = s.beta2;
  }
  return j;
}

nlohmann::json training_to_json(const TrainingRecipe& t) {
  static const char* schedules[] = {"constant", "step", "cosine", "one_cycle"};
  return {{"epochs", t.epochs},
          {"batch_size", t.batch_size},
          {"val_split", t.val_split},
          {"normalize", t.normalize},
          {"augment",
           {{"shift", t.augment.max_shift},
            {"rotate", t.augment.max_rotate},
            {"scale", t.augment.max_scale},
            {"horizontal_flip", t.augment.horizontal_flip}}},
          {"schedule",
           {{"type", schedules[static_cast<int>(t.schedule.kind)]},
            {"step_epochs", t.schedule.step_epochs},
            {"gamma", t.schedule.gamma},
            {"min_lr", t.schedule.min_lr},
            {"warmup", t.schedule.warmup},
            {"start_factor", t.schedule.start_factor}}}};
}

nlohmann::json Model::to_json() const {
  nlohmann::json layers = nlohmann::json::array();
  for (const Node& n : nodes) {
    nlohmann::json l = n.layer->to_json();
    if (n.input >= 0 && &n != &nodes[n.input + 1]) l["input"] = nodes[n.input].layer->name();
    if (n.input < 0 && &n != &nodes[0]) l["input"] = "input";
    layers.push_back(l);
  }
  return {{"name", name},
          {"input", {input[0], input[1], input[2]}},
          {"layers", layers},
          {"loss", loss_name(loss)},
          {"optimizer", optimizer_to_json(optimizer)},
          {"training", training_to_json(training)}};
}

}  // namespace plinth
