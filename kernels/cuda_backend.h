// The CUDA implementation of the op interface. This header is the only part of kernels/
// that the engine may see, so it names no CUDA type: the stream, the library handles and
// the scratch buffers live in CudaContext (cuda_context.h), defined where they are used.
// Each kernel family defines its own methods in its own .cu file (elementwise.cu,
// loss.cu, pool.cu, ...); cuda_backend.cpp holds memory, convolution dispatch and gemm.
#pragma once

#include <memory>
#include <string>

#include "engine/backend.h"

namespace plinth {

struct CudaContext;

class CudaBackend final : public Backend {
 public:
  // Throws plinth::Error when the device cannot be used (see make_cuda_backend()).
  explicit CudaBackend(const CudaOptions& options);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  DeviceKind kind() const override { return DeviceKind::cuda; }
  std::string description() const override;

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr) noexcept override;
  void upload(void* device_dst, const void* host_src, size_t bytes) override;
  void download(void* host_dst, const void* device_src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void fill(float* x, size_t n, float value) override;
  void synchronize() override;

  void conv2d_prepare(const ConvShape& shape) override;
  void conv2d_forward(const ConvShape& shape, const float* x, const float* w, const float* b,
                      float* y, Activation act) override;
  void conv2d_backward_data(const ConvShape& shape, const float* dy, const float* w,
                            float* dx) override;
  void conv2d_backward_filter(const ConvShape& shape, const float* x, const float* dy,
                              float* dw) override;
  void bias_backward(const float* dy, float* db, int n, int c, int spatial) override;
  void bias_activation_backward(Activation act, const float* y, const float* dy, float* dx, float* db,
                                int n, int c, int spatial) override;

  void maxpool_forward(const PoolShape& shape, const float* x, float* y,
                       int32_t* argmax) override;
  void maxpool_backward(const PoolShape& shape, const float* dy, const int32_t* argmax,
                        float* dx) override;

  void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
            int lda, const float* b, int ldb, float beta, float* c, int ldc) override;
  void bias_activation_forward(float* y, const float* b, int n, int c, int spatial,
                               Activation act) override;

  void activation_forward(Activation act, const float* x, float* y, size_t n) override;
  void activation_backward(Activation act, const float* y, const float* dy, float* dx,
                           size_t n) override;

  void softmax_cross_entropy(const float* logits, const int32_t* labels, int n, int classes,
                             float* probs, float* grad, float* stats) override;
  void mse_loss(const float* pred, const float* target, int n, int features, float* grad,
                float* stats) override;
  void bce_loss(const float* pred, const float* target, int n, int features, float* grad,
                float* stats) override;

  void dropout_forward(const float* x, float* y, float* mask, size_t n, float rate,
                       uint64_t seed, const int64_t* step) override;
  void dropout_backward(const float* dy, const float* mask, float* dx, size_t n) override;

  void optimizer_update(const OptimizerSpec& spec, float* params, const float* grads, float* m,
                        float* v, size_t n, const int64_t* step,
                        const float* grad_scale) override;

  void sum_squares(const float* x, size_t n, float* out) override;
  void clip_scale(const float* sum_sq, float max_norm, float* scale) override;
  void count_nonfinite(const float* x, size_t n, float* stats) override;
  void accumulate(const float* x, float* y, size_t n) override;
  void increment(int64_t* counter) override;

  void gather_batch(const uint8_t* images, const int32_t* labels, const int32_t* indices,
                    int batch, int sample_size, float mean, float std, float* out,
                    int32_t* labels_out) override;
  void augment(const AugmentSpec& spec, const float* in, float* out, int n, int c, int h, int w,
               const int32_t* sample_ids, uint64_t seed) override;

 private:
  CudaOptions options_;
  std::unique_ptr<CudaContext> ctx_;
};

}  // namespace plinth
