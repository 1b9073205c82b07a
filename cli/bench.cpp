// plinth bench: throughput of the seed CNN on every device in one run, per-layer
// timing, the BLAS GEMM rate and time to accuracy, as a table and as JSON rows.
#include <cstdio>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/benchmark.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/parameters.h"
#include "engine/progress.h"
#include "engine/stopping.h"
#include "engine/trainer.h"
#include "engine/user_text.h"

namespace plinth::cli {

namespace {

std::vector<std::string> devices_to_run(const std::string& spec) {
  if (spec != "auto") {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
      const size_t comma = spec.find(',', start);
      out.push_back(
          spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) return out;
      start = comma + 1;
    }
  }
  std::vector<std::string> out{"cpu"};
  if (!cuda_status().devices.empty()) out.push_back("cuda");
  return out;
}

nlohmann::json row(const std::string& device, Backend& be, int threads) {
  return {{"engine", "plinth"},
          {"version", PLINTH_VERSION},
          {"device", device},
          {"device_name", be.description()},
          {"threads", threads}};
}

}  // namespace

int bench_command(int argc, char** argv) {
  Args a(
      "bench",
      "Measure training and inference throughput (samples/s) of a model on each device, per-layer "
      "timing, the BLAS GEMM rate and time to accuracy. Medians of timed windows, warm-up "
      "excluded.");
  a.option("model", "FILE", "model file", "models/seed_cnn.json")
      .option("device", "LIST",
              "devices to measure: auto (the CPU and a usable GPU), or e.g. cpu,cuda", "auto")
      .option("batch-sizes", "LIST", "batch sizes (default 32,64,256,1024, plus 4096 on a GPU)")
      .option("modes", "LIST",
              "train, infer or both; none for --gemm or --layers alone (no data set read)",
              "train,infer")
      .option("threads", "N", "CPU threads (0: all cores)", "0")
      .range(0, kMaxThreads)
      .option("repeats", "N", "timed windows per figure (the median is reported)", "5")
      .range(1, 1000)
      .option("window", "SECONDS", "length of each timed window", "1.0")
      .number_range(0.001, 3600)
      .option("json", "FILE", "write the rows as a JSON list")
      .flag("layers",
            "also time each layer's forward and backward pass (batch: the first batch size)")
      .option("gemm", "N", "also measure the fp32 GEMM rate on N x N x N products (0: off)", "0")
      .range(0, 65536)
      .flag("time-to-accuracy",
            "also train until test accuracy reaches --target (wall seconds of training)")
      .option("target", "F", "accuracy for --time-to-accuracy", "0.90")
      .number_range(0, 1)
      .option("tta-epochs", "N", "at most this many epochs for --time-to-accuracy", "10")
      .range(1, kMaxEpochs)
      .option("tta-batch", "N", "batch size for --time-to-accuracy", "32")
      .range(1, std::numeric_limits<int>::max())
      .option("seed", "N", "seed for --time-to-accuracy", "1")
      .range(0, std::numeric_limits<int64_t>::max())
      .option("conv-impl", "cudnn|native", "GPU convolution", "cudnn")
      .option("precision", "fp32|tf32|bf16", "GPU math in convolutions and GEMMs", "fp32")
      .option("cuda-graph", "on|off", "GPU: replay steps from CUDA graphs", "on")
      .option("adapt-threads", "on|off",
              "CPU training and inference: run on fewer threads while that is clearly faster "
              "(another process holding a core); off keeps --threads",
              "on")
      .option("slices", "on|off",
              "CPU: run batches larger than 12 MB of activations slice by slice (each slice "
              "through every layer while it is in the caches); off: whole batches",
              "on")
      .option("data", "DIR", "IDX data set directory, or $PLINTH_DATA", default_data_dir());
  if (!a.parse(argc, argv)) return 0;
  std::vector<int> batches;
  for (const std::string& b : a.list("batch-sizes"))
    batches.push_back(static_cast<int>(
        parse_integer(b, a.who("batch-sizes") + " item", 1, std::numeric_limits<int>::max())));
  const Model model = load_model(find_model_file(a.str("model")));
  std::vector<std::string> modes = a.list("modes");
  if (modes == std::vector<std::string>{"none"}) modes.clear();
  for (const std::string& mode : modes)
    if (mode != "train" && mode != "infer")
      fail("--modes: expected train and/or infer, or none, got '{}'", mode);
  Dataset train;  // read only when something trains or runs on it
  if (!modes.empty() || a.on("time-to-accuracy"))
    train = load_idx_dataset(data_dir(a), Split::train);
  const int threads = a.integer("threads");
  const int host_threads =
      threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  nlohmann::json rows = nlohmann::json::array();
  CudaOptions cuda;
  cuda.native_conv = a.str("conv-impl") == "native";
  cuda.precision = parse_precision(a.str("precision"));
  const bool graphs = cuda_graphs_from(a);
  const bool adapt = on_off(a, "adapt-threads");
  ThroughputOptions measured;
  measured.repeats = a.integer("repeats");
  measured.seconds_per_window = a.number("window");
  measured.cuda_graphs = graphs;
  measured.adapt_threads = adapt;
  measured.slices = on_off(a, "slices");

  for (const std::string& device : devices_to_run(a.str("device"))) {
    DeviceChoice choice = open_device_option(device, threads, cuda);
    Backend& be = *choice.backend;
    const std::string kind = be.kind() == DeviceKind::cpu ? "cpu" : "cuda";
    status("bench on " + be.description());
    if (!a.has("batch-sizes"))
      batches = kind == "cpu" ? std::vector<int>{32, 64, 256, 1024}
                              : std::vector<int>{32, 64, 256, 1024, 4096};
    std::printf("\n%-6s %-6s %7s %14s %22s %10s %10s %9s\n", "device", "mode", "batch", "samples/s",
                "spread (min..max)", "device MB", "peak RSS", "launches");
    for (const std::string& mode : modes) {
      for (int batch : batches) {
        const Throughput t = measure_throughput(model, be, train, batch, mode == "train", measured);
        std::printf("%-6s %-6s %7d %14.0f %10.0f..%-11.0f %10.1f %10.1f %9s\n", kind.c_str(),
                    mode.c_str(), batch, t.median, t.min, t.max, t.device_bytes / 1048576.0,
                    t.peak_rss_mb, t.launches ? std::to_string(t.launches).c_str() : "-");
        if (!t.launches && kind == "cuda") status("steps ran eagerly: " + t.eager_reason);
        std::fflush(stdout);
        nlohmann::json r = row(kind, be, host_threads);
        r.update({{"mode", mode},
                  {"batch_size", batch},
                  {"samples_per_second", t.median},
                  {"slice", t.slice},
                  {"spread", {{"min", t.min}, {"max", t.max}}},
                  {"peak_rss_mb", t.peak_rss_mb},
                  {"device_mb", t.device_bytes / 1048576.0},
                  {"repeats", a.integer("repeats")},
                  {"precision", precision_name(cuda.precision)},
                  {"cuda_graph", t.launches > 0},
                  {"launches_per_step", t.launches}});
        rows.push_back(r);
      }
    }
    double gemm_rate = 0;
    if (a.integer("gemm") > 0) {
      const Throughput g = measure_gemm(be, a.integer("gemm"), a.integer("repeats"));
      gemm_rate = g.median;
      std::printf("\n%s fp32 GEMM %dx%dx%d: %.1f GFLOP/s (%.1f..%.1f)\n", kind.c_str(),
                  a.integer("gemm"), a.integer("gemm"), a.integer("gemm"), g.median / 1e9,
                  g.min / 1e9, g.max / 1e9);
      nlohmann::json r = row(kind, be, host_threads);
      r.update({{"mode", "gemm"},
                {"n", a.integer("gemm")},
                {"gflops", g.median / 1e9},
                {"spread", {{"min", g.min / 1e9}, {"max", g.max / 1e9}}}});
      rows.push_back(r);
    }
    if (a.on("layers")) {
      // Medians over at least this many training steps (and a second).
      constexpr int kLayerSteps = 41;
      const int batch = batches.front();
      const auto timings = measure_layers(model, be, batch, kLayerSteps);
      std::printf(
          "\nper-layer time at batch %d (ms, median of %d steps) and launches (kernels, copies, "
          "fills)\n"
          "%-12s %10s %10s %12s %12s %9s %9s\n",
          batch, timings.empty() ? 0 : timings.front().steps, "layer", "forward", "backward",
          "fwd GFLOP/s", "of GEMM", "fwd", "bwd");
      for (size_t i = 0; i < timings.size(); ++i) {
        const double flops = layer_forward_flops(model, i) * batch;
        const double gflops = timings[i].forward_ms > 0 ? flops / (timings[i].forward_ms * 1e6) : 0;
        auto count = [](long n) { return n < 0 ? std::string("-") : std::to_string(n); };
        std::printf("%-12s %10.3f %10.3f %12.1f %11s %9s %9s\n", timings[i].name.c_str(),
                    timings[i].forward_ms, timings[i].backward_ms, gflops,
                    gemm_rate > 0 && flops > 0
                        ? fmt::format("{:.0f}%", 100 * gflops * 1e9 / gemm_rate).c_str()
                        : "",
                    count(timings[i].forward_launches).c_str(),
                    count(timings[i].backward_launches).c_str());
        nlohmann::json r = row(kind, be, host_threads);
        r.update({{"mode", "layer"},
                  {"batch_size", batch},
                  {"layer", timings[i].name},
                  {"steps", timings[i].steps},
                  {"forward_ms", timings[i].forward_ms},
                  {"backward_ms", timings[i].backward_ms},
                  {"forward_gflops", gflops},
                  {"forward_launches", timings[i].forward_launches},
                  {"backward_launches", timings[i].backward_launches}});
        rows.push_back(r);
      }
    }
    if (a.on("time-to-accuracy")) {
      const Dataset test = load_idx_dataset(data_dir(a), Split::test);
      Parameters params(model, be);
      params.initialize(static_cast<uint64_t>(a.integer64("seed")));
      TrainOptions o;
      o.cuda_graphs = graphs;
      o.adapt_threads = adapt;
      o.slices = measured.slices;
      o.epochs = a.integer("tta-epochs");
      o.batch_size = a.integer("tta-batch");
      o.seed = static_cast<uint64_t>(a.integer64("seed"));
      Trainer trainer(model, be, params, o);
      ProgressPrinter progress(true);
      TargetAccuracy target(static_cast<float>(a.number("target")));
      const TrainState s = trainer.fit(train, Dataset{}, {}, {&progress, &target}, &test);
      double seconds = 0;
      int reached = 0;
      for (const EpochRecord& r : s.history) {
        seconds += r.seconds;
        if (!reached && r.test_accuracy >= target.target()) reached = r.epoch;
      }
      std::printf(
          "\n%s time to %.1f%% test accuracy: %s (batch %d, all 60000 training images, epoch %.1f "
          "s)\n",
          kind.c_str(), 100 * target.target(),
          reached ? fmt::format("{:.1f} s of training, epoch {}", seconds, reached).c_str()
                  : "not reached",
          o.batch_size, s.history.empty() ? 0.0 : s.history.front().seconds);
      nlohmann::json r = row(kind, be, host_threads);
      r.update({{"mode", "time_to_accuracy"},
                {"batch_size", o.batch_size},
                {"target", target.target()},
                {"seconds", reached ? seconds : -1},
                {"epoch", reached},
                {"epoch_seconds", s.history.empty() ? 0.0 : s.history.front().seconds}});
      for (const EpochRecord& e : s.history) r["test_accuracy"].push_back(e.test_accuracy);
      rows.push_back(r);
    }
  }
  if (a.has("json")) write_text_file(a.str("json"), rows.dump(2) + "\n", false, "JSON rows");
  return 0;
}

}  // namespace plinth::cli
