#include "tests/op_harness.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <type_traits>

namespace plinth::test {
namespace {

// max |tested - reference| / max |reference|; infinite when the two disagree on which
// values are NaN or infinite.
double relative_error(const std::vector<float>& tested, const std::vector<float>& reference) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < tested.size(); ++i) {
    const float t = tested[i], r = reference[i];
    if (t == r || (std::isnan(t) && std::isnan(r))) {
      if (std::isfinite(r)) scale = std::max(scale, std::fabs(static_cast<double>(r)));
      continue;
    }
    if (!std::isfinite(t) || !std::isfinite(r)) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, std::fabs(static_cast<double>(t) - r));
    scale = std::max(scale, std::fabs(static_cast<double>(r)));
  }
  return scale > 0 ? diff / scale : diff;
}

const std::vector<float>& floats(const HostData& data, const std::string& name) {
  if (const auto* v = std::get_if<std::vector<float>>(&data)) return *v;
  throw std::logic_error("op table: buffer " + name + " is compared as floats but is not float");
}

void check_buffer(const Buffers::Entry& b, const HostData& reference, const HostData& tested) {
  INFO("buffer " << b.name);
  switch (b.check.kind) {
    case Check::none:
      break;
    case Check::exact:
      CHECK(tested == reference);
      break;
    case Check::relative: {
      const double error = relative_error(floats(tested, b.name), floats(reference, b.name));
      INFO("relative error " << error << ", tolerance " << b.check.tolerance);
      CHECK(error < b.check.tolerance);
      break;
    }
    case Check::stats: {
      const std::vector<float>& t = floats(tested, b.name);
      const std::vector<float>& r = floats(reference, b.name);
      REQUIRE(t.size() == static_cast<size_t>(kStatsSize));
      for (const Stat s : {kStatLossSum, kStatCorrect}) {
        INFO("stat " << s << ": " << t[s] << " against " << r[s]);
        CHECK(std::fabs(t[s] - r[s]) <= b.check.tolerance * std::max(1.0f, std::fabs(r[s])));
      }
      CHECK(t[kStatCount] == r[kStatCount]);
      CHECK(t[kStatNonFinite] == r[kStatNonFinite]);
      break;
    }
  }
  if (b.check.expected) {
    CHECK(reference == *b.check.expected);
    CHECK(tested == *b.check.expected);
  }
}

}  // namespace

std::vector<float> Buffers::random(size_t n, double lo, double hi) {
  std::mt19937_64 rng(seed_++);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(dist(rng));
  return v;
}

std::vector<float> Buffers::distinct(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(-1.0 + 2.0 * (i + 0.5) / n);
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed_++));
  return v;
}

void Buffers::add(const std::string& name, HostData contents, Check check) {
  for (const Entry& e : entries_)
    if (e.name == name) throw std::logic_error("op table: buffer " + name + " declared twice");
  entries_.push_back({name, std::move(contents), std::move(check)});
}

Args::Args(Backend& backend, const Buffers& buffers) : backend_(&backend) {
  for (const Buffers::Entry& e : buffers.entries()) {
    std::visit(
        [&](const auto& host) {
          using Vector = std::decay_t<decltype(host)>;
          const size_t bytes = host.size() * sizeof(typename Vector::value_type);
          Buffer buffer{DeviceBuffer(backend, bytes), Vector{}};
          backend.upload(buffer.memory.as<void>(), host.data(), bytes);
          buffers_.emplace(e.name, std::move(buffer));
        },
        e.contents);
  }
}

const Args::Buffer& Args::at(const std::string& name) const {
  const auto it = buffers_.find(name);
  if (it == buffers_.end()) throw std::logic_error("op table: no buffer named " + name);
  return it->second;
}

template <typename T>
T* Args::get(const std::string& name) const {
  const Buffer& b = at(name);
  if (!std::holds_alternative<std::vector<T>>(b.host))
    throw std::logic_error("op table: buffer " + name + " has another element type");
  return b.memory.as<T>();
}

float* Args::f32(const std::string& name) const { return get<float>(name); }
int32_t* Args::i32(const std::string& name) const { return get<int32_t>(name); }
int64_t* Args::i64(const std::string& name) const { return get<int64_t>(name); }
uint8_t* Args::u8(const std::string& name) const { return get<uint8_t>(name); }

HostData Args::read(const std::string& name) const {
  const Buffer& b = at(name);
  return std::visit(
      [&](const auto& empty) -> HostData {
        using Vector = std::decay_t<decltype(empty)>;
        Vector host(b.memory.bytes() / sizeof(typename Vector::value_type));
        backend_->download(host.data(), b.memory.as<void>(), b.memory.bytes());
        return host;
      },
      b.host);
}

void compare_backends(const OpTest& test, uint64_t seed, Backend& reference, Backend& tested) {
  INFO("op " << test.name());
  Buffers buffers(seed);
  test.buffers(buffers);
  const Args on_reference(reference, buffers), on_tested(tested, buffers);
  test.run(reference, on_reference);
  test.run(tested, on_tested);
  for (const Buffers::Entry& b : buffers.entries())
    if (b.check.kind != Check::none || b.check.expected)
      check_buffer(b, on_reference.read(b.name), on_tested.read(b.name));
}

const CudaStatus& gpu_status() {
  static const CudaStatus status = cuda_status();
  return status;
}

}  // namespace plinth::test
