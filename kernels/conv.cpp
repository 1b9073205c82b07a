// CudaBackend's convolutions: the dispatch between cuDNN (kernels/cudnn_adapter.*) and
// plinth's own kernels (kernels/conv_native.*, CudaOptions::native_conv, fp32 whatever the
// precision), with the workspace both share. Both apply the bias and the activation in the
// forward pass (cuDNN in its own call where it can, else with bias.cu's kernel).
#include "engine/error.h"
#include "engine/op_shapes.h"
#include "kernels/conv_native.h"
#include "kernels/cuda_backend.h"
#include "kernels/cuda_context.h"
#include "kernels/cudnn_adapter.h"

namespace plinth {
namespace {

// Per cuDNN algorithm. A fixed limit (not a share of free memory) keeps the algorithm
// choice, and so the rounding of results, the same from run to run.
constexpr size_t kConvWorkspaceLimit = size_t{512} << 20;

// An op that meets a shape conv2d_prepare() has not seen prepares it then: slower (it
// may allocate) but correct.
bool needs_prepare(const CudaContext& ctx, const ConvShape& shape) {
  if (ctx.cudnn) return !ctx.cudnn->prepared(shape);
  return cuda::native_conv_workspace_bytes(shape) > ctx.workspace_bytes;
}

}  // namespace

namespace cuda {

void fail_native_conv_too_large(const ConvShape& s) {
  fail(
      "conv2d (native): input {}x{}x{}x{} with {} filters is too large for the native "
      "convolution's int indexing; use cuDNN (without native_conv)",
      s.n, s.c, s.h, s.w, s.k);
}

}  // namespace cuda

void CudaBackend::conv2d_prepare(const ConvShape& shape) {
  check_conv_shape(shape, "conv2d_prepare");
  if (ctx_->cudnn)
    ctx_->reserve_workspace(ctx_->cudnn->prepare(shape, kConvWorkspaceLimit));
  else
    ctx_->reserve_workspace(cuda::native_conv_workspace_bytes(shape));
}

void CudaBackend::conv2d_forward(const ConvShape& shape, const float* x, const float* w,
                                 const float* b, float* y, Activation act) {
  check_conv_shape(shape, "conv2d_forward");
  if (needs_prepare(*ctx_, shape)) conv2d_prepare(shape);
  if (!ctx_->cudnn) {
    cuda::native_conv_forward(ctx_->stream, shape, x, w, b, y, act);
    return;
  }
  ctx_->cudnn->forward(shape, x, w, b, y, act, ctx_->workspace);
}

// cuDNN's runtime fusion engines do not cover a pool after a convolution: the two ops, one after
// the other.
void CudaBackend::conv2d_maxpool_forward(const ConvShape& conv, const PoolShape& pool,
                                         const float* x, const float* w, const float* b,
                                         Activation act, float* conv_y, float* pool_y,
                                         int32_t* argmax) {
  check_conv_pool_shapes(conv, pool, "conv2d_maxpool_forward");
  conv2d_forward(conv, x, w, b, conv_y, act);
  maxpool_forward(pool, conv_y, pool_y, argmax);
}

void CudaBackend::conv2d_maxpool_relu_backward(const ConvShape& conv, const PoolShape& pool,
                                               const float* x, const float* w, const float* pool_dy,
                                               const int32_t* argmax, const float* pool_y,
                                               float* conv_dy, float* dx, float* dw, float* db) {
  check_conv_pool_shapes(conv, pool, "conv2d_maxpool_relu_backward");
  maxpool_relu_backward(pool, pool_dy, argmax, pool_y, conv_dy, db);
  if (dw) conv2d_backward_filter(conv, x, conv_dy, dw);
  if (dx) conv2d_backward_data(conv, conv_dy, w, dx);
}

void CudaBackend::conv2d_backward_data(const ConvShape& shape, const float* dy, const float* w,
                                       float* dx) {
  check_conv_shape(shape, "conv2d_backward_data");
  if (needs_prepare(*ctx_, shape)) conv2d_prepare(shape);
  if (ctx_->cudnn)
    ctx_->cudnn->backward_data(shape, dy, w, dx, ctx_->workspace);
  else
    cuda::native_conv_backward_data(ctx_->stream, shape, dy, w, dx);
}

void CudaBackend::conv2d_backward_filter(const ConvShape& shape, const float* x, const float* dy,
                                         float* dw) {
  check_conv_shape(shape, "conv2d_backward_filter");
  if (needs_prepare(*ctx_, shape)) conv2d_prepare(shape);
  if (ctx_->cudnn)
    ctx_->cudnn->backward_filter(shape, x, dy, dw, ctx_->workspace);
  else
    cuda::native_conv_backward_filter(ctx_->stream, shape, x, dy, dw,
                                      static_cast<float*>(ctx_->workspace));
}

}  // namespace plinth
