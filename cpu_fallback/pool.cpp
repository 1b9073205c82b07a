#include "cpu_fallback/pool.h"

#include "cpu_fallback/bias.h"

#include <algorithm>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/parallel.h"
#include "engine/op_shapes.h"

namespace plinth::cpu {
namespace {

// One plane; kSize > 0 fixes the window size at compile time (the common 2x2), 0 reads it
// from the shape.
template <int kSize, typename T>
void max_plane(const PoolShape& s, const T* x, T* y, int32_t* argmax, int iw) {
  const int size = kSize > 0 ? kSize : s.size;
  const int oh = s.out_h(), ow = s.out_w();
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      const int top = oy * s.stride * s.w + ox * s.stride;
      int best_at = top;
      T best = x[top];
      for (int dy = 0; dy < size; ++dy)
        for (int dx = 0; dx < size; ++dx) {
          const int at = top + dy * s.w + dx;
          if (x[at] > best) {
            best = x[at];
            best_at = at;
          }
        }
      y[oy * ow + ox] = best;
      argmax[oy * ow + ox] = best_at / s.w * iw + best_at % s.w;
    }
}

// One output row of the common 2x2 window with stride 2: the first-maximum rule of
// max_plane (a strict > in row-major window order) in arithmetic rather than branches, so
// that the loop vectorises.
template <typename T>
void max_row_2x2(const T* __restrict top, const T* __restrict bottom, T* __restrict y,
                 int32_t* __restrict argmax, int ow, int32_t first, int32_t w) {
  for (int ox = 0; ox < ow; ++ox) {
    const T a = top[2 * ox], b = top[2 * ox + 1], c = bottom[2 * ox], d = bottom[2 * ox + 1];
    const int32_t right_top = b > a, right_bottom = d > c;
    const T best_top = b > a ? b : a;
    const T best_bottom = d > c ? d : c;
    const int32_t bottom_wins = best_bottom > best_top;
    y[ox] = best_bottom > best_top ? best_bottom : best_top;
    argmax[ox] = first + 2 * ox + right_top + bottom_wins * (w + right_bottom - right_top);
  }
}

#if defined(__AVX512F__)
// max_row_2x2 for float rows of at most 32 inputs (the seed CNN's 26 and 11), a whole output
// row in one register: the same comparisons lane by lane (a strict > that keeps the first of
// equal values and the left one against a NaN), where the compiler's loop handles outputs of
// 13 and 5 with a vector epilogue.
void max_plane_2x2_narrow(const PoolShape& s, const float* x, float* y, int32_t* argmax, int iw) {
  const int oh = s.out_h(), ow = s.out_w(), w = s.w;
  const __mmask16 lo = static_cast<__mmask16>(w >= 16 ? 0xffff : (1u << w) - 1);
  const __mmask16 hi = static_cast<__mmask16>(w <= 16 ? 0 : (1u << (w - 16)) - 1);
  const __mmask16 out = static_cast<__mmask16>((1u << ow) - 1);
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i one = _mm512_set1_epi32(1), odd = _mm512_add_epi32(even, one);
  const __m512i down = _mm512_set1_epi32(iw);
  for (int oy = 0; oy < oh; ++oy) {
    const float* top = x + 2 * oy * w;
    const float* bottom = top + w;
    const __m512 t0 = _mm512_maskz_loadu_ps(lo, top), t1 = _mm512_maskz_loadu_ps(hi, top + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(lo, bottom),
                 b1 = _mm512_maskz_loadu_ps(hi, bottom + 16);
    const __m512 a = _mm512_permutex2var_ps(t0, even, t1), b = _mm512_permutex2var_ps(t0, odd, t1);
    const __m512 c = _mm512_permutex2var_ps(b0, even, b1), d = _mm512_permutex2var_ps(b0, odd, b1);
    const __mmask16 right_top = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
    const __mmask16 right_bottom = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
    const __m512 best_top = _mm512_mask_blend_ps(right_top, a, b);
    const __m512 best_bottom = _mm512_mask_blend_ps(right_bottom, c, d);
    const __mmask16 bottom_wins = _mm512_cmp_ps_mask(best_bottom, best_top, _CMP_GT_OQ);
    const __m512i first = _mm512_add_epi32(_mm512_set1_epi32(2 * oy * iw), even);
    const __m512i at_top = _mm512_mask_add_epi32(first, right_top, first, one);
    const __m512i below = _mm512_add_epi32(first, down);
    const __m512i at_bottom = _mm512_mask_add_epi32(below, right_bottom, below, one);
    _mm512_mask_storeu_ps(y + oy * ow, out,
                          _mm512_mask_blend_ps(bottom_wins, best_top, best_bottom));
    _mm512_mask_storeu_epi32(argmax + oy * ow, out,
                             _mm512_mask_blend_epi32(bottom_wins, at_top, at_bottom));
  }
}
#endif

template <typename T>
void max_plane_2x2(const PoolShape& s, const T* x, T* y, int32_t* argmax, int iw) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (s.w <= 32) return max_plane_2x2_narrow(s, x, y, argmax, iw);
#endif
  const int oh = s.out_h(), ow = s.out_w(), w = s.w;
  for (int oy = 0; oy < oh; ++oy) {
    const T* top = x + 2 * oy * w;
    max_row_2x2(top, top + w, y + oy * ow, argmax + oy * ow, ow, 2 * oy * iw, iw);
  }
}

}  // namespace

template <typename T>
void maxpool_plane(const PoolShape& s, const T* x, T* y, int32_t* argmax, int index_width) {
  if (s.size == 2 && s.stride == 2)
    max_plane_2x2(s, x, y, argmax, index_width);
  else if (s.size == 2)
    max_plane<2>(s, x, y, argmax, index_width);
  else
    max_plane<0>(s, x, y, argmax, index_width);
}

template <typename T>
void maxpool_forward(int threads, const PoolShape& s, const T* x, T* y, int32_t* argmax) {
  const size_t in_plane = static_cast<size_t>(s.h) * s.w;
  const size_t out_plane = static_cast<size_t>(s.out_h()) * s.out_w();
  parallel_for(threads, static_cast<size_t>(s.n) * s.c, in_plane, [&](size_t i) {
    const T* xi = x + i * in_plane;
    T* yi = y + i * out_plane;
    maxpool_plane(s, xi, yi, argmax + i * out_plane, s.w);
  });
}

template <typename T>
void maxpool_backward(int threads, const PoolShape& s, const T* dy, const int32_t* argmax, T* dx) {
  const size_t in_plane = static_cast<size_t>(s.h) * s.w;
  const size_t out_plane = static_cast<size_t>(s.out_h()) * s.out_w();
  parallel_for(threads, static_cast<size_t>(s.n) * s.c, in_plane, [&](size_t i) {
    T* dxi = dx + i * in_plane;
    const T* dyi = dy + i * out_plane;
    const int32_t* ai = argmax + i * out_plane;
    std::fill(dxi, dxi + in_plane, T(0));
    for (size_t o = 0; o < out_plane; ++o) dxi[ai[o]] += dyi[o];
  });
}

// Every output that chose an input position has that position's value as its maximum, so
// (y > 0) is the same for all of them: selecting before the scatter-add gives the bits of
// selecting after it, as bias_activation_backward does. The bias sum is bias.cpp's, in its
// order.
template <typename T>
void maxpool_relu_backward(int threads, const PoolShape& s, const T* dy, const int32_t* argmax,
                           const T* y, T* dx, T* db) {
  const size_t in_plane = static_cast<size_t>(s.h) * s.w;
  const size_t out_plane = static_cast<size_t>(s.out_h()) * s.out_w();
  parallel_for(threads, static_cast<size_t>(s.n) * s.c, in_plane, [&](size_t i) {
    T* dxi = dx + i * in_plane;
    const T* dyi = dy + i * out_plane;
    const T* yi = y + i * out_plane;
    const int32_t* ai = argmax + i * out_plane;
    std::fill(dxi, dxi + in_plane, T(0));
    for (size_t o = 0; o < out_plane; ++o) dxi[ai[o]] += yi[o] > T(0) ? dyi[o] : T(0);
  });
  if (db) bias_backward(threads, dx, db, s.n, s.c, s.h * s.w);
}

template void maxpool_plane<float>(const PoolShape&, const float*, float*, int32_t*, int);
template void maxpool_plane<double>(const PoolShape&, const double*, double*, int32_t*, int);
template void maxpool_forward<float>(int, const PoolShape&, const float*, float*, int32_t*);
template void maxpool_forward<double>(int, const PoolShape&, const double*, double*, int32_t*);
template void maxpool_backward<float>(int, const PoolShape&, const float*, const int32_t*, float*);
template void maxpool_backward<double>(int, const PoolShape&, const double*, const int32_t*,
                                       double*);
template void maxpool_relu_backward<float>(int, const PoolShape&, const float*, const int32_t*,
                                           const float*, float*, float*);
template void maxpool_relu_backward<double>(int, const PoolShape&, const double*, const int32_t*,
                                            const double*, double*, double*);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::maxpool_forward(const PoolShape& shape, const float* x, float* y,
                                 int32_t* argmax) {
  check_pool_shape(shape, "maxpool_forward");
  cpu::maxpool_forward(threads_, shape, x, y, argmax);
}

void CpuBackend::maxpool_backward(const PoolShape& shape, const float* dy, const int32_t* argmax,
                                  float* dx) {
  check_pool_shape(shape, "maxpool_backward");
  cpu::maxpool_backward(threads_, shape, dy, argmax, dx);
}

void CpuBackend::maxpool_relu_backward(const PoolShape& shape, const float* dy,
                                       const int32_t* argmax, const float* y, float* dx,
                                       float* db) {
  check_pool_shape(shape, "maxpool_relu_backward");
  cpu::maxpool_relu_backward(threads_, shape, dy, argmax, y, dx, db);
}

}  // namespace plinth
