#include "kernels/cublas_adapter.h"

#include <fmt/format.h>

#include "engine/error.h"

namespace plinth {

void cublas_error(const char* call, const char* file, int line, cublasStatus_t status) {
  const std::string message =
      fmt::format("{} ({})", cublasGetStatusName(status), cublasGetStatusString(status));
  cuda::library_error("cuBLAS", call, file, line, message.c_str());
}

std::string cublas_build_version() {
  return fmt::format("{}.{}.{}", CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH);
}

// fp32 storage throughout; the compute type says how the products are taken. Plain
// CUBLAS_COMPUTE_32F never trades fp32 precision away.
CublasGemm::CublasGemm(cudaStream_t stream, Precision precision, void* workspace,
                       size_t workspace_bytes)
    : compute_(precision == Precision::tf32   ? CUBLAS_COMPUTE_32F_FAST_TF32
               : precision == Precision::bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                              : CUBLAS_COMPUTE_32F) {
  PLINTH_CUBLAS_CHECK(cublasCreate(&handle_));
  try {
    PLINTH_CUBLAS_CHECK(cublasSetStream(handle_, stream));
    PLINTH_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace, workspace_bytes));
    PLINTH_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
  } catch (...) {
    cublasDestroy(handle_);
    throw;
  }
}

CublasGemm::~CublasGemm() {
  if (handle_) cublasDestroy(handle_);
}

// cuBLAS is column-major, and a row-major matrix read as column-major is its transpose.
// So row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands
// (and m with n), keep each operand's own transpose flag and leading dimension.
void CublasGemm::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  PLINTH_CUBLAS_CHECK(cublasGemmEx(handle_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b,
                                   CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc,
                                   compute_, CUBLAS_GEMM_DEFAULT));
  cuda::check_launch("cublasGemmEx", __FILE__, __LINE__);
}

}  // namespace plinth
