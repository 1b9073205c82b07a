#include "engine/model.h"

#include <algorithm>
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
  f.only({"shift", "rotate", "scale", "horizontal_flip", "contrast", "brightness", "cutout"});
  AugmentSpec a;
  a.max_shift = static_cast<float>(f.number("shift", 0));
  a.max_rotate = static_cast<float>(f.number("rotate", 0));
  a.max_scale = static_cast<float>(f.number("scale", 0));
  a.horizontal_flip = f.boolean("horizontal_flip", false);
  a.contrast = static_cast<float>(f.number("contrast", 0, 0, 1));
  a.brightness = static_cast<float>(f.number("brightness", 0, 0, 1e6));
  a.cutout = static_cast<float>(f.number("cutout", 0, 0, 65536));
  // Written as !(in range) so NaN (from --augment shift=nan) is refused too.
  if (!(a.max_shift >= 0 && a.max_shift <= 65536) || !(a.max_rotate >= 0 && a.max_rotate <= 360) ||
      !(a.max_scale >= 0 && a.max_scale < 1))
    fail("{}: shift must be in [0, 65536], rotate in [0, 360] and scale in [0, 1)", where);
  return a;
}

nlohmann::json augment_to_json(const AugmentSpec& a) {
  return {{"shift", a.max_shift},   {"rotate", a.max_rotate},
          {"scale", a.max_scale},   {"horizontal_flip", a.horizontal_flip},
          {"contrast", a.contrast}, {"brightness", a.brightness},
          {"cutout", a.cutout}};
}

void parse_semi_supervised(const nlohmann::json& j, const std::string& where,
                           SemiSupervisedRecipe& into) {
  const JsonFields f(j, where);
  f.only({"ratio", "threshold", "warmup_epochs", "strong_augment"});
  into.ratio = f.positive_int("ratio", into.ratio);
  into.threshold = static_cast<float>(f.number("threshold", into.threshold, 0, 1));
  into.warmup_epochs = f.non_negative_int("warmup_epochs", into.warmup_epochs);
  if (f.has("strong_augment"))
    into.strong = parse_augment(f.raw()["strong_augment"], where + ".strong_augment");
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

namespace {

// The input names of layer i: its "input" (one name or a list of them), by default the
// layer before it or, for the first, the model's input.
std::vector<std::string> input_names(const nlohmann::json& layer, size_t i, const Model& m,
                                     const std::string& at) {
  if (!layer.contains("input")) return {i == 0 ? "input" : m.nodes[i - 1].layer->name()};
  const nlohmann::json& in = layer["input"];
  if (in.is_string()) return {in.get<std::string>()};
  std::vector<std::string> names;
  if (in.is_array())
    for (const auto& name : in)
      if (name.is_string()) names.push_back(name.get<std::string>());
  if (!in.is_array() || in.empty() || names.size() != in.size())
    fail("{}.input: expected a layer name or a non-empty list of them", at);
  return names;
}

// Where layer `consumer` (at index i) finds the node named `name`. Inputs must come earlier
// in the file: so the file's order is a topological order and no cycle can be written.
int resolve_input(const std::string& name, size_t i, const Model& m, const std::string& at) {
  if (name == "input") return kModelInput;
  const int found = m.find(name);
  const std::string& consumer = m.nodes[i].layer->name();
  if (found < 0)
    fail("{}.input: layer '{}' names {}, but no layer has that name", at, consumer,
         quoted_input(name));
  if (found == static_cast<int>(i))
    fail("{}.input: layer '{}' names itself; a layer cannot consume its own output", at, consumer);
  if (found > static_cast<int>(i))
    fail(
        "{}.input: layer '{}' names {}, which comes later (layers[{}]); a layer must come after "
        "its inputs, which also rules out cycles",
        at, consumer, quoted_input(name), found);
  return found;
}

// Every layer of the file, and the nodes each consumes.
void read_graph(const nlohmann::json& layers, const std::string& where, Model& m) {
  std::set<std::string> names;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string at = fmt::format("{}.layers[{}]", where, i);
    Node node{layer_from_json(layers[i], at, fmt::format("layer{}", i + 1)), {}};
    const std::string& name = node.layer->name();
    if (name == "input") fail("{}.name: 'input' names the model's input; choose another", at);
    if (!names.insert(name).second) fail("{}.name: duplicate layer name '{}'", at, name);
    m.nodes.push_back(std::move(node));
  }
  std::vector<int> consumers(m.nodes.size(), 0);
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const std::string at = fmt::format("{}.layers[{}]", where, i);
    Node& node = m.nodes[i];
    for (const std::string& name : input_names(layers[i], i, m, at))
      node.inputs.push_back(resolve_input(name, i, m, at));
    const LayerType& type = *find_layer_type(node.layer->type());
    const int count = static_cast<int>(node.inputs.size());
    if (count < type.min_inputs || count > type.max_inputs)
      fail("{}.input: layer '{}' ({}) takes {}, got {}", at, node.layer->name(), type.name,
           type.max_inputs == type.min_inputs
               ? fmt::format("{} input{}", type.min_inputs, type.min_inputs == 1 ? "" : "s")
               : fmt::format("{} or more inputs", type.min_inputs),
           count);
    for (int in : node.inputs)
      if (in != kModelInput) ++consumers[in];
  }
  // A layer whose output reaches nothing would be computed for nothing and get no gradient:
  // most likely a wrong name in an "input".
  for (size_t i = 0; i + 1 < m.nodes.size(); ++i)
    if (consumers[i] == 0)
      fail(
          "{}.layers[{}]: no layer consumes the output of layer '{}', and only the last layer's "
          "output is the model's; name it in a later layer's \"input\", or remove it",
          where, i, m.nodes[i].layer->name());
}

}  // namespace

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
  read_graph(layers, where, m);
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
    t.only({"epochs", "batch_size", "val_split", "augment", "schedule", "normalize",
            "semi_supervised"});
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
    if (t.has("semi_supervised"))
      parse_semi_supervised(t.raw()["semi_supervised"], t.where() + ".semi_supervised",
                            m.training.semi_supervised);
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

std::string Model::input_name(int node) const {
  return node == kModelInput ? "input" : nodes[node].layer->name();
}

std::vector<NodeShapes> Model::shapes(int batch) const {
  std::vector<NodeShapes> out;
  out.reserve(nodes.size());
  for (const Node& n : nodes) {
    NodeShapes s;
    for (int in : n.inputs)
      s.inputs.push_back(in == kModelInput ? Shape{batch, input[0], input[1], input[2]}
                                           : out[in].output);
    try {
      s.output = n.layer->output_shape(s.inputs);
    } catch (const Error& e) {
      if (n.inputs.size() < 2) throw;
      std::string names;
      for (int in : n.inputs) names += (names.empty() ? "" : ", ") + input_name(in);
      fail("{} (inputs: {})", e.what(), names);
    }
    // Shapes hold ints: a larger sample would wrap (flatten) or overflow further on.
    for (const Shape& in : s.inputs)
      if (in.per_sample() > INT_MAX)
        fail("layer {}: more than 2^31 - 1 values per sample", n.layer->name());
    if (s.output.per_sample() > INT_MAX)
      fail("layer {}: more than 2^31 - 1 values per sample", n.layer->name());
    out.push_back(std::move(s));
  }
  return out;
}

size_t Model::parameter_count() const {
  const std::vector<NodeShapes> shapes = this->shapes(1);
  size_t total = 0;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const ParamSpec& p : nodes[i].layer->param_specs(shapes[i].inputs))
      total += p.shape.numel();
  return total;
}

std::string Model::layer_table(const std::vector<std::string>& frozen) const {
  const std::vector<NodeShapes> shapes = this->shapes(1);
  std::string out = fmt::format("{:<28}{:<18}{:>10}{:<11}{}\n", "Layer (type)", "Output shape",
                                "Params", "", "Inputs");
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Layer& layer = *nodes[i].layer;
    size_t count = 0;
    for (const ParamSpec& p : layer.param_specs(shapes[i].inputs)) count += p.shape.numel();
    Shape out_shape;  // per sample: without the batch dimension
    for (int d = 1; d < shapes[i].output.rank; ++d)
      out_shape.dims[out_shape.rank++] = shapes[i].output.dims[d];
    std::string inputs;
    for (int in : nodes[i].inputs) inputs += (inputs.empty() ? "" : ", ") + input_name(in);
    const bool is_frozen = std::find(frozen.begin(), frozen.end(), layer.name()) != frozen.end();
    out += fmt::format("{:<28}{:<18}{:>10}{:<11}{}\n", layer.name() + " (" + layer.type() + ")",
                       out_shape.str(), count, is_frozen ? " (frozen)" : "", inputs);
  }
  return out;
}

nlohmann::json Model::describe() const {
  const std::vector<NodeShapes> shapes = this->shapes(1);
  auto dims = [](const Shape& s, int from) {
    return std::vector<int>(s.dims.begin() + from, s.dims.begin() + s.rank);
  };
  auto null_if_empty = [](const std::string& s) {
    return s.empty() ? nlohmann::json() : nlohmann::json(s);
  };
  nlohmann::json described = nlohmann::json::array();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    const InputShapes in = shapes[i].inputs;
    nlohmann::json inputs = nlohmann::json::array(), input_shapes = nlohmann::json::array();
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      inputs.push_back(input_name(n.inputs[k]));
      input_shapes.push_back(dims(in[k], 1));
    }
    nlohmann::json params = nlohmann::json::array(), buffers = nlohmann::json::array();
    for (const ParamSpec& p : n.layer->param_specs(in))
      params.push_back({{"name", n.layer->name() + "." + p.suffix},
                        {"shape", dims(p.shape, 0)},
                        {"init_limit", p.init_limit},
                        {"init_value", p.init_value}});
    for (const BufferSpec& b : n.layer->buffer_specs(in))
      buffers.push_back({{"name", n.layer->name() + "." + b.suffix},
                         {"shape", dims(b.shape, 0)},
                         {"dtype", b.type == BufferSpec::Type::i64 ? "int64" : "float32"},
                         {"init", b.init}});
    const TorchModule torch = n.layer->torch_module(in);
    described.push_back({{"name", n.layer->name()},
                         {"type", n.layer->type()},
                         {"inputs", inputs},
                         {"input_shapes", input_shapes},
                         {"output_shape", dims(shapes[i].output, 1)},
                         {"parameters", params},
                         {"buffers", buffers},
                         {"softmax_output", n.layer->softmax_output()},
                         {"torch",
                          {{"merge", null_if_empty(torch.merge)},
                           {"module", null_if_empty(torch.module)},
                           {"args", torch.args},
                           {"kwargs", torch.kwargs},
                           {"activation", null_if_empty(torch.activation)}}}});
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
          {"augment", augment_to_json(t.augment)},
          {"semi_supervised",
           {{"ratio", t.semi_supervised.ratio},
            {"threshold", t.semi_supervised.threshold},
            {"warmup_epochs", t.semi_supervised.warmup_epochs},
            {"strong_augment", augment_to_json(t.semi_supervised.strong)}}},
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
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::vector<int>& inputs = nodes[i].inputs;
    nlohmann::json l = nodes[i].layer->to_json();
    const int previous = static_cast<int>(i) - 1;  // the default input (kModelInput for i = 0)
    if (inputs.size() == 1 && inputs[0] != previous) l["input"] = input_name(inputs[0]);
    if (inputs.size() > 1)
      for (int in : inputs) l["input"].push_back(input_name(in));
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
