#include "cpu_fallback/winograd.h"

#include <algorithm>

#include "cpu_fallback/activation.h"
#include "cpu_fallback/gemm.h"

namespace plinth::cpu {
namespace {

constexpr int kTile = 4;  // input tile side; output tiles are 2x2

// A plane copied into a zero border wide enough that every 4x4 tile of the grid lies
// inside it: the tile loops then read without bounds checks. Returns the copy's row length.
template <typename T>
int pad_plane(const T* plane, int h, int w, int pad, int tiles_h, int tiles_w, T* padded) {
  const int ph = 2 * tiles_h + 2, pw = 2 * tiles_w + 2;
  std::fill(padded, padded + ph * pw, T(0));
  for (int y = std::max(0, -pad); y < ph && y - pad < h; ++y) {
    if (y - pad < 0) continue;
    const int x0 = std::max(0, pad), n = std::min(w, pw - pad);
    std::copy(plane + (y - pad) * w, plane + (y - pad) * w + n, padded + y * pw + x0);
  }
  return pw;
}

// v[e * ld] = (B^T d B)[e], B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
template <typename T>
void transform_input(const T (&d)[kTile][kTile], T* v, size_t ld) {
  T t[kTile][kTile];
  for (int j = 0; j < kTile; ++j) {
    t[0][j] = d[0][j] - d[2][j];
    t[1][j] = d[1][j] + d[2][j];
    t[2][j] = d[2][j] - d[1][j];
    t[3][j] = d[1][j] - d[3][j];
  }
  for (int i = 0; i < kTile; ++i) {
    T* row = v + static_cast<size_t>(i) * kTile * ld;
    row[0] = t[i][0] - t[i][2];
    row[ld] = t[i][1] + t[i][2];
    row[2 * ld] = t[i][2] - t[i][1];
    row[3 * ld] = t[i][1] - t[i][3];
  }
}

// v[e][c][j * tiles + t] for every tile t of every sample j of the chunk.
template <typename T>
void input_tiles(const WinogradGrid& g, int channels, const T* x, int count, T* v, T* padded) {
  const int th = g.tiles_h(), tw = g.tiles_w(), tiles = th * tw;
  const size_t row = static_cast<size_t>(count) * tiles, ld = winograd_stride(row * channels);
  for (int j = 0; j < count; ++j)
    for (int c = 0; c < channels; ++c) {
      const T* plane = x + (static_cast<size_t>(j) * channels + c) * g.in_h * g.in_w;
      const int pw = pad_plane(plane, g.in_h, g.in_w, g.pad, th, tw, padded);
      T* dst = v + c * row + static_cast<size_t>(j) * tiles;
      for (int ty = 0; ty < th; ++ty)
        for (int tx = 0; tx < tw; ++tx) {
          const T* corner = padded + 2 * ty * pw + 2 * tx;
          T d[kTile][kTile];
          for (int i = 0; i < kTile; ++i)
            for (int l = 0; l < kTile; ++l) d[i][l] = corner[i * pw + l];
          transform_input(d, dst + ty * tw + tx, ld);
        }
    }
}

// y planes = act(A^T m A + bias), A^T = [1 1 1 0; 0 1 -1 -1]: every tile into a plane of
// whole tiles, then the output plane's part of it with the bias and activation.
template <typename T, typename Kind>
void output_tiles(Kind kind, const WinogradGrid& g, int channels, const T* m, int count,
                  const T* bias, T* y, T* whole) {
  const int th = g.tiles_h(), tw = g.tiles_w(), tiles = th * tw, ww = 2 * tw;
  const int oh = g.out_h, ow = g.out_w;
  const size_t row = static_cast<size_t>(count) * tiles, ld = winograd_stride(row * channels);
  for (int j = 0; j < count; ++j)
    for (int k = 0; k < channels; ++k) {
      const T* src = m + k * row + static_cast<size_t>(j) * tiles;
      for (int ty = 0; ty < th; ++ty)
        for (int tx = 0; tx < tw; ++tx) {
          const int t = ty * tw + tx;
          T s[kTile][kTile];
          for (int e = 0; e < kWinogradElems; ++e) s[e / kTile][e % kTile] = src[e * ld + t];
          for (int i = 0; i < 2; ++i) {
            T r[kTile];
            for (int l = 0; l < kTile; ++l)
              r[l] = i == 0 ? s[0][l] + s[1][l] + s[2][l] : s[1][l] - s[2][l] - s[3][l];
            T* out = whole + (2 * ty + i) * ww + 2 * tx;
            out[0] = r[0] + r[1] + r[2];
            out[1] = r[1] - r[2] - r[3];
          }
        }
      T* plane = y + (static_cast<size_t>(j) * channels + k) * oh * ow;
      const T b = bias ? bias[k] : T(0);
      for (int i = 0; i < oh; ++i)
        for (int l = 0; l < ow; ++l) plane[i * ow + l] = activate(kind(), whole[i * ww + l] + b);
    }
}

// m[e][k][j * tiles + t] = (A dy A^T)[e] of each 2x2 output-gradient tile (zero outside).
template <typename T>
void gradient_tiles(const WinogradGrid& g, int channels, const T* dy, int count, T* m, T* padded) {
  const int th = g.tiles_h(), tw = g.tiles_w(), tiles = th * tw;
  const size_t row = static_cast<size_t>(count) * tiles, ld = winograd_stride(row * channels);
  for (int j = 0; j < count; ++j)
    for (int k = 0; k < channels; ++k) {
      const T* plane = dy + (static_cast<size_t>(j) * channels + k) * g.out_h * g.out_w;
      const int pw = pad_plane(plane, g.out_h, g.out_w, 0, th, tw, padded);
      T* dst = m + k * row + static_cast<size_t>(j) * tiles;
      for (int ty = 0; ty < th; ++ty)
        for (int tx = 0; tx < tw; ++tx) {
          const T* q = padded + 2 * ty * pw + 2 * tx;
          // A = [1 0; 1 1; 1 -1; 0 -1] on both sides.
          const T a[kTile][2] = {{q[0], q[1]},
                                 {q[0] + q[pw], q[1] + q[pw + 1]},
                                 {q[0] - q[pw], q[1] - q[pw + 1]},
                                 {-q[pw], -q[pw + 1]}};
          for (int i = 0; i < kTile; ++i) {
            T* out = dst + ty * tw + tx + static_cast<size_t>(i) * kTile * ld;
            out[0] = a[i][0];
            out[ld] = a[i][0] + a[i][1];
            out[2 * ld] = a[i][0] - a[i][1];
            out[3 * ld] = -a[i][1];
          }
        }
    }
}

}  // namespace

bool winograd_fits(const ConvShape& s) {
  return s.r == 3 && s.s == 3 && s.stride == 1 && s.pad >= 0 && s.pad <= 2;
}

WinogradGrid forward_grid(const ConvShape& s) {
  return {.in_h = s.h, .in_w = s.w, .pad = s.pad, .out_h = s.out_h(), .out_w = s.out_w()};
}

WinogradGrid backward_data_grid(const ConvShape& s) {
  return {.in_h = s.out_h(), .in_w = s.out_w(), .pad = 2 - s.pad, .out_h = s.h, .out_w = s.w};
}

// The tile rows, then one plane padded to whole tiles (pad_plane, output_tiles).
size_t winograd_scratch_elems(const ConvShape& s, int samples) {
  size_t tiles = 0, plane = 0;
  for (const WinogradGrid& g : {forward_grid(s), backward_data_grid(s)}) {
    tiles = std::max<size_t>(tiles, g.tiles());
    plane = std::max<size_t>(plane, size_t(2 * g.tiles_h() + 2) * (2 * g.tiles_w() + 2));
  }
  const size_t cols = tiles * samples;
  return kWinogradElems * (winograd_stride(s.c * cols) + winograd_stride(s.k * cols)) + plane;
}

template <typename T>
void winograd_filter(const ConvShape& s, const T* w, bool rotated, T* u) {
  const size_t ld = winograd_stride(static_cast<size_t>(s.k) * s.c);
  for (int k = 0; k < s.k; ++k)
    for (int c = 0; c < s.c; ++c) {
      const T* f = w + (static_cast<size_t>(k) * s.c + c) * 9;
      T g[3][3];
      for (int i = 0; i < 9; ++i) g[i / 3][i % 3] = rotated ? f[8 - i] : f[i];
      // G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] on both sides.
      T a[kTile][3];
      for (int j = 0; j < 3; ++j) {
        a[0][j] = g[0][j];
        a[1][j] = (g[0][j] + g[1][j] + g[2][j]) / 2;
        a[2][j] = (g[0][j] - g[1][j] + g[2][j]) / 2;
        a[3][j] = g[2][j];
      }
      T* dst = u + (rotated ? static_cast<size_t>(c) * s.k + k : static_cast<size_t>(k) * s.c + c);
      for (int i = 0; i < kTile; ++i) {
        T* out = dst + static_cast<size_t>(i) * kTile * ld;
        out[0] = a[i][0];
        out[ld] = (a[i][0] + a[i][1] + a[i][2]) / 2;
        out[2 * ld] = (a[i][0] - a[i][1] + a[i][2]) / 2;
        out[3 * ld] = a[i][2];
      }
    }
}

template <typename T>
void winograd_conv_chunk(const WinogradGrid& g, int cin, int cout, const T* u, const T* x,
                         int count, const T* bias, Activation act, T* y, T* scratch) {
  const int cols = count * g.tiles();
  const size_t u_ld = winograd_stride(static_cast<size_t>(cout) * cin);
  T* v = scratch;
  const size_t v_ld = winograd_stride(static_cast<size_t>(cin) * cols);
  const size_t m_ld = winograd_stride(static_cast<size_t>(cout) * cols);
  T* m = v + kWinogradElems * v_ld;
  T* plane = m + kWinogradElems * m_ld;
  input_tiles(g, cin, x, count, v, plane);
  for (int e = 0; e < kWinogradElems; ++e)
    gemm<T>(false, false, cout, cols, cin, T(1), u + e * u_ld, cin, v + e * v_ld, cols, T(0),
            m + e * m_ld, cols);
  with_activation(act, [&](auto kind) { output_tiles(kind, g, cout, m, count, bias, y, plane); });
}

template <typename T>
void winograd_filter_gradient_chunk(const ConvShape& s, const T* x, const T* dy, int count, T beta,
                                    T* acc, T* scratch) {
  const WinogradGrid g = forward_grid(s);
  const int cols = count * g.tiles();
  T* v = scratch;
  const size_t v_ld = winograd_stride(static_cast<size_t>(s.c) * cols);
  const size_t m_ld = winograd_stride(static_cast<size_t>(s.k) * cols);
  const size_t acc_ld = winograd_stride(static_cast<size_t>(s.k) * s.c);
  T* m = v + kWinogradElems * v_ld;
  T* plane = m + kWinogradElems * m_ld;
  input_tiles(g, s.c, x, count, v, plane);
  gradient_tiles(g, s.k, dy, count, m, plane);
  for (int e = 0; e < kWinogradElems; ++e)
    gemm<T>(false, true, s.k, s.c, cols, T(1), m + e * m_ld, cols, v + e * v_ld, cols, beta,
            acc + e * acc_ld, s.c);
}

template <typename T>
void winograd_filter_gradient_finish(const ConvShape& s, const T* acc, T* dw) {
  const size_t filters = static_cast<size_t>(s.k) * s.c, ld = winograd_stride(filters);
  for (size_t kc = 0; kc < filters; ++kc) {
    T m[kTile][kTile];
    for (int e = 0; e < kWinogradElems; ++e) m[e / kTile][e % kTile] = acc[e * ld + kc];
    // G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1] on both sides.
    T a[3][kTile];
    for (int j = 0; j < kTile; ++j) {
      a[0][j] = m[0][j] + (m[1][j] + m[2][j]) / 2;
      a[1][j] = (m[1][j] - m[2][j]) / 2;
      a[2][j] = (m[1][j] + m[2][j]) / 2 + m[3][j];
    }
    T* f = dw + kc * 9;
    for (int i = 0; i < 3; ++i) {
      f[i * 3 + 0] = a[i][0] + (a[i][1] + a[i][2]) / 2;
      f[i * 3 + 1] = (a[i][1] - a[i][2]) / 2;
      f[i * 3 + 2] = (a[i][1] + a[i][2]) / 2 + a[i][3];
    }
  }
}

#define PLINTH_WINOGRAD_INSTANTIATE(T)                                                          \
  template void winograd_filter<T>(const ConvShape&, const T*, bool, T*);                       \
  template void winograd_conv_chunk<T>(const WinogradGrid&, int, int, const T*, const T*, int,  \
                                       const T*, Activation, T*, T*);                           \
  template void winograd_filter_gradient_chunk<T>(const ConvShape&, const T*, const T*, int, T, \
                                                  T*, T*);                                      \
  template void winograd_filter_gradient_finish<T>(const ConvShape&, const T*, T*);
PLINTH_WINOGRAD_INSTANTIATE(float)
PLINTH_WINOGRAD_INSTANTIATE(double)
#undef PLINTH_WINOGRAD_INSTANTIATE

}  // namespace plinth::cpu
