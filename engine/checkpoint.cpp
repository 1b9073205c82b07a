#include "engine/checkpoint.h"
#include "engine/error.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "engine/safetensors.h"

namespace plinth {

namespace {

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
  for (const EpochRecord& r : history)
    h.push_back({{"epoch", r.epoch},
                 {"loss", r.loss},
                 {"accuracy", r.accuracy},
                 {"val_loss", r.val_loss},
                 {"val_accuracy", r.val_accuracy},
                 {"lr", r.lr},
                 {"seconds", r.seconds},
                 {"samples_per_second", r.samples_per_second},
                 {"steps", r.steps},
                 {"test_accuracy", r.test_accuracy}});
  return h;
}

// An integer field that must fit its type: 1e300 or -3 is malformed, not undefined behaviour.
int64_t whole(const nlohmann::json& j, const char* key, int64_t max) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > max)
    throw std::out_of_range(fmt::format("'{}' must be an integer in [0, {}]", key, max));
  return v.get<int64_t>();
}

std::vector<EpochRecord> history_from_json(const nlohmann::json& h) {
  std::vector<EpochRecord> out;
  for (const auto& j : h) {
    EpochRecord r;
    r.epoch = static_cast<int>(whole(j, "epoch", 1 << 30));
    r.loss = j.at("loss");
    r.accuracy = j.at("accuracy");
    r.val_loss = j.at("val_loss");
    r.val_accuracy = j.at("val_accuracy");
    r.lr = j.at("lr");
    r.seconds = j.at("seconds");
    r.samples_per_second = j.at("samples_per_second");
    r.steps = whole(j, "steps", int64_t{1} << 50);
    r.test_accuracy = j.value("test_accuracy", -1.0);
    out.push_back(r);
  }
  return out;
}

std::string run_tag(const CheckpointMeta& meta) {
  return fmt::format("{}:{}:{}", meta.state.step, meta.state.epoch, meta.state.batch_in_epoch);
}

}  // namespace

std::string optimizer_state_path(const std::string& path) {
  const std::string ext = ".safetensors";
  const bool has_ext =
      path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  return (has_ext ? path.substr(0, path.size() - ext.size()) : path) + ".optim.safetensors";
}

void save_checkpoint(const std::string& path, const Parameters& params,
                     const CheckpointMeta& meta) {
  const std::string tag = run_tag(meta);
  std::vector<NamedTensorData> state = arena_tensors(params, params.moment1(), "m.");
  for (auto& t : arena_tensors(params, params.moment2(), "v.")) state.push_back(std::move(t));
  const int64_t step = params.download_step();
  state.push_back(NamedTensorData::i64("step", {1}, std::span<const int64_t>(&step, 1)));
  // Three atomic steps, so a crash or a failed write at any point leaves a resumable pair:
  // the new optimizer state goes to a pending file, then the weights replace the old ones,
  // then the pending file replaces the old state. Between the last two, the loader finds
  // the pending file by its tag.
  const std::string optim = optimizer_state_path(path);
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
      {"partial_seconds", fmt::format("{}", meta.state.partial_seconds)},
      {"history", history_json(meta.state.history).dump()},
      {"normalization",
       nlohmann::json{{"mean", meta.normalization.mean}, {"std", meta.normalization.std}}.dump()},
      {"class_names", nlohmann::json(meta.class_names).dump()},
      {"tag", tag}};
  std::vector<NamedTensorData> weights = arena_tensors(params, params.values(), "");
  for (auto& t : buffer_tensors(params)) weights.push_back(std::move(t));
  save_safetensors(path, weights, md);
  if (std::rename((optim + ".pending").c_str(), optim.c_str()) != 0)
    fail("{}: cannot rename the optimizer state into place: {}", optim, std::strerror(errno));
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  const auto& md = f.metadata();
  auto field = [&](const char* key) -> const std::string& {
    const auto it = md.find(key);
    if (it == md.end()) fail("{}: not a plinth checkpoint (metadata has no '{}')", path, key);
    return it->second;
  };
  CheckpointMeta meta;
  try {
    meta.model = nlohmann::json::parse(field("model"));
    meta.config = nlohmann::json::parse(field("config"));
    meta.state.epoch = std::stoi(field("epoch"));
    meta.state.step = std::stoll(field("step"));
    meta.state.batch_in_epoch = std::stoll(field("batch_in_epoch"));
    for (const auto& [key, value] : {std::pair<const char*, int64_t>{"epoch", meta.state.epoch},
                                     {"step", meta.state.step},
                                     {"batch_in_epoch", meta.state.batch_in_epoch}})
      if (value < 0) fail("{}: malformed plinth metadata ('{}' is negative)", path, key);
    const auto partial = nlohmann::json::parse(field("partial_stats"));
    for (int i = 0; i < kStatsSize; ++i) meta.state.partial_stats[i] = partial.at(i);
    meta.state.partial_seconds = std::stod(field("partial_seconds"));
    meta.state.history = history_from_json(nlohmann::json::parse(field("history")));
    // Checkpoints before per-channel normalisation hold one number each.
    const auto norm = nlohmann::json::parse(field("normalization"));
    for (auto [key, values] :
         {std::pair{"mean", &meta.normalization.mean}, std::pair{"std", &meta.normalization.std}}) {
      const nlohmann::json& v = norm.at(key);
      *values = v.is_array() ? v.get<std::vector<float>>() : std::vector<float>{v.get<float>()};
      if (values->empty()) fail("{}: malformed plinth metadata (no normalization {})", path, key);
    }
    if (md.count("class_names"))
      meta.class_names =
          nlohmann::json::parse(md.at("class_names")).get<std::vector<std::string>>();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("{}: malformed plinth metadata ({})", path, e.what());
  }
  return meta;
}

LoadReport load_weights(const std::string& path, Parameters& params, bool strict,
                        const std::vector<std::string>& reset) {
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
  auto matches = [&](const SafetensorsFile& f) {
    const auto t = f.metadata().find("tag");
    return wt != weights.metadata().end() && t != f.metadata().end() && t->second == wt->second;
  };
  std::string state_path = optimizer_state_path(path);
  SafetensorsFile state = load_safetensors(state_path);
  if (!matches(state)) {
    // A save interrupted after the weights were written left the state pending.
    const std::string pending = state_path + ".pending";
    if (std::filesystem::exists(pending) && matches(load_safetensors(pending))) {
      state_path = pending;
      state = load_safetensors(pending);
    } else {
      fail(
          "{}: optimizer state does not belong to {}; resume from a matching pair, or start "
          "a new run initialised from these weights",
          state_path, path);
    }
  }
  std::vector<float> m = params.download(params.moment1()), v = params.download(params.moment2());
  for (const ParamEntry& e : params.entries()) {
    const std::vector<float> mv = state.float_tensor("m." + e.name),
                             vv = state.float_tensor("v." + e.name);
    if (mv.size() != e.shape.numel() || vv.size() != e.shape.numel())
      fail("{}: optimizer state for {} has the wrong size", state_path, e.name);
    std::copy(mv.begin(), mv.end(), m.begin() + static_cast<ptrdiff_t>(e.offset));
    std::copy(vv.begin(), vv.end(), v.begin() + static_cast<ptrdiff_t>(e.offset));
  }
  params.upload(params.moment1(), m);
  params.upload(params.moment2(), v);
  const std::vector<int64_t> step = state.int64_tensor("step");
  if (step.size() != 1 || step[0] < 0) fail("{}: malformed optimizer step", state_path);
  params.upload_step(step[0]);
}

}  // namespace plinth
