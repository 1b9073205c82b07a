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

__global__ void gather_batch_kernel(const uint8_t* images, const int32_t* labels,
                                    const int32_t* indices, size_t total, int plane_size,
                                    int sample_size, const float* mean, const float* std,
                                    float* out, int32_t* labels_out) {
  PLINTH_GRID_STRIDE_LOOP(i, total) {
    const size_t b = i / sample_size, j = i % sample_size;
    const size_t sample = static_cast<size_t>(indices[b]);
    const int c = static_cast<int>(j / plane_size);
    out[i] = (static_cast<float>(images[sample * sample_size + j]) / 255.0f - mean[c]) / std[c];
    if (j == 0 && labels && labels_out) labels_out[b] = labels[sample];
  }
}

// One thread per output pixel; each derives its sample's transform (a few hashes and a
// sincos), which costs less than a separate launch that would store it.
__global__ void augment_kernel(AugmentSpec spec, const float* in, float* out, size_t total, int c,
                               int h, int w, const int32_t* sample_ids, uint64_t seed) {
  const size_t plane_size = static_cast<size_t>(h) * w;
  PLINTH_GRID_STRIDE_LOOP(i, total) {
    const size_t plane = i / plane_size;
    const int pos = static_cast<int>(i % plane_size);
    const int sample = static_cast<int>(plane / c);
    const InverseAffine t = augment_transform(spec, seed, sample_ids[sample], h, w);
    out[i] = augment_pixel(t, in + plane * plane_size, h, w, pos % w, pos / w);
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::gather_batch(const uint8_t* images, const int32_t* labels, const int32_t* indices,
                               int batch, int channels, int plane_size, const float* mean,
                               const float* std, float* out, int32_t* labels_out) {
  if (batch <= 0 || channels <= 0 || plane_size <= 0) return;
  const int sample_size = channels * plane_size;
  const size_t total = static_cast<size_t>(batch) * sample_size;
  gather_batch_kernel<<<grid_for(total), kThreads, 0, ctx_->stream>>>(
      images, labels, indices, total, plane_size, sample_size, mean, std, out, labels_out);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::augment(const AugmentSpec& spec, const float* in, float* out, int n, int c, int h,
                          int w, const int32_t* sample_ids, uint64_t seed) {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return;
  const size_t total = static_cast<size_t>(n) * c * h * w;
  if (!spec.enabled()) {  // the identity, exactly (as on the CPU)
    PLINTH_CUDA_CHECK(
        cudaMemcpyAsync(out, in, total * sizeof(float), cudaMemcpyDeviceToDevice, ctx_->stream));
    return;
  }
  augment_kernel<<<grid_for(total), kThreads, 0, ctx_->stream>>>(spec, in, out, total, c, h, w,
                                                                 sample_ids, seed);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace plinth
