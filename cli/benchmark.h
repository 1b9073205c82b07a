// Measurements behind `plinth bench`: throughput of training steps and inference at a
// batch size, per-layer timing, the GEMM rate of the device's BLAS. Warm-up runs are
// excluded; each figure is the median of timed windows, with the spread.
#pragma once

#include <string>
#include <vector>

#include "engine/backend.h"

#include "datasets/dataset.h"
#include "engine/model.h"

namespace plinth::cli {

struct Throughput {
  double median = 0, min = 0, max = 0;  // samples (or FLOP) per second over the windows
  size_t device_bytes = 0;              // executor arena + parameter arenas
  int slice = 0;                        // samples per executor slice (Executor)
  double peak_rss_mb = 0;               // host peak resident set during the measurement
  size_t launches = 0;       // per step, counted in its CUDA graph; 0 when steps ran eagerly
  std::string eager_reason;  // why they did
};

struct ThroughputOptions {
  int repeats = 5;                  // timed windows (the median is reported)
  double seconds_per_window = 1.0;  // after the warm-up
  bool cuda_graphs = true;          // replay steps from CUDA graphs where the backend can
  bool adapt_threads = true;        // CPU: the thread governor (engine/thread_governor.h)
  bool slices = true;               // large batches slice by slice (Executor)
};

// mode "train": fit()'s training step (Trainer::time_steps: gather, forward, loss,
// backward, checks, optimizer); "infer": gather and forward. Batches are gathered from
// `data` (resident on the device) as in training; the options are TrainOptions' namesakes.
Throughput measure_throughput(const Model& model, Backend& backend, const Dataset& data, int batch,
                              bool train, const ThroughputOptions& options);

// Forward and backward time of each layer in one training step, milliseconds averaged
// over `repeats` steps (after one warm-up step). Each layer is timed on its own, with the
// device synchronised around it.
struct LayerTiming {
  std::string name;  // "conv1+pool1" where the pool is computed in the convolution's passes
  double forward_ms = 0, backward_ms = 0;  // medians over `steps` steps
  int steps = 0;
  // Kernel launches, copies and fills each pass queues, counted by capturing it alone;
  // -1 where the backend cannot capture.
  long forward_launches = -1, backward_launches = -1;
};
// Each pass's median over at least `min_steps` training steps and at least a second (a pause
// of the machine moves no figure).
std::vector<LayerTiming> measure_layers(const Model& model, Backend& backend, int batch,
                                        int min_steps);

// Forward multiply-adds x 2 of a conv layer per sample, for GFLOP/s figures.
double layer_forward_flops(const Model& model, size_t node);

// fp32 GEMM rate (FLOP/s) of backend.gemm on n x n x n products.
Throughput measure_gemm(Backend& backend, int n, int repeats);

}  // namespace plinth::cli
