// Per-channel bias: the fused bias + activation that follows cuDNN's convolution and the
// dense layers' GEMM, and the bias gradient, alone or fused with the activation's
// backward. The per-element math is elementwise.h, shared with the CPU backend.
#include "engine/elementwise.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

template <typename Index>
__global__ void bias_activation_kernel(float* y, const float* b, size_t total, int c, int spatial,
                                       Activation act) {
  const Index channels = static_cast<Index>(c), plane = static_cast<Index>(spatial);
  PLINTH_INDEX_LOOP(Index, i, total) {
    const float bias = b ? b[(i / plane) % channels] : 0.0f;
    y[i] = activate(act, y[i] + bias);
  }
}

// What bias_backward_kernel sums per channel: dy (the bias gradient); act'(y) * dy, also
// written to dx (the backward of bias_activation_forward; dx may alias dy: each element
// is read before it is written, by the same thread); or dy where y > 0 (the ReLU-masked
// sum that maxpool_relu_backward takes over a pool's output).
enum class BiasPass { sum, activation_backward, relu_masked_sum };

// db[c] = the sum over n and spatial of what kPass says.
//
// A channel's n * spatial values are split into `chunks` runs, one block each (block
// b = channel * chunks + chunk), so that a few channels with many values still fill the
// GPU (conv1 at batch 4096: 32 channels of 2.8 million values). Each block's sum goes to
// partials[block], or straight to db when chunks == 1. A thread divides once to find
// where it starts; from there it steps by whole samples and positions, with no division
// per element.
template <BiasPass kPass>
__global__ void bias_backward_kernel(Activation act, const float* y, const float* dy, float* dx,
                                     int n, int c, int spatial, int chunks, float* db,
                                     double* partials) {
  const int channel = static_cast<int>(blockIdx.x) / chunks;
  const int chunk = static_cast<int>(blockIdx.x) % chunks;
  const uint64_t count = static_cast<uint64_t>(n) * spatial;
  const uint64_t per_chunk = (count + chunks - 1) / chunks;
  const uint64_t first = chunk * per_chunk;
  const uint64_t end = first + per_chunk < count ? first + per_chunk : count;
  uint64_t j = first + threadIdx.x;
  uint64_t sample = j / spatial;
  int pos = static_cast<int>(j - sample * spatial);
  const int step_samples = kThreads / spatial, step_pos = kThreads % spatial;
  double sum[1] = {0.0};
  for (; j < end; j += kThreads) {
    const uint64_t at = (sample * c + channel) * spatial + pos;
    float g = dy[at];
    if (kPass == BiasPass::activation_backward) {
      g = activation_grad(act, y[at], g);
      dx[at] = g;
    } else if (kPass == BiasPass::relu_masked_sum) {
      g = y[at] > 0.0f ? g : 0.0f;
    }
    sum[0] += g;
    sample += step_samples;
    pos += step_pos;
    if (pos >= spatial) {
      pos -= spatial;
      ++sample;
    }
  }
  block_sum(sum);
  if (threadIdx.x != 0) return;
  if (chunks == 1)
    db[channel] = static_cast<float>(sum[0]);
  else
    partials[blockIdx.x] = sum[0];
}

// db[channel] = the sum of its chunks' partial sums, in chunk order.
__global__ void bias_finish_kernel(const double* partials, int c, int chunks, float* db) {
  const int channel = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (channel >= c) return;
  double sum = 0.0;
  for (int k = 0; k < chunks; ++k) sum += partials[channel * chunks + k];
  db[channel] = static_cast<float>(sum);
}

// Chunks per channel: enough blocks to fill the GPU (about 2048 in all), none shorter than
// 4096 values, and c * chunks within the partials buffer.
int chunks_per_channel(int n, int c, int spatial) {
  constexpr uint64_t kMinValuesPerChunk = 4096;
  const uint64_t count = static_cast<uint64_t>(n) * spatial;
  const uint64_t by_size = (count + kMinValuesPerChunk - 1) / kMinValuesPerChunk;
  const uint64_t by_buffer = static_cast<uint64_t>(kMaxPartialBlocks) * kMaxPartialValues / c;
  const uint64_t chunks = by_size < by_buffer ? by_size : by_buffer;
  return chunks < 1 ? 1 : static_cast<int>(chunks);
}

template <BiasPass kPass>
void launch_bias_backward(cudaStream_t stream, double* partials, Activation act, const float* y,
                          const float* dy, float* dx, float* db, int n, int c, int spatial) {
  if (c <= 0) return;
  // With no values the gradient is zero; the kernel writes it (its loop is empty).
  if (n <= 0 || spatial <= 0) n = 0, spatial = 1;
  const int chunks = chunks_per_channel(n, c, spatial);
  const unsigned blocks = static_cast<unsigned>(c) * static_cast<unsigned>(chunks);
  bias_backward_kernel<kPass>
      <<<blocks, kThreads, 0, stream>>>(act, y, dy, dx, n, c, spatial, chunks, db, partials);
  PLINTH_CUDA_CHECK_LAUNCH();
  if (chunks == 1) return;
  bias_finish_kernel<<<grid_for(c), kThreads, 0, stream>>>(partials, c, chunks, db);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_relu_masked_channel_sum(cudaStream_t stream, double* partials, const float* g,
                                    const float* y, float* db, int n, int c, int spatial) {
  launch_bias_backward<BiasPass::relu_masked_sum>(stream, partials, Activation::relu, y, g, nullptr,
                                                  db, n, c, spatial);
}

void launch_bias_activation(cudaStream_t stream, float* y, const float* b, int n, int c,
                            int spatial, Activation act) {
  const size_t total = static_cast<size_t>(n) * c * spatial;
  if (total == 0) return;
  PLINTH_LAUNCH_INDEXED(bias_activation_kernel, total, stream, y, b, total, c, spatial, act);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda

using namespace cuda;

void CudaBackend::bias_activation_forward(float* y, const float* b, int n, int c, int spatial,
                                          Activation act) {
  launch_bias_activation(ctx_->stream, y, b, n, c, spatial, act);
}

void CudaBackend::bias_backward(const float* dy, float* db, int n, int c, int spatial) {
  launch_bias_backward<BiasPass::sum>(ctx_->stream, ctx_->partials, Activation::none, nullptr, dy,
                                      nullptr, db, n, c, spatial);
}

void CudaBackend::bias_activation_backward(Activation act, const float* y, const float* dy,
                                           float* dx, float* db, int n, int c, int spatial) {
  launch_bias_backward<BiasPass::activation_backward>(ctx_->stream, ctx_->partials, act, y, dy, dx,
                                                      db, n, c, spatial);
}

}  // namespace plinth
