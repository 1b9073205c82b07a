// Loss kernels. Each writes its gradient elementwise and its statistics as per-block
// partial sums that launch_finish_sums() adds into stats in a fixed order: no float
// atomics, so a GPU run is reproducible bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/elementwise.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

static_assert(kStatCorrect == kStatLossSum + 1, "losses write loss and correct as a pair");

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = kThreads / kWarp;
constexpr unsigned kFullMask = 0xffffffffu;

// One warp per row: max and argmax (ties to the lowest index), log-sum-exp, then probs
// and grad. Lane 0 of each warp accumulates its rows' loss and hit count.
__global__ void softmax_cross_entropy_kernel(const float* logits, const int32_t* labels, int n,
                                             int batch, int classes, float* probs, float* grad,
                                             double* partials) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const float inv_n = 1.0f / static_cast<float>(batch);
  double sums[2] = {0.0, 0.0};  // loss, correct
  for (int row = blockIdx.x * kWarpsPerBlock + warp; row < n; row += gridDim.x * kWarpsPerBlock) {
    const size_t offset = static_cast<size_t>(row) * classes;
    const float* z = logits + offset;

    float best = -INFINITY;
    int best_index = classes;  // past the end: loses every tie against a real index
    for (int j = lane; j < classes; j += kWarp) {
      if (z[j] > best || best_index == classes) {
        best = z[j];
        best_index = j;
      }
    }
    for (int delta = kWarp / 2; delta > 0; delta /= 2) {
      const float other = __shfl_xor_sync(kFullMask, best, delta);
      const int other_index = __shfl_xor_sync(kFullMask, best_index, delta);
      if (other > best || (other == best && other_index < best_index)) {
        best = other;
        best_index = other_index;
      }
    }

    float sum = 0.0f;
    for (int j = lane; j < classes; j += kWarp) sum += expf(z[j] - best);
    for (int delta = kWarp / 2; delta > 0; delta /= 2)
      sum += __shfl_xor_sync(kFullMask, sum, delta);

    // A row whose label is out of range contributes no loss and no gradient (but is
    // counted), as on the CPU.
    const int label = labels[row];
    const bool valid = label >= 0 && label < classes;
    if (probs || grad) {
      for (int j = lane; j < classes; j += kWarp) {
        const float p = expf(z[j] - best) / sum;
        if (probs) probs[offset + j] = p;
        if (grad) grad[offset + j] = valid ? (p - (j == label ? 1.0f : 0.0f)) * inv_n : 0.0f;
      }
    }
    if (lane == 0 && valid) {
      sums[0] += logf(sum) - (z[label] - best);
      sums[1] += best_index == label ? 1.0 : 0.0;
    }
  }
  block_sum_to_partials(sums, partials);
}

__global__ void mse_kernel(const float* pred, const float* target, int n, int batch, int features,
                           float* grad, double* partials) {
  const size_t total = static_cast<size_t>(n) * features;
  const float scale = 2.0f / (static_cast<float>(batch) * static_cast<float>(features));
  double sums[1] = {0.0};  // sum over samples of the mean over features
  PLINTH_GRID_STRIDE_LOOP(i, total) {
    const float d = pred[i] - target[i];
    if (grad) grad[i] = scale * d;
    sums[0] += static_cast<double>(d) * d / features;
  }
  block_sum_to_partials(sums, partials);
}

__global__ void bce_kernel(const float* pred, const float* target, int n, int batch, int features,
                           float* grad, double* partials) {
  const size_t total = static_cast<size_t>(n) * features;
  const float scale = 1.0f / (static_cast<float>(batch) * static_cast<float>(features));
  double sums[2] = {0.0, 0.0};  // loss, fraction of matching elements (both per sample)
  PLINTH_GRID_STRIDE_LOOP(i, total) {
    const float p = pred[i], t = target[i];
    float dp = 0.0f;
    const float loss = bce_element(p, t, &dp);
    if (grad) grad[i] = scale * dp;
    sums[0] += static_cast<double>(loss) / features;
    if ((p > 0.5f) == (t > 0.5f)) sums[1] += 1.0 / features;
  }
  block_sum_to_partials(sums, partials);
}

// One thread per row, its classes in order as on the CPU. The counts are whole numbers
// (exact in a float up to 2^24), so their atomic sums do not depend on the order.
__global__ void pseudo_label_kernel(const float* logits, int n, int classes, float threshold,
                                    int32_t* labels, float* counts) {
  PLINTH_GRID_STRIDE_LOOP(i, static_cast<size_t>(n)) {
    const float* z = logits + i * classes;
    int best = 0;  // the first maximum wins ties
    for (int j = 1; j < classes; ++j)
      if (z[j] > z[best]) best = j;
    float sum = 0.0f;
    for (int j = 0; j < classes; ++j) sum += expf(z[j] - z[best]);
    const bool confident = 1.0f / sum >= threshold;
    labels[i] = confident ? best : -1;
    if (confident) atomicAdd(counts + best, 1.0f);
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::pseudo_label(const float* logits, int n, int classes, float threshold,
                               int32_t* labels, float* counts) {
  if (n <= 0 || classes <= 0) return;
  pseudo_label_kernel<<<grid_for(static_cast<size_t>(n)), kThreads, 0, ctx_->stream>>>(
      logits, n, classes, threshold, labels, counts);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::softmax_cross_entropy(const float* logits, const int32_t* labels, int n,
                                        int batch, int classes, float* probs, float* grad,
                                        float* stats) {
  if (n <= 0 || classes <= 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<size_t>(
      (static_cast<size_t>(n) + kWarpsPerBlock - 1) / kWarpsPerBlock, kMaxPartialBlocks));
  softmax_cross_entropy_kernel<<<blocks, kThreads, 0, ctx_->stream>>>(
      logits, labels, n, batch, classes, probs, grad, ctx_->partials);
  PLINTH_CUDA_CHECK_LAUNCH();
  launch_finish_sums(ctx_->stream, ctx_->partials, blocks, 2, stats + kStatLossSum,
                     stats + kStatCount, static_cast<float>(n));
}

void CudaBackend::mse_loss(const float* pred, const float* target, int n, int batch, int features,
                           float* grad, float* stats) {
  if (n <= 0 || features <= 0) return;
  const unsigned blocks = partial_grid_for(static_cast<size_t>(n) * features);
  mse_kernel<<<blocks, kThreads, 0, ctx_->stream>>>(pred, target, n, batch, features, grad,
                                                    ctx_->partials);
  PLINTH_CUDA_CHECK_LAUNCH();
  launch_finish_sums(ctx_->stream, ctx_->partials, blocks, 1, stats + kStatLossSum,
                     stats + kStatCount, static_cast<float>(n));
}

void CudaBackend::bce_loss(const float* pred, const float* target, int n, int batch, int features,
                           float* grad, float* stats) {
  if (n <= 0 || features <= 0) return;
  const unsigned blocks = partial_grid_for(static_cast<size_t>(n) * features);
  bce_kernel<<<blocks, kThreads, 0, ctx_->stream>>>(pred, target, n, batch, features, grad,
                                                    ctx_->partials);
  PLINTH_CUDA_CHECK_LAUNCH();
  launch_finish_sums(ctx_->stream, ctx_->partials, blocks, 2, stats + kStatLossSum,
                     stats + kStatCount, static_cast<float>(n));
}

}  // namespace plinth
