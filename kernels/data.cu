// Batch assembly on the device: gather uint8 samples into a normalised float batch, and
// the random affine augmentation. The per-pixel math is augment_math.h, shared with the
// CPU backend, so both draw the same transform for a (seed, sample id).
#include "engine/augment_math.h"
#include "kernels/cuda_backend.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

template <typename Index>
__global__ void gather_batch_kernel(const uint8_t* images, const int32_t* labels,
                                    const int32_t* all_indices, const int64_t* batch_index,
                                    int batch, size_t total, int plane_size, int sample_size,
                                    const float* mean, const float* std, float* out,
                                    int32_t* labels_out) {
  const Index plane = static_cast<Index>(plane_size), size = static_cast<Index>(sample_size);
  const int32_t* indices = all_indices + (batch_index ? *batch_index * batch : 0);
  PLINTH_INDEX_LOOP(Index, i, total) {
    const Index b = i / size, j = i - b * size;
    const size_t sample = static_cast<size_t>(indices[b]);
    const int c = static_cast<int>(j / plane);
    out[i] = (static_cast<float>(images[sample * sample_size + j]) / 255.0f - mean[c]) / std[c];
    if (j == 0 && labels && labels_out) labels_out[b] = labels[sample];
  }
}

// One thread per output pixel; each derives its sample's transform (a few hashes and a
// sincos), which costs less than a separate launch that would store it.
template <typename Index>
__global__ void augment_kernel(AugmentSpec spec, const float* in, float* out, size_t total, int n,
                               int c, int h, int w, const int32_t* all_sample_ids,
                               const int64_t* batch_index, uint64_t seed) {
  const int32_t* sample_ids = all_sample_ids + (batch_index ? *batch_index * n : 0);
  const Index plane_size = static_cast<Index>(h) * w;
  PLINTH_INDEX_LOOP(Index, i, total) {
    const Index plane = i / plane_size;
    const int pos = static_cast<int>(i - plane * plane_size);
    const int sample = static_cast<int>(plane / static_cast<Index>(c));
    const InverseAffine t = augment_transform(spec, seed, sample_ids[sample], h, w);
    const int y = pos / w;
    out[i] = augment_pixel(t, in + static_cast<size_t>(plane) * plane_size, h, w, pos - y * w, y);
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::gather_batch(const uint8_t* images, const int32_t* labels, const int32_t* indices,
                               const int64_t* batch_index, int batch, int channels, int plane_size,
                               const float* mean, const float* std, float* out,
                               int32_t* labels_out) {
  if (batch <= 0 || channels <= 0 || plane_size <= 0) return;
  const int sample_size = channels * plane_size;
  const size_t total = static_cast<size_t>(batch) * sample_size;
  PLINTH_LAUNCH_INDEXED(gather_batch_kernel, total, ctx_->stream, images, labels, indices,
                        batch_index, batch, total, plane_size, sample_size, mean, std, out,
                        labels_out);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::augment(const AugmentSpec& spec, const float* in, float* out, int n, int c, int h,
                          int w, const int32_t* sample_ids, const int64_t* batch_index,
                          uint64_t seed) {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return;
  const size_t total = static_cast<size_t>(n) * c * h * w;
  if (!spec.enabled()) {  // the identity, exactly (as on the CPU)
    PLINTH_CUDA_CHECK(
        cudaMemcpyAsync(out, in, total * sizeof(float), cudaMemcpyDeviceToDevice, ctx_->stream));
    return;
  }
  PLINTH_LAUNCH_INDEXED(augment_kernel, total, ctx_->stream, spec, in, out, total, n, c, h, w,
                        sample_ids, batch_index, seed);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace plinth
