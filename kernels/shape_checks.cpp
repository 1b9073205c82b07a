#include "kernels/shape_checks.h"

#include "engine/error.h"

namespace plinth::cuda {

void check_conv_shape(const ConvShape& s) {
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1 || s.k < 1 || s.r < 1 || s.s < 1 ||
      s.stride < 1 || s.pad < 0 || s.h + 2 * s.pad < s.r || s.w + 2 * s.pad < s.s)
    fail("conv2d: invalid shape: input {}x{}x{}x{}, {} filters of {}x{}, stride {}, pad {}", s.n,
         s.c, s.h, s.w, s.k, s.r, s.s, s.stride, s.pad);
}

void check_pool_shape(const PoolShape& s, const char* op) {
  if (s.n < 0 || s.c < 0 || s.size < 1 || s.stride < 1 || s.h < s.size || s.w < s.size)
    fail("{}: invalid pool shape: input {}x{}x{}x{}, window {}, stride {}", op, s.n, s.c, s.h,
         s.w, s.size, s.stride);
}

void fail_native_conv_too_large(const ConvShape& s) {
  fail("conv2d (native): input {}x{}x{}x{} with {} filters is too large for the native "
       "convolution's int indexing; use cuDNN (without native_conv)",
       s.n, s.c, s.h, s.w, s.k);
}

}  // namespace plinth::cuda
