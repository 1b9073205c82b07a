#include "cpu_fallback/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <type_traits>

#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"

namespace plinth::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
          int ldb, T beta, T* c, int ldc) {
  if (m <= 0 || n <= 0) return;  // BLAS rejects the leading dimensions of empty matrices
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template void gemm<float>(bool, bool, int, int, int, float, const float*, int, const float*, int,
                          float, float*, int);
template void gemm<double>(bool, bool, int, int, int, double, const double*, int, const double*,
                           int, double, double*, int);

}  // namespace plinth::cpu

namespace plinth {

// OpenBLAS's threaded sgemm does not always round as its one-threaded one does (the seed
// CNN's dense layers gave different bits on 1 and 2 threads after one step), so C is cut
// into tiles that depend on the shape alone, each tile is one single-threaded sgemm, and the
// tiles run in parallel: the same bits for any thread count, which also lets the thread
// count change between steps (engine/thread_governor.h).
void CpuBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  constexpr int kTile = 256;
  if (m <= 0 || n <= 0) return;
  const int row_tiles = (m + kTile - 1) / kTile, col_tiles = (n + kTile - 1) / kTile;
  const size_t tile_work = static_cast<size_t>(std::min(m, kTile)) * std::min(n, kTile) * k;
  const cpu::ThreadScope scope(1);
  cpu::parallel_for(threads_, static_cast<size_t>(row_tiles) * col_tiles, tile_work, [&](size_t t) {
    const int i = static_cast<int>(t / col_tiles) * kTile,
              j = static_cast<int>(t % col_tiles) * kTile;
    // Row i of op(A) and column j of op(B), wherever the transposes put them.
    const float* a_tile = trans_a ? a + i : a + static_cast<size_t>(i) * lda;
    const float* b_tile = trans_b ? b + static_cast<size_t>(j) * ldb : b + j;
    cpu::gemm(trans_a, trans_b, std::min(kTile, m - i), std::min(kTile, n - j), k, alpha, a_tile,
              lda, b_tile, ldb, beta, c + static_cast<size_t>(i) * ldc + j, ldc);
  });
}

}  // namespace plinth
