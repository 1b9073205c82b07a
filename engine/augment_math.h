// The per-sample transform behind Backend::augment, shared by CPU and CUDA: an affine warp
// sampled bilinearly, a contrast gain and brightness offset, then a cutout square.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/backend.h"
#include "engine/hd.h"
#include "engine/rng.h"

namespace plinth {

// Maps an output pixel (x, y) to the input position it samples from.
struct InverseAffine {
  float a, b, c, d;                  // 2x2 inverse of rotation * scale (with flip folded in)
  float cx, cy;                      // image centre
  float tx, ty;                      // shift in output pixels
  float gain = 1.0f, offset = 0.0f;  // photometric: value * gain + offset
  int cut_x = 0, cut_y = 0;          // cutout: the square's top-left corner in output pixels
  int cut_size = 0;                  // its side; 0 when off
};

PLINTH_HD InverseAffine augment_transform(const AugmentSpec& spec, uint64_t seed, int32_t sample_id,
                                          int h, int w) {
  const uint64_t key = hash_combine(seed, static_cast<uint64_t>(static_cast<uint32_t>(sample_id)));
  auto sym = [&](int k, float range) { return (2.0f * uniform01(key, k) - 1.0f) * range; };
  const float tx = sym(0, spec.max_shift), ty = sym(1, spec.max_shift);
  const float angle = sym(2, spec.max_rotate) * 0.017453292519943295f;
  const float scale = 1.0f + sym(3, spec.max_scale);
  const bool flip = spec.horizontal_flip && uniform01(key, 4) < 0.5f;
  const float cs = cosf(angle) / scale, sn = sinf(angle) / scale;
  const float f = flip ? -1.0f : 1.0f;
  // Draws 5..8 came later: the affine draws 0..4 stay what they were.
  const float gain = 1.0f + sym(5, spec.contrast), offset = sym(6, spec.brightness);
  // The square's centre is anywhere in the image, so it may hang over an edge.
  const int side = static_cast<int>(spec.cutout);
  // inverse of R(angle) * scale is R(-angle) / scale; flip mirrors the output x axis.
  return {.a = cs * f,
          .b = sn,
          .c = -sn * f,
          .d = cs,
          .cx = 0.5f * (w - 1),
          .cy = 0.5f * (h - 1),
          .tx = tx,
          .ty = ty,
          .gain = gain,
          .offset = offset,
          .cut_x = static_cast<int>(uniform01(key, 7) * w) - side / 2,
          .cut_y = static_cast<int>(uniform01(key, 8) * h) - side / 2,
          .cut_size = side};
}

// Output pixel (x, y) of one [h, w] plane: 0 inside the cutout square, else the bilinear
// sample (zeros outside the plane) times the gain plus the offset.
PLINTH_HD float augment_pixel(const InverseAffine& t, const float* plane, int h, int w, int x,
                              int y) {
  if (x >= t.cut_x && x < t.cut_x + t.cut_size && y >= t.cut_y && y < t.cut_y + t.cut_size)
    return 0.0f;
  const float ox = x - t.cx - t.tx, oy = y - t.cy - t.ty;
  const float sx = t.a * ox + t.b * oy + t.cx, sy = t.c * ox + t.d * oy + t.cy;
  const float fx = floorf(sx), fy = floorf(sy);
  const int x0 = static_cast<int>(fx), y0 = static_cast<int>(fy);
  const float wx = sx - fx, wy = sy - fy;
  auto at = [&](int yy, int xx) {
    return (xx >= 0 && xx < w && yy >= 0 && yy < h) ? plane[yy * w + xx] : 0.0f;
  };
  const float v = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) +
                  wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
  return v * t.gain + t.offset;  // exactly v when both are off
}

}  // namespace plinth
