// Merging branches: the fused add + activation, and concatenation's strided row copies
// (one cudaMemcpy2DAsync each, which a CUDA graph captures as a copy node).
#include "engine/elementwise.h"
#include "kernels/cuda_backend.h"
#include "kernels/launch.cuh"

namespace plinth {
namespace cuda {
namespace {

// y may alias a or b: each element is read before it is written, by the same thread.
__global__ void add_forward_kernel(const float* a, const float* b, float* y, size_t n,
                                   Activation act) {
  PLINTH_GRID_STRIDE_LOOP(i, n) y[i] = activate(act, a[i] + b[i]);
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::add_forward(const float* a, const float* b, float* y, size_t n, Activation act) {
  if (n == 0) return;
  add_forward_kernel<<<grid_for(n), kThreads, 0, ctx_->stream>>>(a, b, y, n, act);
  PLINTH_CUDA_CHECK_LAUNCH();
}

void CudaBackend::copy_rows(float* dst, size_t dst_stride, const float* src, size_t src_stride,
                            size_t width, size_t rows) {
  if (width == 0 || rows == 0) return;
  PLINTH_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_stride * sizeof(float), src,
                                      src_stride * sizeof(float), width * sizeof(float), rows,
                                      cudaMemcpyDeviceToDevice, ctx_->stream));
}

}  // namespace plinth
