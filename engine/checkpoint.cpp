#include "engine/checkpoint.h"
#include "engine/error.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>

#include "engine/atomic_file.h"
#include "engine/json_fields.h"
#include "engine/safetensors.h"
#include "engine/user_text.h"

namespace plinth {

namespace {

// Limits on what metadata may list: far above any real model, far below what would
// exhaust memory.
constexpr size_t kMaxChannels = 4096;
constexpr size_t kMaxClasses = size_t{1} << 20;

std::vector<int64_t> dims(const Shape& s) {
  return std::vector<int64_t>(s.dims.begin(), s.dims.begin() + s.rank);
}

std::vector<NamedTensorData> arena_tensors(const Parameters& params, const float* arena,
                                           const std::string& prefix) {
  const std::vector<float> host = params.download(arena);
  std::vector<NamedTensorData> out;
  for (const ParamEntry& e : params.entries())
    out.push_back(
        NamedTensorData::f32(prefix + e.name, dims(e.shape),
                             std::span<const float>(host.data() + e.offset, e.shape.numel())));
  return out;
}

// The layers' buffers (running statistics), under their PyTorch names and dtypes.
std::vector<NamedTensorData> buffer_tensors(const Parameters& params) {
  const std::vector<std::byte> host = params.download_buffers();
  std::vector<NamedTensorData> out;
  for (const BufferEntry& e : params.buffer_entries()) {
    const std::byte* at = host.data() + e.offset;
    if (e.type == BufferSpec::Type::i64)
      out.push_back(NamedTensorData::i64(
          e.name, dims(e.shape),
          std::span<const int64_t>(reinterpret_cast<const int64_t*>(at), e.shape.numel())));
    else
      out.push_back(NamedTensorData::f32(
          e.name, dims(e.shape),
          std::span<const float>(reinterpret_cast<const float*>(at), e.shape.numel())));
  }
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "[" + s + "]";
}

nlohmann::json history_json(const std::vector<EpochRecord>& history) {
  nlohmann::json h = nlohmann::json::array();
  for (const EpochRecord& r : history) {
    nlohmann::json e = {{"epoch", r.epoch},
                        {"loss", r.loss},
                        {"accuracy", r.accuracy},
                        {"val_loss", r.val_loss},
                        {"val_accuracy", r.val_accuracy},
                        {"lr", r.lr},
                        {"seconds", r.seconds},
                        {"samples_per_second", r.samples_per_second},
                        {"steps", r.steps},
                        {"test_accuracy", r.test_accuracy}};
    if (r.above_threshold >= 0) {
      e["unlabelled_loss"] = r.unlabelled_loss;
      e["above_threshold"] = r.above_threshold;
      e["pseudo_labels"] = r.pseudo_labels;
    }
    h.push_back(e);
  }
  return h;
}

// The metadata's fields, each checked as it is read against what a run can produce; an
// error names the file and the field: "<path>: malformed plinth metadata: 'step' expects
// an integer from 0 to 1125899906842624, got 9223372036854775807".
class MetadataFields {
 public:
  MetadataFields(const std::map<std::string, std::string>& metadata, const std::string& path)
      : md_(metadata), path_(path) {}

  std::string what(const std::string& field) const {
    return fmt::format("{}: malformed plinth metadata: '{}'", path_, field);
  }
  const std::string& text(const char* key) const {
    const auto it = md_.find(key);
    if (it == md_.end()) fail("{}: not a plinth checkpoint (metadata has no '{}')", path_, key);
    return it->second;
  }
  nlohmann::json json(const char* key) const { return parse_json(text(key), what(key)); }
  int64_t integer(const char* key, int64_t lo, int64_t hi) const {
    return parse_integer(text(key), what(key), lo, hi);
  }
  double real(const char* key, double lo, double hi) const {
    return parse_real(text(key), what(key), lo, hi);
  }

 private:
  const std::map<std::string, std::string>& md_;
  const std::string& path_;
};

// A JSON array of at most kMaxNumbers finite numbers in [lo, hi].
std::vector<double> numbers(const nlohmann::json& j, const std::string& where, double lo,
                            double hi) {
  constexpr size_t kMaxNumbers = 1 << 20;
  if (!j.is_array() || j.size() > kMaxNumbers)
    fail("{}: expected an array of at most {} numbers", where, kMaxNumbers);
  std::vector<double> out;
  for (size_t i = 0; i < j.size(); ++i)
    out.push_back(json_number(j[i], fmt::format("{}[{}]", where, i), lo, hi));
  return out;
}

std::vector<EpochRecord> history_from_json(const nlohmann::json& h, const std::string& where) {
  if (!h.is_array()) fail("{}: expected an array of epochs", where);
  std::vector<EpochRecord> out;
  for (size_t i = 0; i < h.size(); ++i) {
    const nlohmann::json& j = h[i];
    const std::string at = fmt::format("{}[{}]", where, i);
    if (!j.is_object()) fail("{}: expected an object", at);
    auto field = [&](const char* key) -> const nlohmann::json& {
      if (!j.contains(key)) fail("{}: missing '{}'", at, key);
      return j[key];
    };
    auto number = [&](const char* key, double lo, double hi) {
      return json_number(field(key), at + "." + key, lo, hi);
    };
    constexpr double kBig = 1e300;  // losses may be huge, but are finite when recorded
    EpochRecord r;
    r.epoch = static_cast<int>(json_integer(field("epoch"), at + ".epoch", 1, kMaxEpochs));
    r.loss = number("loss", -kBig, kBig);
    r.accuracy = number("accuracy", 0, 1);
    r.val_loss = number("val_loss", -kBig, kBig);
    r.val_accuracy = number("val_accuracy", 0, 1);
    r.lr = number("lr", 0, kBig);
    r.seconds = number("seconds", 0, kBig);
    r.samples_per_second = number("samples_per_second", 0, kBig);
    r.steps = json_integer(field("steps"), at + ".steps", 0, kMaxSteps);
    r.test_accuracy = j.contains("test_accuracy") ? number("test_accuracy", -1, 1) : -1.0;
    if (j.contains("above_threshold")) {  // a semi-supervised epoch
      r.unlabelled_loss = number("unlabelled_loss", -kBig, kBig);
      r.above_threshold = number("above_threshold", 0, 1);
      r.pseudo_labels = numbers(field("pseudo_labels"), at + ".pseudo_labels", 0, kBig);
    }
    out.push_back(r);
  }
  return out;
}

// FNV-1a over every tensor's name, shape and bytes in name order, eight bytes a step: what
// ties an optimizer state file to the weights it was saved with.
class WeightsDigest {
 public:
  void add(std::string_view name, const std::vector<int64_t>& shape,
           std::span<const std::byte> bytes) {
    mix(name.data(), name.size());
    mix(shape.data(), shape.size() * sizeof(int64_t));
    mix(bytes.data(), bytes.size());
  }
  std::string hex() const { return fmt::format("{:016x}", h_); }

 private:
  void mix(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (uint64_t word = 0; i + 8 <= n; i += 8) {
      std::memcpy(&word, p + i, 8);
      h_ = (h_ ^ word) * 1099511628211ull;
    }
    for (; i < n; ++i) h_ = (h_ ^ p[i]) * 1099511628211ull;
    h_ = (h_ ^ n) * 1099511628211ull;  // the length, so that boundaries count
  }
  uint64_t h_ = 1469598103934665603ull;
};

std::string digest_of(std::vector<const NamedTensorData*> tensors) {
  std::sort(tensors.begin(), tensors.end(), [](auto* a, auto* b) { return a->name < b->name; });
  WeightsDigest d;
  for (const NamedTensorData* t : tensors) d.add(t->name, t->shape, t->bytes);
  return d.hex();
}

std::string digest_of(const SafetensorsFile& f) {
  std::vector<std::string> names = f.names();
  std::sort(names.begin(), names.end());
  WeightsDigest d;
  for (const std::string& name : names) {
    const SafetensorsTensor t = f.tensor(name);
    d.add(name, t.shape, t.bytes);
  }
  return d.hex();
}

}  // namespace

std::string new_run_id() {
  std::random_device entropy;
  return fmt::format("{:08x}{:08x}", entropy(), entropy());
}

std::string optimizer_state_path(const std::string& path) {
  const std::string ext = ".safetensors";
  const bool has_ext =
      path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  return (has_ext ? path.substr(0, path.size() - ext.size()) : path) + ".optim.safetensors";
}

void save_checkpoint(const std::string& path, const Parameters& params,
                     const CheckpointMeta& meta) {
  std::vector<NamedTensorData> state = arena_tensors(params, params.moment1(), "m.");
  for (auto& t : arena_tensors(params, params.moment2(), "v.")) state.push_back(std::move(t));
  const int64_t step = params.download_step();
  state.push_back(NamedTensorData::i64("step", {1}, std::span<const int64_t>(&step, 1)));
  std::vector<NamedTensorData> weights = arena_tensors(params, params.values(), "");
  for (auto& t : buffer_tensors(params)) weights.push_back(std::move(t));
  std::vector<const NamedTensorData*> weight_list;
  for (const NamedTensorData& t : weights) weight_list.push_back(&t);
  // The pair's tie: the run, and these very weights (another run's optimizer state at the
  // same step, or state saved with other weights, must never resume silently).
  const std::string run_id = meta.run_id.empty() ? new_run_id() : meta.run_id;
  const std::string tag = run_id + ":" + digest_of(weight_list);
  // Three atomic steps, so a crash or a failed write at any point leaves a resumable pair:
  // the new optimizer state goes to a pending file, then the weights replace the old ones,
  // then the pending file replaces the old state. Between the last two, the loader finds
  // the pending file by its tag.
  const std::string optim = optimizer_state_path(path);
  check_save_target(optim);  // the final rename must not replace a symlink or a device
  save_safetensors(optim + ".pending", state, {{"format", "plinth-optimizer"}, {"tag", tag}});

  const nlohmann::json partial(
      std::vector<double>(meta.state.partial_stats, meta.state.partial_stats + kStatsSize));
  std::map<std::string, std::string> md{
      {"format", "pt"},
      {"producer", "plinth " PLINTH_VERSION},
      {"model", meta.model.dump()},
      {"config", meta.config.dump()},
      {"epoch", std::to_string(meta.state.epoch)},
      {"step", std::to_string(meta.state.step)},
      {"batch_in_epoch", std::to_string(meta.state.batch_in_epoch)},
      {"partial_stats", partial.dump()},
      {"partial_unlabelled", nlohmann::json(meta.state.partial_unlabelled).dump()},
      {"partial_seconds", fmt::format("{}", meta.state.partial_seconds)},
      {"history", history_json(meta.state.history).dump()},
      {"normalization",
       nlohmann::json{{"mean", meta.normalization.mean}, {"std", meta.normalization.std}}.dump()},
      {"class_names", nlohmann::json(meta.class_names).dump()},
      {"run_id", run_id},
      {"tag", tag}};
  save_safetensors(path, weights, md);
  if (std::rename((optim + ".pending").c_str(), optim.c_str()) != 0)
    fail("{}: cannot rename the optimizer state into place: {}", optim, std::strerror(errno));
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  const MetadataFields field(f.metadata(), path);
  CheckpointMeta meta;
  meta.model = field.json("model");
  meta.config = field.json("config");
  if (!meta.config.is_object() && !meta.config.is_null())
    fail("{}: expected a JSON object", field.what("config"));
  meta.state.epoch = static_cast<int>(field.integer("epoch", 0, kMaxEpochs));
  meta.state.step = field.integer("step", 0, kMaxSteps);
  meta.state.batch_in_epoch = field.integer("batch_in_epoch", 0, kMaxSteps);
  const nlohmann::json partial = field.json("partial_stats");
  if (!partial.is_array() || partial.size() != kStatsSize)
    fail("{}: expected {} numbers", field.what("partial_stats"), kStatsSize);
  for (int i = 0; i < kStatsSize; ++i)
    meta.state.partial_stats[i] =
        json_number(partial[i], fmt::format("{}[{}]", field.what("partial_stats"), i), 0, 1e300);
  meta.state.partial_seconds = field.real("partial_seconds", 0, 1e300);
  if (f.metadata().contains("partial_unlabelled"))  // checkpoints since semi-supervised training
    meta.state.partial_unlabelled =
        numbers(field.json("partial_unlabelled"), field.what("partial_unlabelled"), 0, 1e300);
  meta.state.history = history_from_json(field.json("history"), field.what("history"));
  // Checkpoints before per-channel normalisation hold one number each. Inputs are divided
  // by std: zero or less would make every input infinite or flipped.
  const nlohmann::json norm = field.json("normalization");
  if (!norm.is_object() || !norm.contains("mean") || !norm.contains("std"))
    fail("{}: expected {{\"mean\": M, \"std\": S}}", field.what("normalization"));
  for (auto [key, values, lo] : {std::tuple{"mean", &meta.normalization.mean, -1e6},
                                 std::tuple{"std", &meta.normalization.std, 1e-12}}) {
    const std::string where = field.what(std::string("normalization.") + key);
    const nlohmann::json& v = norm[key];
    if (v.is_array() && (v.empty() || v.size() > kMaxChannels))
      fail("{}: expected 1 to {} numbers", where, kMaxChannels);
    values->clear();
    for (const nlohmann::json& x : v.is_array() ? v : nlohmann::json::array({v}))
      values->push_back(static_cast<float>(json_number(x, where, lo, 1e6)));
  }
  if (f.metadata().count("class_names")) {
    const nlohmann::json names = field.json("class_names");
    if (!names.is_array() || names.size() > kMaxClasses)
      fail("{}: expected at most {} names", field.what("class_names"), kMaxClasses);
    for (const nlohmann::json& n : names) {
      if (!n.is_string()) fail("{}: expected strings", field.what("class_names"));
      meta.class_names.push_back(n.get<std::string>());
    }
  }
  if (f.metadata().count("run_id")) meta.run_id = field.text("run_id");
  return meta;
}

LoadReport load_weights(const std::string& path, Parameters& params, bool strict,
                        const std::vector<std::string>& reset) {
  for (const std::string& layer : reset) {
    auto of_layer = [&](const auto& e) { return e.name.starts_with(layer + "."); };
    const bool known =
        std::any_of(params.entries().begin(), params.entries().end(), of_layer) ||
        std::any_of(params.buffer_entries().begin(), params.buffer_entries().end(), of_layer);
    if (!known)
      fail("reset: the model has no layer named {} with parameters or buffers",
           quoted_input(layer));
  }
  const SafetensorsFile f = load_safetensors(path);
  LoadReport report;
  std::vector<float> host = params.download(params.values());
  auto is_reset = [&](const std::string& name) {
    const std::string layer = name.substr(0, name.find('.'));
    return std::find(reset.begin(), reset.end(), layer) != reset.end();
  };
  for (const ParamEntry& e : params.entries()) {
    if (is_reset(e.name)) continue;
    if (!f.contains(e.name)) {
      report.missing.push_back(e.name);
      continue;
    }
    const SafetensorsTensor t = f.tensor(e.name);
    if (t.shape != dims(e.shape)) {
      Shape s;
      for (int64_t d : t.shape) s.dims[s.rank < 4 ? s.rank++ : 3] = static_cast<int>(d);
      report.mismatched.push_back(
          fmt::format("{}: checkpoint {} vs model {}", e.name, s.str(), e.shape.str()));
      continue;
    }
    const std::vector<float> values = f.float_tensor(e.name);
    std::copy(values.begin(), values.end(), host.begin() + static_cast<ptrdiff_t>(e.offset));
    report.loaded.push_back(e.name);
  }
  std::vector<std::byte> buffers = params.download_buffers();
  for (const BufferEntry& e : params.buffer_entries()) {
    if (is_reset(e.name)) continue;
    if (!f.contains(e.name)) {
      report.missing.push_back(e.name);
      continue;
    }
    const SafetensorsTensor t = f.tensor(e.name);
    const bool i64 = e.type == BufferSpec::Type::i64;
    if (t.shape != dims(e.shape) ||
        t.dtype != (i64 ? SafetensorsDtype::I64 : SafetensorsDtype::F32)) {
      report.mismatched.push_back(fmt::format("{}: checkpoint {} {} vs model {} {}", e.name,
                                              dtype_name(t.dtype), shape_text(t.shape),
                                              i64 ? "I64" : "F32", shape_text(dims(e.shape))));
      continue;
    }
    std::copy(t.bytes.begin(), t.bytes.end(), buffers.begin() + static_cast<ptrdiff_t>(e.offset));
    report.loaded.push_back(e.name);
  }
  for (const std::string& name : f.names())
    if (!params.find(name) && !params.find_buffer(name) && !is_reset(name))
      report.unexpected.push_back(name);
  if (strict && !report.complete())
    fail(
        "{}: weights do not match the model:{} load non-strictly to keep what matches, or "
        "reset those layers to initialise them afresh",
        path, report.mismatches());
  params.upload(params.values(), host);
  params.upload_buffers(buffers);
  return report;
}

std::string LoadReport::mismatches() const {
  std::string why;
  for (const auto& m : mismatched) why += " shape mismatch " + m + ";";
  for (const auto& m : missing) why += " missing " + m + ";";
  for (const auto& m : unexpected) why += " unexpected " + m + ";";
  return why;
}

void load_optimizer_state(const std::string& path, Parameters& params) {
  const SafetensorsFile weights = load_safetensors(path);
  const auto wt = weights.metadata().find("tag");
  // The tag is "<run id>:<digest of the weights>": the weights file must hold the weights
  // its tag names, and the state file must carry the same tag.
  const std::string digest = fmt::format(":{}", digest_of(weights));
  if (wt == weights.metadata().end() || !wt->second.ends_with(digest))
    fail(
        "{}: its weights are not those its optimizer state was saved with (was it written by "
        "another program?); start a new run initialised from these weights",
        path);
  auto matches = [&](const SafetensorsFile& f) {
    const auto t = f.metadata().find("tag");
    return t != f.metadata().end() && t->second == wt->second;
  };
  std::string state_path = optimizer_state_path(path);
  const std::string pending = state_path + ".pending";
  std::optional<SafetensorsFile> state;
  if (std::filesystem::exists(state_path)) {
    state = load_safetensors(state_path);
    if (!matches(*state)) state.reset();
  }
  // A save interrupted after the weights were written left the state pending: beside the
  // previous state, or beside none at a run's first save.
  if (!state && std::filesystem::exists(pending)) {
    SafetensorsFile f = load_safetensors(pending);
    if (matches(f)) {
      state_path = pending;
      state = std::move(f);
    }
  }
  if (!state && !std::filesystem::exists(state_path))
    fail("{}: cannot open: No such file or directory (the optimizer state saved with {})",
         state_path, path);
  if (!state)
    fail(
        "{}: optimizer state does not belong to {}; resume from a matching pair, or start "
        "a new run initialised from these weights",
        state_path, path);
  std::vector<float> m = params.download(params.moment1()), v = params.download(params.moment2());
  for (const ParamEntry& e : params.entries()) {
    const std::vector<float> mv = state->float_tensor("m." + e.name),
                             vv = state->float_tensor("v." + e.name);
    if (mv.size() != e.shape.numel() || vv.size() != e.shape.numel())
      fail("{}: optimizer state for {} has the wrong size", state_path, e.name);
    std::copy(mv.begin(), mv.end(), m.begin() + static_cast<ptrdiff_t>(e.offset));
    std::copy(vv.begin(), vv.end(), v.begin() + static_cast<ptrdiff_t>(e.offset));
  }
  params.upload(params.moment1(), m);
  params.upload(params.moment2(), v);
  const std::vector<int64_t> step = state->int64_tensor("step");
  if (step.size() != 1 || step[0] < 0) fail("{}: malformed optimizer step", state_path);
  params.upload_step(step[0]);
}

}  // namespace plinth
