#include "cpu_fallback/conv_pool_direct.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#else
#include <stdexcept>
#endif

namespace plinth::cpu {

bool conv_pool_direct_fits(const ConvShape& s, const PoolShape& pool, Activation act) {
#if defined(__AVX512F__)
  return s.c == 1 && s.r == 3 && s.s == 3 && s.stride == 1 && s.pad == 0 && s.w <= 32 &&
         pool.size == 2 && pool.stride == 2 && (act == Activation::none || act == Activation::relu);
#else
  (void)s, (void)pool, (void)act;
  return false;
#endif
}

#if defined(__AVX512F__)
namespace {

// One layer's geometry, and the input under one pooled output row as vectors over the pooled
// columns: v[r][m] holds input row 2 oy + r at column 2i + m in lane i, so the window at pooled
// column i, row dy, column dx reads tap (ty, tx) from v[dy + ty][dx + tx]. Lanes past the
// pooled width wrap (never stored, and given no gradient).
struct PooledRows {
  int width, conv_w, oh, ow;
  size_t in_plane, pooled;
  __mmask16 lo, hi, out;
  __m512i column[4];

  PooledRows(const ConvShape& s, const PoolShape& pool)
      : width(s.w),
        conv_w(s.out_w()),
        oh(pool.out_h()),
        ow(pool.out_w()),
        in_plane(static_cast<size_t>(s.h) * s.w),
        pooled(static_cast<size_t>(oh) * ow),
        lo(static_cast<__mmask16>(width >= 16 ? 0xffff : (1u << width) - 1)),
        hi(static_cast<__mmask16>(width <= 16 ? 0 : (1u << (width - 16)) - 1)),
        out(static_cast<__mmask16>((1u << ow) - 1)) {
    const __m512i even =
        _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int m = 0; m < 4; ++m) column[m] = _mm512_add_epi32(even, _mm512_set1_epi32(m));
  }

  // Conv-plane index of the top-left window position of each pooled column in row oy.
  __m512i top_left(int oy) const {
    return _mm512_add_epi32(_mm512_set1_epi32(2 * oy * conv_w), column[0]);
  }
  // Sample j, output channel k, pooled row oy: where its row starts in pool_y and argmax.
  size_t at(int j, int k, int channels, int oy) const {
    return (static_cast<size_t>(j) * channels + k) * pooled + static_cast<size_t>(oy) * ow;
  }

  void load(const float* x, int j, int oy, __m512 (&v)[4][4]) const {
    const float* plane = x + static_cast<size_t>(j) * in_plane;
    for (int r = 0; r < 4; ++r) {
      const float* row = plane + static_cast<size_t>(2 * oy + r) * width;
      const __m512 left = _mm512_maskz_loadu_ps(lo, row),
                   right = _mm512_maskz_loadu_ps(hi, row + 16);
      for (int m = 0; m < 4; ++m) v[r][m] = _mm512_permutex2var_ps(left, column[m], right);
    }
  }
};

}  // namespace

void conv_pool_direct(const ConvShape& s, const PoolShape& pool, const float* x, const float* w,
                      const float* b, Activation act, int first, int count, float* pool_y,
                      int32_t* argmax) {
  const PooledRows rows(s, pool);
  const __m512i one = _mm512_set1_epi32(1), down = _mm512_set1_epi32(rows.conv_w);
  const bool relu = act == Activation::relu;
  const __m512 zero = _mm512_setzero_ps();
  for (int j = first; j < first + count; ++j)
    for (int oy = 0; oy < rows.oh; ++oy) {
      __m512 v[4][4];
      rows.load(x, j, oy, v);
      const __m512i top_left = rows.top_left(oy);
      const __m512i bottom_left = _mm512_add_epi32(top_left, down);
      for (int k = 0; k < s.k; ++k) {
        const float* wk = w + static_cast<size_t>(k) * 9;
        // The window's four outputs, row-major: a b / c d.
        __m512 a = zero, bb = zero, c = zero, d = zero;
        for (int ty = 0; ty < 3; ++ty)
          for (int tx = 0; tx < 3; ++tx) {
            const __m512 tap = _mm512_set1_ps(wk[ty * 3 + tx]);
            a = _mm512_fmadd_ps(tap, v[ty][tx], a);
            bb = _mm512_fmadd_ps(tap, v[ty][tx + 1], bb);
            c = _mm512_fmadd_ps(tap, v[ty + 1][tx], c);
            d = _mm512_fmadd_ps(tap, v[ty + 1][tx + 1], d);
          }
        // bias_activate's order: the bias (0 without one) added, then the activation.
        const __m512 bias = _mm512_set1_ps(b ? b[k] : 0.0f);
        a = _mm512_add_ps(a, bias);
        bb = _mm512_add_ps(bb, bias);
        c = _mm512_add_ps(c, bias);
        d = _mm512_add_ps(d, bias);
        if (relu) {  // x > 0 ? x : 0, a NaN to 0
          a = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, zero, _CMP_GT_OQ), a);
          bb = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(bb, zero, _CMP_GT_OQ), bb);
          c = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(c, zero, _CMP_GT_OQ), c);
          d = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, zero, _CMP_GT_OQ), d);
        }
        // maxpool_plane's first-maximum rule (pool.cpp's max_plane_2x2_narrow).
        const __mmask16 right_top = _mm512_cmp_ps_mask(bb, a, _CMP_GT_OQ);
        const __mmask16 right_bottom = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
        const __m512 best_top = _mm512_mask_blend_ps(right_top, a, bb);
        const __m512 best_bottom = _mm512_mask_blend_ps(right_bottom, c, d);
        const __mmask16 bottom_wins = _mm512_cmp_ps_mask(best_bottom, best_top, _CMP_GT_OQ);
        const __m512i at_top = _mm512_mask_add_epi32(top_left, right_top, top_left, one);
        const __m512i at_bottom =
            _mm512_mask_add_epi32(bottom_left, right_bottom, bottom_left, one);
        const size_t at = rows.at(j, k, s.k, oy);
        _mm512_mask_storeu_ps(pool_y + at, rows.out,
                              _mm512_mask_blend_ps(bottom_wins, best_top, best_bottom));
        _mm512_mask_storeu_epi32(argmax + at, rows.out,
                                 _mm512_mask_blend_epi32(bottom_wins, at_top, at_bottom));
      }
    }
}

size_t conv_pool_direct_lanes(const ConvShape& s) { return static_cast<size_t>(s.k) * 9 * 16; }

void conv_pool_direct_filter_gradient(const ConvShape& s, const PoolShape& pool, const float* x,
                                      const float* dy, const int32_t* argmax, const float* pool_y,
                                      int first, int count, float beta, float* sum, float* lanes) {
  const PooledRows rows(s, pool);
  const __m512i right = _mm512_set1_epi32(1), down = _mm512_set1_epi32(rows.conv_w),
                down_right = _mm512_set1_epi32(rows.conv_w + 1);
  const __m512 zero = _mm512_setzero_ps();
  const __mmask16 out = rows.out;
  for (size_t e = 0; e < conv_pool_direct_lanes(s); e += 16) _mm512_storeu_ps(lanes + e, zero);
  for (int j = first; j < first + count; ++j)
    for (int oy = 0; oy < rows.oh; ++oy) {
      __m512 v[4][4];
      rows.load(x, j, oy, v);
      const __m512i top_left = rows.top_left(oy);
      for (int k = 0; k < s.k; ++k) {
        const size_t at = rows.at(j, k, s.k, oy);
        const __mmask16 live =
            _mm512_mask_cmp_ps_mask(out, _mm512_maskz_loadu_ps(out, pool_y + at), zero, _CMP_GT_OQ);
        const __m512 g = _mm512_maskz_loadu_ps(live, dy + at);
        const __m512i offset =
            _mm512_sub_epi32(_mm512_maskz_loadu_epi32(out, argmax + at), top_left);
        // Each lane's gradient goes to one window position (a b / c d): the input under it.
        const __mmask16 at_b = _mm512_cmpeq_epi32_mask(offset, right),
                        at_c = _mm512_cmpeq_epi32_mask(offset, down),
                        at_d = _mm512_cmpeq_epi32_mask(offset, down_right);
        float* lane = lanes + static_cast<size_t>(k) * 9 * 16;
        for (int ty = 0; ty < 3; ++ty)
          for (int tx = 0; tx < 3; ++tx) {
            __m512 under = _mm512_mask_blend_ps(at_b, v[ty][tx], v[ty][tx + 1]);
            under = _mm512_mask_blend_ps(at_c, under, v[ty + 1][tx]);
            under = _mm512_mask_blend_ps(at_d, under, v[ty + 1][tx + 1]);
            float* tap = lane + (ty * 3 + tx) * 16;
            _mm512_storeu_ps(tap, _mm512_fmadd_ps(g, under, _mm512_loadu_ps(tap)));
          }
      }
    }
  for (size_t e = 0; e < static_cast<size_t>(s.k) * 9; ++e) {
    float total = 0;  // the lanes in order (GCC 12 warns inside _mm512_reduce_add_ps)
    for (int l = 0; l < 16; ++l) total += lanes[16 * e + l];
    sum[e] = beta == 0.0f ? total : beta * sum[e] + total;
  }
}
#else
void conv_pool_direct(const ConvShape&, const PoolShape&, const float*, const float*, const float*,
                      Activation, int, int, float*, int32_t*) {
  throw std::logic_error("conv_pool_direct: built without AVX-512 (conv_pool_direct_fits says no)");
}
size_t conv_pool_direct_lanes(const ConvShape&) { return 0; }
void conv_pool_direct_filter_gradient(const ConvShape&, const PoolShape&, const float*,
                                      const float*, const int32_t*, const float*, int, int, float,
                                      float*, float*) {
  throw std::logic_error(
      "conv_pool_direct_filter_gradient: built without AVX-512 (conv_pool_direct_fits says no)");
}
#endif

}  // namespace plinth::cpu
