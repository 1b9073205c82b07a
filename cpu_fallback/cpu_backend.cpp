#include "cpu_fallback/cpu_backend.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "cpu_fallback/activation.h"
#include "cpu_fallback/aligned_buffer.h"
#include "cpu_fallback/bias.h"
#include "cpu_fallback/conv.h"
#include "cpu_fallback/data.h"
#include "cpu_fallback/dropout.h"
#include "cpu_fallback/gemm.h"
#include "cpu_fallback/losses.h"
#include "cpu_fallback/optimizer.h"
#include "cpu_fallback/parallel.h"
#include "cpu_fallback/pool.h"
#include "cpu_fallback/reductions.h"

namespace plinth {
namespace {

int resolve_threads(int threads) { return threads > 0 ? threads : std::max(1, omp_get_num_procs()); }

// "OpenBLAS 0.3.21" from the linked library's configuration string, which starts with the
// name and version ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... MAX_THREADS=64").
std::string openblas_version() {
  const std::string config = openblas_get_config();
  const size_t name_end = config.find(' ');
  const size_t version_end = name_end == std::string::npos ? name_end : config.find(' ', name_end + 1);
  return config.substr(0, version_end);
}

}  // namespace

CpuBackend::CpuBackend(int threads) : threads_(resolve_threads(threads)), conv_(threads_) {}

std::string CpuBackend::description() const {
  return fmt::format("cpu ({} {}, {} thread{})", openblas_version(), openblas_get_corename(),
                     threads_, threads_ == 1 ? "" : "s");
}

void* CpuBackend::allocate(size_t bytes) { return cpu::aligned_allocate(bytes); }
void CpuBackend::deallocate(void* ptr) noexcept { cpu::aligned_free(ptr); }

// Host memory is device memory here. Zero-byte copies may come with null pointers, which
// memcpy does not accept.
void CpuBackend::upload(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes) std::memcpy(device_dst, host_src, bytes);
}
void CpuBackend::download(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes) std::memcpy(host_dst, device_src, bytes);
}
void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::fill(float* x, size_t n, float value) {
  cpu::parallel_for(threads_, n, [&](size_t i) { x[i] = value; });
}

void CpuBackend::conv2d_prepare(const ConvShape& shape) { conv_.prepare(shape, sizeof(float)); }

void CpuBackend::conv2d_forward(const ConvShape& shape, const float* x, const float* w,
                                const float* b, float* y, Activation act) {
  cpu::conv2d_forward(conv_, shape, x, w, b, y, act);
}

void CpuBackend::conv2d_backward_data(const ConvShape& shape, const float* dy, const float* w,
                                      float* dx) {
  cpu::conv2d_backward_data(conv_, shape, dy, w, dx);
}

void CpuBackend::conv2d_backward_filter(const ConvShape& shape, const float* x, const float* dy,
                                        float* dw) {
  cpu::conv2d_backward_filter(conv_, shape, x, dy, dw);
}

void CpuBackend::bias_backward(const float* dy, float* db, int n, int c, int spatial) {
  cpu::bias_backward(threads_, dy, db, n, c, spatial);
}

void CpuBackend::bias_activation_backward(Activation act, const float* y, const float* dy, float* dx,
                                          float* db, int n, int c, int spatial) {
  cpu::bias_activation_backward(threads_, act, y, dy, dx, db, n, c, spatial);
}

void CpuBackend::maxpool_forward(const PoolShape& shape, const float* x, float* y,
                                 int32_t* argmax) {
  cpu::maxpool_forward(threads_, shape, x, y, argmax);
}

void CpuBackend::maxpool_backward(const PoolShape& shape, const float* dy, const int32_t* argmax,
                                  float* dx) {
  cpu::maxpool_backward(threads_, shape, dy, argmax, dx);
}

void CpuBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                      const float* a, int lda, const float* b, int ldb, float beta, float* c,
                      int ldc) {
  const cpu::ThreadScope scope(threads_);
  cpu::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void CpuBackend::bias_activation_forward(float* y, const float* b, int n, int c, int spatial,
                                         Activation act) {
  cpu::bias_activation_forward(threads_, y, b, n, c, spatial, act);
}

void CpuBackend::activation_forward(Activation act, const float* x, float* y, size_t n) {
  cpu::activation_forward(threads_, act, x, y, n);
}

void CpuBackend::activation_backward(Activation act, const float* y, const float* dy, float* dx,
                                     size_t n) {
  cpu::activation_backward(threads_, act, y, dy, dx, n);
}

void CpuBackend::softmax_cross_entropy(const float* logits, const int32_t* labels, int n,
                                       int classes, float* probs, float* grad, float* stats) {
  cpu::softmax_cross_entropy(threads_, logits, labels, n, classes, probs, grad, stats);
}

void CpuBackend::mse_loss(const float* pred, const float* target, int n, int features,
                          float* grad, float* stats) {
  cpu::mse_loss(threads_, pred, target, n, features, grad, stats);
}

void CpuBackend::bce_loss(const float* pred, const float* target, int n, int features,
                          float* grad, float* stats) {
  cpu::bce_loss(threads_, pred, target, n, features, grad, stats);
}

void CpuBackend::dropout_forward(const float* x, float* y, float* mask, size_t n, float rate,
                                 uint64_t seed, const int64_t* step) {
  cpu::dropout_forward(threads_, x, y, mask, n, rate, seed, step);
}

void CpuBackend::dropout_backward(const float* dy, const float* mask, float* dx, size_t n) {
  cpu::dropout_backward(threads_, dy, mask, dx, n);
}

void CpuBackend::optimizer_update(const OptimizerSpec& spec, float* params, const float* grads,
                                  float* m, float* v, size_t n, const int64_t* step,
                                  const float* grad_scale) {
  cpu::optimizer_update(threads_, spec, params, grads, m, v, n, step, grad_scale);
}

void CpuBackend::sum_squares(const float* x, size_t n, float* out) {
  cpu::sum_squares(threads_, x, n, out);
}

void CpuBackend::clip_scale(const float* sum_sq, float max_norm, float* scale) {
  cpu::clip_scale(sum_sq, max_norm, scale);
}

void CpuBackend::count_nonfinite(const float* x, size_t n, float* stats) {
  cpu::count_nonfinite(threads_, x, n, stats);
}

void CpuBackend::accumulate(const float* x, float* y, size_t n) {
  cpu::accumulate(threads_, x, y, n);
}

void CpuBackend::gather_batch(const uint8_t* images, const int32_t* labels,
                              const int32_t* indices, int batch, int sample_size, float mean,
                              float std, float* out, int32_t* labels_out) {
  cpu::gather_batch(threads_, images, labels, indices, batch, sample_size, mean, std, out,
                    labels_out);
}

void CpuBackend::augment(const AugmentSpec& spec, const float* in, float* out, int n, int c,
                         int h, int w, const int32_t* sample_ids, uint64_t seed) {
  cpu::augment(threads_, spec, in, out, n, c, h, w, sample_ids, seed);
}

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace plinth
