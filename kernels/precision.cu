// Conversions between fp32 tensors and the bfloat16 copies that bf16 convolutions read and
// write inside a call (Precision::bf16): the op interface stays fp32 throughout.
#include <cuda_bf16.h>

#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

__global__ void to_bf16_kernel(const float* in, __nv_bfloat16* out, size_t n) {
  PLINTH_GRID_STRIDE_LOOP(i, n) out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void from_bf16_kernel(const __nv_bfloat16* in, float* out, size_t n) {
  PLINTH_GRID_STRIDE_LOOP(i, n) out[i] = __bfloat162float(in[i]);
}

}  // namespace

void launch_to_bf16(cudaStream_t stream, const float* in, void* out, size_t n) {
  if (n == 0) return;
  to_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, static_cast<__nv_bfloat16*>(out), n);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void launch_from_bf16(cudaStream_t stream, const void* in, float* out, size_t n) {
  if (n == 0) return;
  from_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(in), out,
                                                         n);
  PLINTH_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace plinth
