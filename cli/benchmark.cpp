#include "cli/benchmark.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <string>

#include "engine/executor.h"
#include "engine/parameters.h"

namespace plinth::cli {

namespace {

using clock = std::chrono::steady_clock;

double elapsed(clock::time_point t) {
  return std::chrono::duration<double>(clock::now() - t).count();
}

// Linux keeps the peak resident set in VmHWM; writing 5 to clear_refs resets it, so each
// batch size gets its own peak.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }
double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      double kb = 0;
      in >> kb;
      return kb / 1024.0;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

Throughput summarize(std::vector<double> rates) {
  std::sort(rates.begin(), rates.end());
  Throughput t;
  t.min = rates.front();
  t.max = rates.back();
  const size_t n = rates.size();
  t.median = n % 2 ? rates[n / 2] : 0.5 * (rates[n / 2 - 1] + rates[n / 2]);
  return t;
}

}  // namespace

Throughput measure_throughput(const Model& model, Backend& backend, const Dataset& data, int batch,
                              bool train, int repeats, double seconds_per_window) {
  reset_peak_rss();
  Parameters params(model, backend);
  params.initialize(1);
  Executor exec(model, params, backend, batch, train);
  // A pool of real images on the device, gathered into batches as in training.
  const int pool = std::min(data.count, std::max(batch * 4, 4096));
  DeviceBuffer images(backend, static_cast<size_t>(pool) * data.image_size());
  backend.upload(images.as<void>(), data.images.data(),
                 static_cast<size_t>(pool) * data.image_size());
  DeviceBuffer labels(backend, pool * sizeof(int32_t));
  backend.upload(labels.as<void>(), data.labels.data(), pool * sizeof(int32_t));
  const int batches = pool / batch > 0 ? pool / batch : 1;
  DeviceBuffer indices(backend, static_cast<size_t>(batches) * batch * sizeof(int32_t));
  std::vector<int32_t> order(static_cast<size_t>(batches) * batch);
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i % pool);
  backend.upload(indices.as<void>(), order.data(), order.size() * sizeof(int32_t));
  // Inputs as pixel / 255: mean 0 and std 1 for every channel.
  std::vector<float> normalization(2 * data.channels, 0.0f);
  std::fill(normalization.begin() + data.channels, normalization.end(), 1.0f);
  DeviceBuffer mean_std(backend, normalization.size() * sizeof(float));
  backend.upload(mean_std.as<void>(), normalization.data(), normalization.size() * sizeof(float));

  int64_t step = 0;
  auto run_step = [&] {
    const int32_t* idx = indices.as<int32_t>() + (step++ % batches) * batch;
    backend.gather_batch(images.as<uint8_t>(), labels.as<int32_t>(), idx, batch, data.channels,
                         data.height * data.width, mean_std.as<float>(),
                         mean_std.as<float>() + data.channels, exec.input().data, exec.labels());
    exec.forward(train);
    if (!train) return;
    exec.loss(batch, true);
    exec.backward();
    backend.increment(params.step());
    backend.optimizer_update(model.optimizer, params.values(), params.grads(), params.moment1(),
                             params.moment2(), params.size(), params.step(), nullptr);
  };
  // Warm-up: first-touch of memory, algorithm selection, caches; also sizes the window.
  auto t0 = clock::now();
  int warm = 0;
  do {
    run_step();
    ++warm;
    backend.synchronize();
  } while (elapsed(t0) < 0.2 * seconds_per_window || warm < 3);
  const double per_step = elapsed(t0) / warm;
  const int steps = std::max(3, static_cast<int>(seconds_per_window / per_step));
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    backend.synchronize();
    const auto start = clock::now();
    for (int s = 0; s < steps; ++s) run_step();
    backend.synchronize();
    rates.push_back(static_cast<double>(steps) * batch / elapsed(start));
  }
  Throughput t = summarize(rates);
  t.device_bytes = exec.arena_bytes() + 4 * params.size() * sizeof(float);
  t.peak_rss_mb = peak_rss_mb();
  return t;
}

namespace {

// One training step with each layer timed on its own; times are added to `t` divided by
// `repeats`.
void time_one_step(Executor& exec, Backend& backend, int repeats, std::vector<LayerTiming>& t) {
  auto timed = [&](auto&& run) {
    const auto start = clock::now();
    run();
    backend.synchronize();
    return std::chrono::duration<double, std::milli>(clock::now() - start).count() / repeats;
  };
  backend.synchronize();
  for (size_t i = 0; i < t.size(); ++i)
    t[i].forward_ms += timed([&] { exec.forward_node(i, true); });
  exec.loss(exec.batch(), true);
  for (size_t i = t.size(); i-- > 0;)
    if (exec.node_needs_gradient(i)) t[i].backward_ms += timed([&] { exec.backward_node(i); });
}

}  // namespace

std::vector<LayerTiming> measure_layers(const Model& model, Backend& backend, int batch,
                                        int repeats) {
  Parameters params(model, backend);
  params.initialize(1);
  Executor exec(model, params, backend, batch, true);
  std::vector<float> input(exec.input().numel());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  for (float& v : input) v = pixel(rng);
  backend.upload(exec.input().data, input.data(), input.size() * sizeof(float));
  std::vector<LayerTiming> t(model.nodes.size());
  time_one_step(exec, backend, 1, t);  // warm-up: first touch, algorithm choice, caches
  t.assign(model.nodes.size(), {});
  for (int r = 0; r < repeats; ++r) time_one_step(exec, backend, repeats, t);
  for (size_t i = 0; i < t.size(); ++i) t[i].name = model.nodes[i].layer->name();
  return t;
}

double layer_forward_flops(const Model& model, size_t node) {
  const NodeShapes shapes = model.shapes(1)[node];
  double weights = 0;
  for (const ParamSpec& p : model.nodes[node].layer->param_specs(shapes.inputs))
    if (p.suffix == "weight") weights = static_cast<double>(p.shape.numel());
  // Each weight is used once per output position (conv) or once (dense).
  const Shape& out = shapes.output;
  const double positions = out.rank == 4 ? static_cast<double>(out[2]) * out[3] : 1.0;
  return 2.0 * weights * positions;
}

Throughput measure_gemm(Backend& backend, int n, int repeats) {
  const size_t count = static_cast<size_t>(n) * n;
  DeviceBuffer a(backend, count * sizeof(float)), b(backend, count * sizeof(float)),
      c(backend, count * sizeof(float));
  std::vector<float> host(count);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> value(-0.5f, 0.5f);
  for (float& v : host) v = value(rng);
  backend.upload(a.as<void>(), host.data(), count * sizeof(float));
  backend.upload(b.as<void>(), host.data(), count * sizeof(float));
  auto run = [&] {
    backend.gemm(false, false, n, n, n, 1.0f, a.as<float>(), n, b.as<float>(), n, 0.0f,
                 c.as<float>(), n);
  };
  run();
  backend.synchronize();
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    const auto start = clock::now();
    run();
    backend.synchronize();
    rates.push_back(2.0 * n * n * static_cast<double>(n) / elapsed(start));
  }
  return summarize(rates);
}

}  // namespace plinth::cli
