#include "engine/parameters.h"
#include "engine/error.h"

#include <algorithm>

#include "engine/memory_budget.h"
#include "engine/rng.h"

namespace plinth {

namespace {
constexpr size_t kAlignFloats = 16;  // 64 bytes: each tensor starts on a cache line
}

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

Parameters::Parameters(const Model& model, Backend& backend) : backend_(backend) {
  const std::vector<NodeShapes> shapes = model.shapes(1);
  // Four arenas of the same layout: values, gradients and the optimizer's two moments.
  MemoryNeed need;
  need.what = fmt::format("model '{}', for its parameters (values, gradients, optimizer moments),",
                          model.name);
  for (size_t i = 0; i < model.nodes.size(); ++i) {
    const Layer& layer = *model.nodes[i].layer;
    for (const ParamSpec& p : layer.param_specs(shapes[i].input)) {
      entries_.push_back(
          {layer.name() + "." + p.suffix, static_cast<int>(i), p.shape, size_, p.init_limit});
      const size_t floats = (p.shape.numel() + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
      size_ += floats;
      need.add(layer.name(), 4 * floats * sizeof(float));
    }
  }
  require_memory(backend, need);
  const size_t bytes = std::max<size_t>(size_, 1) * sizeof(float);
  values_ = DeviceBuffer(backend, bytes);
  grads_ = DeviceBuffer(backend, bytes);
  m_ = DeviceBuffer(backend, bytes);
  v_ = DeviceBuffer(backend, bytes);
  step_ = DeviceBuffer(backend, sizeof(int64_t));
  // Padding between tensors stays zero in every arena, so updating a whole range is exact.
  backend.fill(values(), size_, 0.0f);
  backend.fill(grads(), size_, 0.0f);
  zero_optimizer_state();
}

const ParamEntry* Parameters::find(const std::string& name) const {
  for (const ParamEntry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

size_t Parameters::count() const {
  size_t n = 0;
  for (const ParamEntry& e : entries_) n += e.shape.numel();
  return n;
}

void Parameters::initialize(uint64_t seed, const std::vector<std::string>& only) {
  std::vector<float> host = download(values());
  for (const ParamEntry& e : entries_) {
    if (!only.empty() && std::find(only.begin(), only.end(), e.name) == only.end()) continue;
    const uint64_t key = hash_combine(seed, hash_name(e.name));
    for (size_t i = 0; i < e.shape.numel(); ++i)
      host[e.offset + i] =
          e.init_limit == 0 ? 0.0f : (2.0f * uniform01(key, i) - 1.0f) * e.init_limit;
  }
  upload(values(), host);
}

std::vector<float> Parameters::download(const float* arena) const {
  std::vector<float> host(size_);
  backend_.download(host.data(), arena, size_ * sizeof(float));
  return host;
}

void Parameters::upload(float* arena, const std::vector<float>& host) const {
  backend_.upload(arena, host.data(), size_ * sizeof(float));
}

int64_t Parameters::download_step() const {
  int64_t s = 0;
  backend_.download(&s, step(), sizeof(s));
  return s;
}

void Parameters::upload_step(int64_t s) const { backend_.upload(step(), &s, sizeof(s)); }

void Parameters::zero_optimizer_state() {
  backend_.fill(moment1(), size_, 0.0f);
  backend_.fill(moment2(), size_, 0.0f);
  upload_step(0);
}

}  // namespace plinth
