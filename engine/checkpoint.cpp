#include "engine/error.h"
#include "engine/checkpoint.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "engine/safetensors.h"

namespace plinth {

namespace {

std::vector<int64_t> dims(const Shape& s) { return std::vector<int64_t>(s.dims.begin(), s.dims.begin() + s.rank); }

std::vector<NamedTensorData> arena_tensors(const Parameters& params, const float* arena,
                                           const std::string& prefix) {
  const std::vector<float> host = params.download(arena);
  std::vector<NamedTensorData> out;
  for (const ParamEntry& e : params.entries())
    out.push_back(NamedTensorData::f32(prefix + e.name, dims(e.shape),
                                       std::span<const float>(host.data() + e.offset, e.shape.numel())));
  return out;
}

nlohmann::json history_json(const std::vector<EpochRecord>& history) {
  nlohmann::json h = nlohmann::json::array();
  for (const EpochRecord& r : history)
    h.push_back({{"epoch", r.epoch}, {"loss", r.loss}, {"accuracy", r.accuracy}, {"val_loss", r.val_loss},
                 {"val_accuracy", r.val_accuracy}, {"lr", r.lr}, {"seconds", r.seconds},
                 {"samples_per_second", r.samples_per_second}, {"steps", r.steps},
                 {"test_accuracy", r.test_accuracy}});
  return h;
}

std::vector<EpochRecord> history_from_json(const nlohmann::json& h) {
  std::vector<EpochRecord> out;
  for (const auto& j : h) {
    EpochRecord r;
    r.epoch = j.at("epoch");
    r.loss = j.at("loss");
    r.accuracy = j.at("accuracy");
    r.val_loss = j.at("val_loss");
    r.val_accuracy = j.at("val_accuracy");
    r.lr = j.at("lr");
    r.seconds = j.at("seconds");
    r.samples_per_second = j.at("samples_per_second");
    r.steps = j.at("steps");
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
  const bool has_ext = path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  return (has_ext ? path.substr(0, path.size() - ext.size()) : path) + ".optim.safetensors";
}

void save_checkpoint(const std::string& path, const Parameters& params, const CheckpointMeta& meta) {
  const std::string tag = run_tag(meta);
  std::vector<NamedTensorData> state = arena_tensors(params, params.moment1(), "m.");
  for (auto& t : arena_tensors(params, params.moment2(), "v.")) state.push_back(std::move(t));
  const int64_t step = params.download_step();
  state.push_back(NamedTensorData::i64("step", {1}, std::span<const int64_t>(&step, 1)));
  save_safetensors(optimizer_state_path(path), state, {{"format", "plinth-optimizer"}, {"tag", tag}});

  const nlohmann::json partial(std::vector<double>(meta.state.partial_stats, meta.state.partial_stats + kStatsSize));
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
      {"normalization", nlohmann::json{{"mean", meta.mean}, {"std", meta.std}}.dump()},
      {"tag", tag}};
  save_safetensors(path, arena_tensors(params, params.values(), ""), md);
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
    const auto partial = nlohmann::json::parse(field("partial_stats"));
    for (int i = 0; i < kStatsSize; ++i) meta.state.partial_stats[i] = partial.at(i);
    meta.state.partial_seconds = std::stod(field("partial_seconds"));
    meta.state.history = history_from_json(nlohmann::json::parse(field("history")));
    const auto norm = nlohmann::json::parse(field("normalization"));
    meta.mean = norm.at("mean");
    meta.std = norm.at("std");
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
      report.mismatched.push_back(fmt::format("{}: checkpoint {} vs model {}", e.name, s.str(), e.shape.str()));
      continue;
    }
    const std::vector<float> values = f.float_tensor(e.name);
    std::copy(values.begin(), values.end(), host.begin() + static_cast<ptrdiff_t>(e.offset));
    report.loaded.push_back(e.name);
  }
  for (const std::string& name : f.names())
    if (!params.find(name) && !is_reset(name)) report.unexpected.push_back(name);
  if (strict && (!report.missing.empty() || !report.unexpected.empty() || !report.mismatched.empty())) {
    std::string why;
    for (const auto& m : report.mismatched) why += " shape mismatch " + m + ";";
    for (const auto& m : report.missing) why += " missing " + m + ";";
    for (const auto& m : report.unexpected) why += " unexpected " + m + ";";
    fail("{}: weights do not match the model:{} use --non-strict to load what matches, or "
         "--reset LAYER to re-initialise a layer", path, why);
  }
  params.upload(params.values(), host);
  return report;
}

void load_optimizer_state(const std::string& path, Parameters& params) {
  const std::string state_path = optimizer_state_path(path);
  const SafetensorsFile weights = load_safetensors(path);
  const SafetensorsFile state = load_safetensors(state_path);
  const auto wt = weights.metadata().find("tag");
  const auto st = state.metadata().find("tag");
  if (wt == weights.metadata().end() || st == state.metadata().end() || wt->second != st->second)
    fail("{}: optimizer state does not belong to {} (the save was interrupted between the "
         "two files?); resume from an earlier checkpoint", state_path, path);
  std::vector<float> m = params.download(params.moment1()), v = params.download(params.moment2());
  for (const ParamEntry& e : params.entries()) {
    const std::vector<float> mv = state.float_tensor("m." + e.name), vv = state.float_tensor("v." + e.name);
    if (mv.size() != e.shape.numel() || vv.size() != e.shape.numel())
      fail("{}: optimizer state for {} has the wrong size", state_path, e.name);
    std::copy(mv.begin(), mv.end(), m.begin() + static_cast<ptrdiff_t>(e.offset));
    std::copy(vv.begin(), vv.end(), v.begin() + static_cast<ptrdiff_t>(e.offset));
  }
  params.upload(params.moment1(), m);
  params.upload(params.moment2(), v);
  const std::vector<int64_t> step = state.int64_tensor("step");
  if (step.size() != 1) fail("{}: malformed optimizer step", state_path);
  params.upload_step(step[0]);
}

}  // namespace plinth
