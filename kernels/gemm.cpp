// CudaBackend's GEMM: cuBLAS, through its adapter (kernels/cublas_adapter.*).
#include "kernels/cublas_adapter.h"
#include "kernels/cuda_backend.h"
#include "kernels/cuda_context.h"

namespace plinth {

void CudaBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                       int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  ctx_->blas->gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace plinth
