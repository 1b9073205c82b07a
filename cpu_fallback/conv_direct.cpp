#include "cpu_fallback/conv_direct.h"

#include <algorithm>

#include "cpu_fallback/activation.h"

namespace plinth::cpu {
namespace {

// Wide planes are processed in blocks of this many pixels (a 64-byte vector of floats);
// the planes are rounded up to whole blocks, the extra pixels computed and dropped.
constexpr int kLanes = 16;

size_t round_up(size_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// A sample's planes on the wide grid: the padded input [h + 2 pad, width] and the output
// [out_h, width], row-major with the padded row width.
struct WideGrid {
  int h, w, pad, r, s, out_h, out_w, width;
  explicit WideGrid(const ConvShape& c)
      : h(c.h), w(c.w), pad(c.pad), r(c.r), s(c.s), out_h(c.out_h()), out_w(c.out_w()),
        width(c.w + 2 * c.pad) {}
  size_t wide_elems() const { return round_up(static_cast<size_t>(out_h) * width); }
  // Reading tap (r-1, s-1) of the last wide block runs past the padded plane by up to
  // s - 1 + kLanes elements: they are zeros.
  size_t padded_elems() const {
    return round_up(static_cast<size_t>(h + 2 * pad) * width + s - 1 + kLanes);
  }
  size_t tap_offset(int i, int j) const { return static_cast<size_t>(i) * width + j; }
};

template <typename T>
void pad_plane(const WideGrid& g, const T* x, T* padded) {
  std::fill(padded, padded + g.padded_elems(), T(0));
  for (int y = 0; y < g.h; ++y)
    std::copy(x + static_cast<size_t>(y) * g.w, x + static_cast<size_t>(y + 1) * g.w,
              padded + g.tap_offset(y + g.pad, g.pad));
}

// out[k][i] = bias[k] + sum over taps t of w[k][t] * padded[i + offset(t)], for every output
// channel k and wide pixel i, one block of pixels at a time: the block's r * s shifted input
// vectors are loaded once for all channels, and the channels' sums are independent chains
// (one channel's 9 dependent multiply-adds alone would wait on the adder's latency).
// kTaps > 0: an r * s known at compile time, so the tap loops unroll; 0: any kernel.
template <int kTaps, typename T>
void correlate_wide(const WideGrid& g, int channels, const T* padded, const T* w, const T* bias,
                    T* out) {
  const int taps = kTaps > 0 ? kTaps : g.r * g.s;
  const size_t n = g.wide_elems();
  constexpr int kMaxTaps = kTaps > 0 ? kTaps : 49;
  size_t offset[kMaxTaps];
  for (int t = 0; t < taps; ++t) offset[t] = g.tap_offset(t / g.s, t % g.s);
  for (size_t i = 0; i < n; i += kLanes) {
    T shifted[kMaxTaps][kLanes];
    for (int t = 0; t < taps; ++t)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) shifted[t][l] = padded[i + offset[t] + l];
    for (int k = 0; k < channels; ++k) {
      T acc[kLanes];
      const T b = bias ? bias[k] : T(0);
      const T* wk = w + static_cast<size_t>(k) * taps;
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) acc[l] = b;
      for (int t = 0; t < taps; ++t)
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) acc[l] += wk[t] * shifted[t][l];
      T* o = out + k * n + i;
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) o[l] = acc[l];
    }
  }
}

// sum[t] += sum over wide pixels i of d[i] * padded[i + offset(t)], for every tap t. Each
// tap sums kLanes interleaved partial sums (independent chains that vectorise), added
// together at the end in a fixed order.
template <int kTaps, typename T>
void correlate_taps(const WideGrid& g, const T* padded, const T* d, T* sum) {
  const size_t n = g.wide_elems();
  if constexpr (kTaps > 0) {
    size_t offset[kTaps];
    for (int t = 0; t < kTaps; ++t) offset[t] = g.tap_offset(t / g.s, t % g.s);
    T part[kTaps][kLanes] = {};
    for (size_t i = 0; i < n; i += kLanes)
      for (int t = 0; t < kTaps; ++t)
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) part[t][l] += d[i + l] * padded[i + offset[t] + l];
    for (int t = 0; t < kTaps; ++t)
      for (int l = 0; l < kLanes; ++l) sum[t] += part[t][l];
  } else {
    for (int t = 0; t < g.r * g.s; ++t) {
      const T* shifted = padded + g.tap_offset(t / g.s, t % g.s);
      T part[kLanes] = {};
      for (size_t i = 0; i < n; i += kLanes)
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) part[l] += d[i + l] * shifted[i + l];
      for (int l = 0; l < kLanes; ++l) sum[t] += part[l];
    }
  }
}

// Calls f with the tap count as a compile-time constant for the common kernels, 0 otherwise.
template <typename F>
void with_taps(const ConvShape& s, F&& f) {
  if (s.r == 3 && s.s == 3)
    f(std::integral_constant<int, 9>{});
  else if (s.r == 5 && s.s == 5)
    f(std::integral_constant<int, 25>{});
  else
    f(std::integral_constant<int, 0>{});
}

}  // namespace

bool direct_fits(const ConvShape& s) { return s.c == 1 && s.stride == 1 && s.r * s.s <= 49; }

size_t direct_scratch_elems(const ConvShape& s) {
  const WideGrid g(s);
  return g.padded_elems() + std::max<size_t>(1, s.k) * g.wide_elems();
}

template <typename T>
void direct_conv_chunk(const ConvShape& s, const T* x, const T* w, const T* bias, Activation act,
                       int count, T* y, T* scratch) {
  const WideGrid g(s);
  T* padded = scratch;
  T* wide = scratch + g.padded_elems();  // s.k wide planes
  const size_t in = static_cast<size_t>(s.h) * s.w, n = g.wide_elems();
  const size_t pixels = static_cast<size_t>(g.out_h) * g.out_w;
  with_taps(s, [&](auto known_taps) {
    with_activation(act, [&](auto kind) {
      for (int j = 0; j < count; ++j) {
        pad_plane(g, x + j * in, padded);
        correlate_wide<known_taps()>(g, s.k, padded, w, bias, wide);
        for (int k = 0; k < s.k; ++k) {
          T* out = y + (static_cast<size_t>(j) * s.k + k) * pixels;
          const T* plane = wide + k * n;
          for (int row = 0; row < g.out_h; ++row)
            for (int col = 0; col < g.out_w; ++col)
              out[row * g.out_w + col] = activate(kind(), plane[g.tap_offset(row, col)]);
        }
      }
    });
  });
}

template <typename T>
void direct_filter_gradient_chunk(const ConvShape& s, const T* x, const T* dy, int count, T beta,
                                  T* dw, T* scratch) {
  const WideGrid g(s);
  T* padded = scratch;
  T* wide = scratch + g.padded_elems();
  const size_t in = static_cast<size_t>(s.h) * s.w, taps = static_cast<size_t>(s.r) * s.s;
  const size_t pixels = static_cast<size_t>(g.out_h) * g.out_w;
  for (size_t e = 0; e < s.k * taps; ++e) dw[e] = beta == T(0) ? T(0) : beta * dw[e];
  std::fill(wide, wide + g.wide_elems(), T(0));  // the dropped columns stay zero
  with_taps(s, [&](auto known_taps) {
    for (int j = 0; j < count; ++j) {
      pad_plane(g, x + j * in, padded);
      for (int k = 0; k < s.k; ++k) {
        const T* d = dy + (static_cast<size_t>(j) * s.k + k) * pixels;
        for (int row = 0; row < g.out_h; ++row)
          std::copy(d + row * g.out_w, d + (row + 1) * g.out_w, wide + g.tap_offset(row, 0));
        correlate_taps<known_taps()>(g, padded, wide, dw + k * taps);
      }
    }
  });
}

template void direct_conv_chunk<float>(const ConvShape&, const float*, const float*, const float*,
                                       Activation, int, float*, float*);
template void direct_conv_chunk<double>(const ConvShape&, const double*, const double*,
                                        const double*, Activation, int, double*, double*);
template void direct_filter_gradient_chunk<float>(const ConvShape&, const float*, const float*, int,
                                                  float, float*, float*);
template void direct_filter_gradient_chunk<double>(const ConvShape&, const double*, const double*,
                                                   int, double, double*, double*);

}  // namespace plinth::cpu
