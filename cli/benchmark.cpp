#include "cli/benchmark.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "engine/executor.h"
#include "engine/parameters.h"
#include "engine/step_graph.h"
#include "engine/thread_governor.h"
#include "engine/trainer.h"

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

namespace {

// Steps per timed window, from a short timed run of `probe` steps.
int64_t steps_per_window(double probe_seconds, int64_t probe, double seconds_per_window) {
  const double per_step = std::max(1e-7, probe_seconds / static_cast<double>(probe));
  return std::max<int64_t>(3, static_cast<int64_t>(seconds_per_window / per_step));
}

// The warm-up also lets the thread governor time a window and probe another count before
// the timing starts (on a loaded machine it leaves a count that the other process slows),
// as a run of more than a few seconds would have done long before.
constexpr double kGovernorSettleSeconds = 3 * ThreadGovernor::kWindowSeconds;

std::vector<double> rates_of(const std::vector<double>& seconds, int64_t steps, int batch) {
  std::vector<double> rates;
  for (double s : seconds) rates.push_back(static_cast<double>(steps) * batch / std::max(1e-9, s));
  return rates;
}

Throughput measure_training(const Model& model, Backend& backend, const Dataset& data, int batch,
                            const ThroughputOptions& options) {
  Parameters params(model, backend);
  params.initialize(1);
  TrainOptions o;
  o.epochs = 1;
  o.batch_size = batch;
  o.cuda_graphs = options.cuda_graphs;
  o.adapt_threads = options.adapt_threads;
  o.slices = options.slices;
  Trainer trainer(model, backend, params, o);
  // Warm-up (first touch, algorithm choice, the graph's capture) and the window's length.
  constexpr int64_t kProbe = 10;
  const double probe = trainer.time_steps(data, Trainer::kEagerSteps + 3, kProbe, 1).front();
  const int64_t steps = steps_per_window(probe, kProbe, options.seconds_per_window);
  const int64_t warmup =
      Trainer::kEagerSteps + 3 +
      (options.adapt_threads ? steps_per_window(probe, kProbe, kGovernorSettleSeconds) : 0);
  const std::vector<double> seconds = trainer.time_steps(data, warmup, steps, options.repeats);
  Throughput t = summarize(rates_of(seconds, steps, batch));
  t.slice = trainer.training_slice();
  const GraphUse& use = trainer.training_graph();
  t.launches = use.replays > 0 ? use.launches : 0;
  t.eager_reason = use.eager_reason;
  t.device_bytes = trainer.training_arena_bytes() + 4 * params.size() * sizeof(float);
  return t;
}

// Gather and forward, as evaluation runs them.
Throughput measure_inference(const Model& model, Backend& backend, const Dataset& data, int batch,
                             const ThroughputOptions& options) {
  Parameters params(model, backend);
  params.initialize(1);
  Executor exec(model, params, backend, batch, false, {}, 0,
                options.slices ? Executor::kAutoSlice : batch);
  // A pool of real images on the device, gathered into batches as in evaluation.
  const int pool = std::min(data.count, std::max(batch * 4, 4096));
  DeviceBuffer images(backend, static_cast<size_t>(pool) * data.image_size());
  backend.upload(images.as<void>(), data.images.data(),
                 static_cast<size_t>(pool) * data.image_size());
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
  DeviceBuffer counter(backend, sizeof(int64_t));
  int64_t next = 0;  // the batch the device counter points at, mirrored on the host
  StepGraph graph(backend, options.cuda_graphs, Trainer::kEagerSteps);
  std::optional<ThreadGovernor> governor;  // as training's (engine/thread_governor.h)
  if (options.adapt_threads) {
    governor.emplace(backend);
    exec.on_slice_done([&](int samples) { governor->slice_done(samples); });
  }
  auto run_batch = [&] {
    if (next == batches) {
      next = 0;
      backend.upload(counter.as<void>(), &next, sizeof(next));
    }
    graph.run([&] {
      backend.gather_batch(images.as<uint8_t>(), nullptr, indices.as<int32_t>(),
                           counter.as<int64_t>(), batch, data.channels, data.height * data.width,
                           mean_std.as<float>(), mean_std.as<float>() + data.channels,
                           exec.input().data, nullptr);
      exec.forward(false);
      backend.increment(counter.as<int64_t>(), nullptr);
    });
    ++next;
  };
  backend.upload(counter.as<void>(), &next, sizeof(next));
  auto timed = [&](int64_t steps) {
    backend.synchronize();
    const auto start = clock::now();
    for (int64_t s = 0; s < steps; ++s) run_batch();
    backend.synchronize();
    return elapsed(start);
  };
  constexpr int64_t kProbe = 10;
  timed(Trainer::kEagerSteps + 3);  // warm-up: first touch, algorithm choice, the capture
  const double probe = timed(kProbe);
  const int64_t steps = steps_per_window(probe, kProbe, options.seconds_per_window);
  if (governor) timed(steps_per_window(probe, kProbe, kGovernorSettleSeconds));
  std::vector<double> seconds;
  for (int r = 0; r < options.repeats; ++r) seconds.push_back(timed(steps));
  if (governor) backend.use_threads(backend.max_threads());
  Throughput t = summarize(rates_of(seconds, steps, batch));
  t.launches = graph.replaying() ? graph.launches() : 0;
  t.eager_reason = graph.eager_reason();
  t.device_bytes = exec.arena_bytes() + params.size() * sizeof(float);
  t.slice = exec.slice();
  return t;
}

}  // namespace

Throughput measure_throughput(const Model& model, Backend& backend, const Dataset& data, int batch,
                              bool train, const ThroughputOptions& options) {
  reset_peak_rss();
  Throughput t = train ? measure_training(model, backend, data, batch, options)
                       : measure_inference(model, backend, data, batch, options);
  t.peak_rss_mb = peak_rss_mb();
  return t;
}

namespace {

// One training step with each layer timed on its own, each pass's milliseconds appended to
// forward[i] and backward[i].
void time_one_step(Executor& exec, Backend& backend, std::vector<std::vector<double>>& forward,
                   std::vector<std::vector<double>>& backward) {
  auto timed = [&](auto&& run) {
    const auto start = clock::now();
    run();
    backend.synchronize();
    return std::chrono::duration<double, std::milli>(clock::now() - start).count();
  };
  backend.synchronize();
  for (size_t i = 0; i < forward.size(); ++i)
    forward[i].push_back(timed([&] { exec.forward_node(i, true); }));
  exec.loss(exec.batch(), true);
  for (size_t i = forward.size(); i-- > 0;)
    backward[i].push_back(exec.node_needs_gradient(i) ? timed([&] { exec.backward_node(i); }) : 0);
}

// The launches of each layer's passes, each captured on its own (and not run).
void count_launches(Executor& exec, Backend& backend, std::vector<LayerTiming>& t) {
  if (!backend.capture_unavailable().empty()) return;
  auto launches = [&](const std::function<void()>& pass) {
    return static_cast<long>(backend.capture(pass)->launches());
  };
  for (size_t i = 0; i < t.size(); ++i) {
    t[i].forward_launches = launches([&] { exec.forward_node(i, true); });
    t[i].backward_launches =
        exec.node_needs_gradient(i) ? launches([&] { exec.backward_node(i); }) : 0;
  }
}

}  // namespace

std::vector<LayerTiming> measure_layers(const Model& model, Backend& backend, int batch,
                                        int min_steps) {
  Parameters params(model, backend);
  params.initialize(1);
  // Whole batches: each layer timed over the batch, as one slice could not be.
  Executor exec(model, params, backend, batch, true, {}, 0, batch);
  std::vector<float> input(exec.input().numel());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  for (float& v : input) v = pixel(rng);
  backend.upload(exec.input().data, input.data(), input.size() * sizeof(float));
  const size_t n = model.nodes.size();
  std::vector<std::vector<double>> forward(n), backward(n);
  time_one_step(exec, backend, forward, backward);  // warm-up: first touch, algorithm choice
  forward.assign(n, {});
  backward.assign(n, {});
  // Spread over a second at least: a pause of the machine (another process, the VM's host)
  // lasting a tenth of a second would otherwise take most of the steps.
  const auto start = clock::now();
  for (int r = 0; r < min_steps || clock::now() - start < std::chrono::seconds(1); ++r)
    time_one_step(exec, backend, forward, backward);
  std::vector<LayerTiming> t(n);
  for (size_t i = 0; i < n; ++i) {
    t[i].steps = static_cast<int>(forward[i].size());
    t[i].forward_ms = summarize(forward[i]).median;
    t[i].backward_ms = summarize(backward[i]).median;
  }
  count_launches(exec, backend, t);
  for (size_t i = 0; i < t.size(); ++i) t[i].name = model.nodes[i].layer->name();
  // A convolution whose pool is computed in its passes is timed with that pool.
  for (size_t i = 0; i < t.size(); ++i)
    for (size_t j = i + 1; j < t.size() && !exec.node_output_kept(i); ++j)
      if (model.nodes[j].inputs == std::vector<int>{static_cast<int>(i)})
        t[i].name += "+" + model.nodes[j].layer->name();
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
