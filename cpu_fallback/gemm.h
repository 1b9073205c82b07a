// Row-major GEMM on OpenBLAS: C[m, n] = alpha * op(A) * op(B) + beta * C.
#pragma once

namespace plinth::cpu {

// Uses OpenBLAS's threads when called outside a parallel region (under a ThreadScope),
// and one thread inside one. Its callers keep it at one thread (CpuBackend::gemm tiles C and
// runs the tiles in parallel): OpenBLAS's threaded sgemm rounds differently.
template <typename T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
          int ldb, T beta, T* c, int ldc);

}  // namespace plinth::cpu
