#include "engine/op_shapes.h"

#include <initializer_list>
#include <string>

#include <fmt/format.h>

#include "engine/error.h"

namespace plinth {
namespace {

// True when the product of dims (each >= 1 and an int) stays within
// kMaxElementsPerSample. Each partial product is checked before the next multiply, so
// nothing wraps however large the dims.
bool within_sample_limit(std::initializer_list<int64_t> dims) {
  int64_t product = 1;
  for (const int64_t d : dims) {
    product *= d;  // at most INT32_MAX * INT32_MAX: fits
    if (product > kMaxElementsPerSample) return false;
  }
  return true;
}

std::string describe(const ConvShape& s) {
  return fmt::format("input {}x{}x{}x{}, {} filters of {}x{}, stride {}, padding {}", s.n, s.c, s.h,
                     s.w, s.k, s.r, s.s, s.stride, s.pad);
}

std::string describe(const PoolShape& s) {
  return fmt::format("input {}x{}x{}x{}, window {}, stride {}", s.n, s.c, s.h, s.w, s.size,
                     s.stride);
}

std::string describe(const BatchNormShape& s) {
  return fmt::format("{} samples of {} channels x {} values, eps {}, momentum {}", s.n, s.c,
                     s.spatial, s.eps, s.momentum);
}

template <typename Shape>
[[noreturn]] void refuse(std::string_view who, const std::string& problem, const Shape& s) {
  fail("{}: {} ({})", who, problem, describe(s));
}

}  // namespace

void check_conv_shape(const ConvShape& s, std::string_view who) {
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1 || s.k < 1 || s.r < 1 || s.s < 1)
    refuse(who, "every size must be at least 1", s);
  if (s.stride < 1) refuse(who, fmt::format("stride {} must be at least 1", s.stride), s);
  if (s.pad < 0) refuse(who, fmt::format("padding {} must not be negative", s.pad), s);
  // Padding below the kernel size means every output window overlaps the input, so no
  // output is computed from padding alone. PyTorch asks pooling for pad <= kernel / 2 but
  // lets a convolution pad as much as it likes; pad = kernel - 1 (a "full" convolution)
  // is a real use, and cuDNN's FFT algorithms require filter > padding. So: the stricter
  // rule that every sensible convolution meets.
  if (s.pad >= s.r || s.pad >= s.s)
    refuse(who, fmt::format("padding {} must be smaller than the {}x{} kernel", s.pad, s.r, s.s),
           s);
  const int64_t padded_h = int64_t{s.h} + 2 * int64_t{s.pad};
  const int64_t padded_w = int64_t{s.w} + 2 * int64_t{s.pad};
  if (s.r > padded_h || s.s > padded_w)
    refuse(who,
           fmt::format("the {}x{} kernel does not fit the {}x{} input{}", s.r, s.s, s.h, s.w,
                       s.pad ? fmt::format(" padded to {}x{}", padded_h, padded_w) : ""),
           s);
  // Safe now: the window fits, so out_h() and out_w() are at least 1 and at most h + 2 pad.
  const int64_t out_h = (padded_h - s.r) / s.stride + 1, out_w = (padded_w - s.s) / s.stride + 1;
  if (!within_sample_limit({s.c, s.h, s.w}))
    refuse(who, "one sample's input has more than 2^31 - 1 elements", s);
  if (!within_sample_limit({s.k, out_h, out_w}))
    refuse(who, "one sample's output has more than 2^31 - 1 elements", s);
  // The weights bound one im2col column (c * r * s taps) as well, since k >= 1.
  if (!within_sample_limit({s.k, s.c, s.r, s.s}))
    refuse(who, "the weights have more than 2^31 - 1 elements", s);
}

void check_pool_shape(const PoolShape& s, std::string_view who) {
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1 || s.size < 1)
    refuse(who, "every size must be at least 1", s);
  if (s.stride < 1) refuse(who, fmt::format("stride {} must be at least 1", s.stride), s);
  if (s.size > s.h || s.size > s.w)
    refuse(who,
           fmt::format("the {}x{} window does not fit the {}x{} input", s.size, s.size, s.h, s.w),
           s);
  // argmax holds an int32 index within a plane; the sample bounds the plane.
  if (!within_sample_limit({s.c, s.h, s.w}))
    refuse(who, "one sample's input has more than 2^31 - 1 elements", s);
}

void check_conv_pool_shapes(const ConvShape& conv, const PoolShape& pool, std::string_view who) {
  check_conv_shape(conv, who);
  check_pool_shape(pool, who);
  if (pool.n != conv.n || pool.c != conv.k || pool.h != conv.out_h() || pool.w != conv.out_w())
    fail("{}: the pool's input {}x{}x{}x{} is not the convolution's output {}x{}x{}x{}", who,
         pool.n, pool.c, pool.h, pool.w, conv.n, conv.k, conv.out_h(), conv.out_w());
}

void check_batchnorm_shape(const BatchNormShape& s, std::string_view who) {
  if (s.n < 1 || s.c < 1 || s.spatial < 1) refuse(who, "every size must be at least 1", s);
  if (!within_sample_limit({s.c, s.spatial}))
    refuse(who, "one sample has more than 2^31 - 1 elements", s);
  // Written as !(in range) so that NaN is refused too.
  if (!(s.eps > 0) || !(s.momentum >= 0 && s.momentum <= 1))
    refuse(who, "eps must be positive and momentum in [0, 1]", s);
}

}  // namespace plinth
