// Every cuBLAS call of plinth lives behind this adapter: one handle bound to the
// backend's stream, a fixed workspace (so cuBLAS never allocates during an op or a graph
// capture), and the row-major GEMM of the op interface on fp32 matrices, whose products
// are computed in the backend's precision (fp32, TF32 or BF16 tensor cores).
#pragma once

#include <string>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "engine/backend.h"
#include "kernels/cuda_check.h"

// Checks a cuBLAS call; the error names the status (CUBLAS_STATUS_...) and its meaning.
#define PLINTH_CUBLAS_CHECK(call)                                               \
  do {                                                                          \
    const cublasStatus_t plinth_cublas_status_ = (call);                        \
    if (plinth_cublas_status_ != CUBLAS_STATUS_SUCCESS)                         \
      ::plinth::cublas_error(#call, __FILE__, __LINE__, plinth_cublas_status_); \
  } while (0)

namespace plinth {

[[noreturn]] void cublas_error(const char* call, const char* file, int line, cublasStatus_t status);

// "13.1.0": the cuBLAS headers plinth was compiled with.
std::string cublas_build_version();

class CublasGemm {
 public:
  // workspace (workspace_bytes) must outlive this object.
  CublasGemm(cudaStream_t stream, Precision precision, void* workspace, size_t workspace_bytes);
  ~CublasGemm();
  CublasGemm(const CublasGemm&) = delete;
  CublasGemm& operator=(const CublasGemm&) = delete;

  // Row-major C[m, n] = alpha * op(A) * op(B) + beta * C, as Backend::gemm.
  void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc);

 private:
  cublasHandle_t handle_ = nullptr;
  cublasComputeType_t compute_ = CUBLAS_COMPUTE_32F;
};

}  // namespace plinth
