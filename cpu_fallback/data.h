// Batch assembly from a resident uint8 data set, and random affine augmentation.
#pragma once

#include <cstdint>

#include "engine/backend.h"

namespace plinth::cpu {

// out[b, c, p] = (images[i, c, p] / 255 - mean[c]) / std[c] and labels_out[b] = labels[i]
// for b < batch, i = indices[*batch_index * batch + b] (labels/labels_out may be null,
// batch_index null for 0).
template <typename T>
void gather_batch(int threads, const uint8_t* images, const int32_t* labels, const int32_t* indices,
                  const int64_t* batch_index, int batch, int channels, int plane_size,
                  const float* mean, const float* std, T* out, int32_t* labels_out);

// out = augmentation of in, both [n, c, h, w]. Float only: the per-pixel math
// (engine/augment_math.h) is float so that the CPU and CUDA backends agree.
void augment(int threads, const AugmentSpec& spec, const float* in, float* out, int n, int c, int h,
             int w, const int32_t* sample_ids, const int64_t* batch_index, uint64_t seed);

}  // namespace plinth::cpu
