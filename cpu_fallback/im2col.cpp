#include "cpu_fallback/im2col.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace plinth::cpu {
namespace {

// Output columns [lo, hi) whose input column ox*stride - pad + tap lies inside [0, w).
struct ValidRange {
  int lo, hi;
};

ValidRange valid_outputs(int tap, int pad, int stride, int in, int out) {
  const int offset = tap - pad;  // input index of output 0
  int lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int hi = in - offset <= 0 ? 0 : (in - offset + stride - 1) / stride;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
  return {lo, hi};
}

// Stride 1 without padding (Keras 'valid', the seed CNN): every tap reads whole rows, each in
// one masked AVX-512 move where it has at most 16 values (the seed CNN's 11 and 3).
template <typename T>
void im2col_valid(const ConvShape& s, const T* x, int count, T* col, int oh, int ow) {
  const int p = oh * ow;
  const size_t ld = static_cast<size_t>(count) * p;
#if defined(__AVX512F__)
  const __mmask16 row = static_cast<__mmask16>(ow >= 16 ? 0xffff : (1u << ow) - 1);
  const bool narrow = std::is_same_v<T, float> && ow <= 16;
#endif
  for (int j = 0; j < count; ++j)
    for (int c = 0; c < s.c; ++c) {
      const T* plane = x + (static_cast<size_t>(j) * s.c + c) * s.h * s.w;
      T* dst = col + static_cast<size_t>(c) * s.r * s.s * ld + static_cast<size_t>(j) * p;
      for (int r = 0; r < s.r; ++r)
        for (int t = 0; t < s.s; ++t, dst += ld) {
#if defined(__AVX512F__)
          if constexpr (std::is_same_v<T, float>)
            if (narrow) {
              for (int oy = 0; oy < oh; ++oy)
                _mm512_mask_storeu_ps(dst + oy * ow, row,
                                      _mm512_maskz_loadu_ps(row, plane + (oy + r) * s.w + t));
              continue;
            }
#endif
          for (int oy = 0; oy < oh; ++oy) copy_row(plane + (oy + r) * s.w + t, ow, dst + oy * ow);
        }
    }
}

template <typename T>
void col2im_valid(const ConvShape& s, const T* col, int count, T* dx, int oh, int ow) {
  const int p = oh * ow;
  const size_t ld = static_cast<size_t>(count) * p;
  for (int j = 0; j < count; ++j)
    for (int c = 0; c < s.c; ++c) {
      T* plane = dx + (static_cast<size_t>(j) * s.c + c) * s.h * s.w;
      const T* src = col + static_cast<size_t>(c) * s.r * s.s * ld + static_cast<size_t>(j) * p;
      for (int r = 0; r < s.r; ++r)
        for (int t = 0; t < s.s; ++t, src += ld)
          for (int oy = 0; oy < oh; ++oy) {
            T* __restrict out = plane + (oy + r) * s.w + t;
            const T* __restrict in = src + oy * ow;
            for (int ox = 0; ox < ow; ++ox) out[ox] += in[ox];
          }
    }
}

#if defined(__AVX512F__)
// col2im_valid for float planes at most 16 wide (the seed CNN's 13 and 5): each dx row is
// its taps' shifted column rows summed in one register, in col2im_valid's (r, t) order, and
// stored once, where col2im_valid adds each tap into memory in rows of 11 and 3.
void col2im_valid_narrow(const ConvShape& s, const float* col, int count, float* dx, int oh,
                         int ow) {
  const int p = oh * ow;
  const size_t ld = static_cast<size_t>(count) * p;
  const __mmask16 row = static_cast<__mmask16>((1u << s.w) - 1);
  const __mmask16 taps = static_cast<__mmask16>((1u << ow) - 1);
  for (int j = 0; j < count; ++j)
    for (int c = 0; c < s.c; ++c) {
      float* plane = dx + (static_cast<size_t>(j) * s.c + c) * s.h * s.w;
      const float* src = col + static_cast<size_t>(c) * s.r * s.s * ld + static_cast<size_t>(j) * p;
      for (int y = 0; y < s.h; ++y) {
        __m512 sum = _mm512_setzero_ps();
        for (int r = std::max(0, y - oh + 1); r <= std::min(s.r - 1, y); ++r)
          for (int t = 0; t < s.s; ++t) {
            // Lanes t .. t + ow - 1 of the row: the load starts t floats early, masked off.
            const float* in = src + (r * s.s + t) * ld + (y - r) * ow;
            sum = _mm512_add_ps(
                sum, _mm512_maskz_loadu_ps(static_cast<__mmask16>(taps << t),
                                           reinterpret_cast<const char*>(in) - t * sizeof(float)));
          }
        _mm512_mask_storeu_ps(plane + y * s.w, row, sum);
      }
    }
}
#endif

}  // namespace

template <typename T>
void im2col(const ConvShape& s, const T* x, int count, T* col) {
  const int oh = s.out_h(), ow = s.out_w(), p = oh * ow;
  if (s.stride == 1 && s.pad == 0) return im2col_valid(s, x, count, col, oh, ow);
  const size_t ld = static_cast<size_t>(count) * p;
  for (int j = 0; j < count; ++j) {
    for (int c = 0; c < s.c; ++c) {
      const T* plane = x + (static_cast<size_t>(j) * s.c + c) * s.h * s.w;
      for (int r = 0; r < s.r; ++r) {
        const ValidRange rows = valid_outputs(r, s.pad, s.stride, s.h, oh);
        for (int t = 0; t < s.s; ++t) {
          const ValidRange cols = valid_outputs(t, s.pad, s.stride, s.w, ow);
          T* dst = col + ((static_cast<size_t>(c) * s.r + r) * s.s + t) * ld +
                   static_cast<size_t>(j) * p;
          std::fill(dst, dst + rows.lo * ow, T(0));
          for (int oy = rows.lo; oy < rows.hi; ++oy) {
            T* out = dst + oy * ow;
            const T* in = plane + (oy * s.stride - s.pad + r) * s.w;
            const int shift = t - s.pad;  // input column of output column 0
            std::fill(out, out + cols.lo, T(0));
            // Stride 1 is a contiguous copy the compiler vectorises.
            if (s.stride == 1) {
              for (int ox = cols.lo; ox < cols.hi; ++ox) out[ox] = in[ox + shift];
            } else {
              for (int ox = cols.lo; ox < cols.hi; ++ox) out[ox] = in[ox * s.stride + shift];
            }
            std::fill(out + cols.hi, out + ow, T(0));
          }
          std::fill(dst + rows.hi * ow, dst + p, T(0));
        }
      }
    }
  }
}

template <typename T>
void col2im(const ConvShape& s, const T* col, int count, T* dx) {
  const int oh = s.out_h(), ow = s.out_w(), p = oh * ow;
  const size_t ld = static_cast<size_t>(count) * p;
  if (s.stride == 1 && s.pad == 0) return col2im_top_left(s, col, count, dx, oh, ow);
  std::fill(dx, dx + static_cast<size_t>(count) * s.c * s.h * s.w, T(0));
  for (int j = 0; j < count; ++j) {
    for (int c = 0; c < s.c; ++c) {
      T* plane = dx + (static_cast<size_t>(j) * s.c + c) * s.h * s.w;
      for (int r = 0; r < s.r; ++r) {
        const ValidRange rows = valid_outputs(r, s.pad, s.stride, s.h, oh);
        for (int t = 0; t < s.s; ++t) {
          const ValidRange cols = valid_outputs(t, s.pad, s.stride, s.w, ow);
          const T* src = col + ((static_cast<size_t>(c) * s.r + r) * s.s + t) * ld +
                         static_cast<size_t>(j) * p;
          for (int oy = rows.lo; oy < rows.hi; ++oy) {
            const T* in = src + oy * ow;
            T* out = plane + (oy * s.stride - s.pad + r) * s.w;
            const int shift = t - s.pad;
            for (int ox = cols.lo; ox < cols.hi; ++ox) out[ox * s.stride + shift] += in[ox];
          }
        }
      }
    }
  }
}

template <typename T>
void im2col_top_left(const ConvShape& s, const T* x, int count, T* col, int oh, int ow) {
  im2col_valid(s, x, count, col, oh, ow);
}

template <typename T>
void col2im_top_left(const ConvShape& s, const T* col, int count, T* dx, int oh, int ow) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (s.w <= 16) return col2im_valid_narrow(s, col, count, dx, oh, ow);
#endif
  std::fill(dx, dx + static_cast<size_t>(count) * s.c * s.h * s.w, T(0));
  col2im_valid(s, col, count, dx, oh, ow);
}

template void im2col<float>(const ConvShape&, const float*, int, float*);
template void im2col<double>(const ConvShape&, const double*, int, double*);
template void col2im<float>(const ConvShape&, const float*, int, float*);
template void col2im<double>(const ConvShape&, const double*, int, double*);
template void im2col_top_left<float>(const ConvShape&, const float*, int, float*, int, int);
template void im2col_top_left<double>(const ConvShape&, const double*, int, double*, int, int);
template void col2im_top_left<float>(const ConvShape&, const float*, int, float*, int, int);
template void col2im_top_left<double>(const ConvShape&, const double*, int, double*, int, int);

}  // namespace plinth::cpu
