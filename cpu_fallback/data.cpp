#include "cpu_fallback/data.h"

#include <cstring>

#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"
#include "engine/augment_math.h"

namespace plinth::cpu {

template <typename T>
void gather_batch(int threads, const uint8_t* images, const int32_t* labels,
                  const int32_t* all_indices, const int64_t* batch_index, int batch, int channels,
                  int plane_size, const float* mean, const float* std, T* out,
                  int32_t* labels_out) {
  const int32_t* indices = all_indices + (batch_index ? *batch_index * batch : 0);
  const size_t sample_size = static_cast<size_t>(channels) * plane_size;
  parallel_for(threads, batch, sample_size, [&](size_t b) {
    const uint8_t* src = images + static_cast<size_t>(indices[b]) * sample_size;
    T* dst = out + b * sample_size;
    for (int c = 0; c < channels; ++c) {
      const T t_mean = mean[c], t_std = std[c];
      for (size_t i = c * static_cast<size_t>(plane_size); i < (c + 1) * size_t(plane_size); ++i)
        dst[i] = (static_cast<T>(src[i]) / T(255) - t_mean) / t_std;
    }
  });
  if (labels && labels_out)
    for (int b = 0; b < batch; ++b) labels_out[b] = labels[indices[b]];
}

void augment(int threads, const AugmentSpec& spec, const float* in, float* out, int n, int c, int h,
             int w, const int32_t* all_sample_ids, const int64_t* batch_index, uint64_t seed) {
  const int32_t* sample_ids = all_sample_ids + (batch_index ? *batch_index * n : 0);
  const size_t plane = static_cast<size_t>(h) * w;
  if (!spec.enabled()) {
    std::memcpy(out, in, static_cast<size_t>(n) * c * plane * sizeof(float));
    return;
  }
  parallel_for(threads, static_cast<size_t>(n) * c, plane, [&](size_t i) {
    const InverseAffine t = augment_transform(spec, seed, sample_ids[i / c], h, w);
    const float* src = in + i * plane;
    float* dst = out + i * plane;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) dst[y * w + x] = augment_pixel(t, src, h, w, x, y);
  });
}

template void gather_batch<float>(int, const uint8_t*, const int32_t*, const int32_t*,
                                  const int64_t*, int, int, int, const float*, const float*, float*,
                                  int32_t*);
template void gather_batch<double>(int, const uint8_t*, const int32_t*, const int32_t*,
                                   const int64_t*, int, int, int, const float*, const float*,
                                   double*, int32_t*);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::gather_batch(const uint8_t* images, const int32_t* labels, const int32_t* indices,
                              const int64_t* batch_index, int batch, int channels, int plane_size,
                              const float* mean, const float* std, float* out,
                              int32_t* labels_out) {
  cpu::gather_batch(threads_, images, labels, indices, batch_index, batch, channels, plane_size,
                    mean, std, out, labels_out);
}

void CpuBackend::augment(const AugmentSpec& spec, const float* in, float* out, int n, int c, int h,
                         int w, const int32_t* sample_ids, const int64_t* batch_index,
                         uint64_t seed) {
  cpu::augment(threads_, spec, in, out, n, c, h, w, sample_ids, batch_index, seed);
}

}  // namespace plinth
