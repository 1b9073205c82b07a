#include "tests/recording_backend.h"

#include <fmt/format.h>

#include <type_traits>
#include <utility>

#include "engine/error.h"

namespace plinth::test {
namespace {

// Every argument as text that tells any two different values apart: pointers as
// addresses, floats in their shortest exact form, structs field by field.
template <typename T>
std::string describe(const T& v) {
  if constexpr (std::is_pointer_v<T>)
    return fmt::format("p:{}", static_cast<const void*>(v));
  else if constexpr (std::is_enum_v<T>)
    return fmt::format("e:{}", static_cast<int>(v));
  else
    return fmt::format("{}", v);
}

std::string describe(const ConvShape& s) {
  return fmt::format("conv[{} {} {} {} {} {} {} {} {}]", s.n, s.c, s.h, s.w, s.k, s.r, s.s,
                     s.stride, s.pad);
}
std::string describe(const PoolShape& s) {
  return fmt::format("pool[{} {} {} {} {} {}]", s.n, s.c, s.h, s.w, s.size, s.stride);
}
std::string describe(const BatchNormShape& s) {
  return fmt::format("batchnorm[{} {} {} {} {}]", s.n, s.c, s.spatial, s.eps, s.momentum);
}
std::string describe(const OptimizerSpec& s) {
  return fmt::format("optimizer[{} {} {} {} {} {} {} {}]", static_cast<int>(s.kind), s.lr,
                     s.momentum, s.nesterov, s.beta1, s.beta2, s.eps, s.weight_decay);
}
std::string describe(const Schedule& s) {
  return fmt::format("schedule[{} {} {} {} {} {}]", static_cast<int>(s.kind), s.step_epochs,
                     s.gamma, s.min_lr, s.warmup, s.start_factor);
}
std::string describe(const LrSchedule& s) {
  return fmt::format("lr[{} {} {} {}]", describe(s.schedule), s.epoch, s.total_steps, s.multiplier);
}
std::string describe(const AugmentSpec& s) {
  return fmt::format("augment[{} {} {} {} {} {} {}]", s.max_shift, s.max_rotate, s.max_scale,
                     s.horizontal_flip, s.contrast, s.brightness, s.cutout);
}

}  // namespace

// The calls recorded by one capture, with their arguments, called again at each replay.
class RecordingBackend::Graph final : public OpGraph {
 public:
  explicit Graph(RecordingBackend& backend) : backend_(backend) {}
  void add(std::function<void()> call) { calls_.push_back(std::move(call)); }
  void replay() override {
    backend_.log_.push_back("replay");
    for (const auto& call : calls_) call();
  }
  size_t launches() const override { return calls_.size(); }

 private:
  RecordingBackend& backend_;
  std::vector<std::function<void()>> calls_;
};

template <typename Run, typename... A>
auto RecordingBackend::call(const char* name, Run&& run, const A&... args) -> decltype(run()) {
  std::string line = std::string(name) + "(";
  const char* separator = "";
  ((line += separator + describe(args), separator = ", "), ...);
  log_.push_back(line + ")");
  if constexpr (std::is_void_v<decltype(run())>) {
    if (capturing_)
      capturing_->add(std::function<void()>(run));
    else
      run();
  } else {
    return run();
  }
}

void RecordingBackend::refuse_in_capture(const char* name) const {
  if (capturing_) fail("capture: {} cannot be captured", name);
}

std::unique_ptr<OpGraph> RecordingBackend::capture(const std::function<void()>& ops,
                                                   std::unique_ptr<OpGraph>) {
  auto graph = std::make_unique<Graph>(*this);
  log_.push_back("capture {");
  capturing_ = graph.get();
  try {
    ops();
  } catch (...) {
    capturing_ = nullptr;
    throw;
  }
  capturing_ = nullptr;
  log_.push_back("}");
  ++captures_;
  return graph;
}

// ---- the ops, each logged and passed on -------------------------------------------------

#define PLINTH_RECORD(op, ...) \
  return call(                 \
      #op, [=, this] { return inner_.op(__VA_ARGS__); }, __VA_ARGS__)

void* RecordingBackend::allocate(size_t bytes) {
  refuse_in_capture("allocate");
  PLINTH_RECORD(allocate, bytes);
}
void RecordingBackend::deallocate(void* ptr) noexcept { inner_.deallocate(ptr); }
void RecordingBackend::upload(void* device_dst, const void* host_src, size_t bytes) {
  refuse_in_capture("upload");
  PLINTH_RECORD(upload, device_dst, host_src, bytes);
}
void RecordingBackend::download(void* host_dst, const void* device_src, size_t bytes) {
  refuse_in_capture("download");
  PLINTH_RECORD(download, host_dst, device_src, bytes);
}
void RecordingBackend::copy(void* dst, const void* src, size_t bytes) {
  PLINTH_RECORD(copy, dst, src, bytes);
}
void RecordingBackend::fill(float* x, size_t n, float value) { PLINTH_RECORD(fill, x, n, value); }
void RecordingBackend::synchronize() {
  refuse_in_capture("synchronize");
  log_.push_back("synchronize()");
  inner_.synchronize();
}
void RecordingBackend::conv2d_prepare(const ConvShape& shape) {
  refuse_in_capture("conv2d_prepare");
  PLINTH_RECORD(conv2d_prepare, shape);
}
void RecordingBackend::conv2d_forward(const ConvShape& shape, const float* x, const float* w,
                                      const float* b, float* y, Activation act) {
  PLINTH_RECORD(conv2d_forward, shape, x, w, b, y, act);
}
void RecordingBackend::conv2d_backward_data(const ConvShape& shape, const float* dy, const float* w,
                                            float* dx) {
  PLINTH_RECORD(conv2d_backward_data, shape, dy, w, dx);
}
void RecordingBackend::conv2d_backward_filter(const ConvShape& shape, const float* x,
                                              const float* dy, float* dw) {
  PLINTH_RECORD(conv2d_backward_filter, shape, x, dy, dw);
}
void RecordingBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                            const float* a, int lda, const float* b, int ldb, float beta, float* c,
                            int ldc) {
  PLINTH_RECORD(gemm, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void RecordingBackend::bias_activation_forward(float* y, const float* b, int n, int c, int spatial,
                                               Activation act) {
  PLINTH_RECORD(bias_activation_forward, y, b, n, c, spatial, act);
}
void RecordingBackend::bias_backward(const float* dy, float* db, int n, int c, int spatial) {
  PLINTH_RECORD(bias_backward, dy, db, n, c, spatial);
}
void RecordingBackend::bias_activation_backward(Activation act, const float* y, const float* dy,
                                                float* dx, float* db, int n, int c, int spatial) {
  PLINTH_RECORD(bias_activation_backward, act, y, dy, dx, db, n, c, spatial);
}
void RecordingBackend::activation_forward(Activation act, const float* x, float* y, size_t n) {
  PLINTH_RECORD(activation_forward, act, x, y, n);
}
void RecordingBackend::activation_backward(Activation act, const float* y, const float* dy,
                                           float* dx, size_t n) {
  PLINTH_RECORD(activation_backward, act, y, dy, dx, n);
}
void RecordingBackend::conv2d_maxpool_forward(const ConvShape& conv, const PoolShape& pool,
                                              const float* x, const float* w, const float* b,
                                              Activation act, float* conv_y, float* pool_y,
                                              int32_t* argmax) {
  PLINTH_RECORD(conv2d_maxpool_forward, conv, pool, x, w, b, act, conv_y, pool_y, argmax);
}
void RecordingBackend::conv2d_maxpool_relu_backward(const ConvShape& conv, const PoolShape& pool,
                                                    const float* x, const float* w,
                                                    const float* pool_dy, const int32_t* argmax,
                                                    const float* pool_y, float* conv_dy, float* dx,
                                                    float* dw, float* db) {
  PLINTH_RECORD(conv2d_maxpool_relu_backward, conv, pool, x, w, pool_dy, argmax, pool_y, conv_dy,
                dx, dw, db);
}
void RecordingBackend::maxpool_forward(const PoolShape& shape, const float* x, float* y,
                                       int32_t* argmax) {
  PLINTH_RECORD(maxpool_forward, shape, x, y, argmax);
}
void RecordingBackend::maxpool_backward(const PoolShape& shape, const float* dy,
                                        const int32_t* argmax, float* dx) {
  PLINTH_RECORD(maxpool_backward, shape, dy, argmax, dx);
}
void RecordingBackend::maxpool_relu_backward(const PoolShape& shape, const float* dy,
                                             const int32_t* argmax, const float* y, float* dx,
                                             float* db) {
  PLINTH_RECORD(maxpool_relu_backward, shape, dy, argmax, y, dx, db);
}
void RecordingBackend::avgpool_forward(const PoolShape& shape, const float* x, float* y) {
  PLINTH_RECORD(avgpool_forward, shape, x, y);
}
void RecordingBackend::avgpool_backward(const PoolShape& shape, const float* dy, float* dx) {
  PLINTH_RECORD(avgpool_backward, shape, dy, dx);
}
void RecordingBackend::global_avgpool_forward(const float* x, float* y, size_t planes,
                                              int spatial) {
  PLINTH_RECORD(global_avgpool_forward, x, y, planes, spatial);
}
void RecordingBackend::global_avgpool_backward(const float* dy, float* dx, size_t planes,
                                               int spatial) {
  PLINTH_RECORD(global_avgpool_backward, dy, dx, planes, spatial);
}
void RecordingBackend::batchnorm_forward(const BatchNormShape& shape, bool training, const float* x,
                                         const float* weight, const float* bias,
                                         float* running_mean, float* running_var, float* saved_mean,
                                         float* saved_invstd, float* y, Activation act) {
  PLINTH_RECORD(batchnorm_forward, shape, training, x, weight, bias, running_mean, running_var,
                saved_mean, saved_invstd, y, act);
}
void RecordingBackend::batchnorm_backward(const BatchNormShape& shape, bool training,
                                          Activation act, const float* x, const float* y,
                                          const float* dy, const float* weight,
                                          const float* saved_mean, const float* saved_invstd,
                                          float* dx, float* dweight, float* dbias) {
  PLINTH_RECORD(batchnorm_backward, shape, training, act, x, y, dy, weight, saved_mean,
                saved_invstd, dx, dweight, dbias);
}
void RecordingBackend::add_forward(const float* a, const float* b, float* y, size_t n,
                                   Activation act) {
  PLINTH_RECORD(add_forward, a, b, y, n, act);
}
void RecordingBackend::copy_rows(float* dst, size_t dst_stride, const float* src, size_t src_stride,
                                 size_t width, size_t rows) {
  PLINTH_RECORD(copy_rows, dst, dst_stride, src, src_stride, width, rows);
}
void RecordingBackend::softmax_cross_entropy(const float* logits, const int32_t* labels, int n,
                                             int batch, int classes, float* probs, float* grad,
                                             float* stats) {
  PLINTH_RECORD(softmax_cross_entropy, logits, labels, n, batch, classes, probs, grad, stats);
}
void RecordingBackend::mse_loss(const float* pred, const float* target, int n, int batch,
                                int features, float* grad, float* stats) {
  PLINTH_RECORD(mse_loss, pred, target, n, batch, features, grad, stats);
}
void RecordingBackend::bce_loss(const float* pred, const float* target, int n, int batch,
                                int features, float* grad, float* stats) {
  PLINTH_RECORD(bce_loss, pred, target, n, batch, features, grad, stats);
}
void RecordingBackend::pseudo_label(const float* logits, int n, int classes, float threshold,
                                    int32_t* labels, float* counts) {
  PLINTH_RECORD(pseudo_label, logits, n, classes, threshold, labels, counts);
}
void RecordingBackend::dropout_forward(const float* x, float* y, float* mask, size_t n, float rate,
                                       uint64_t seed, const int64_t* step) {
  PLINTH_RECORD(dropout_forward, x, y, mask, n, rate, seed, step);
}
void RecordingBackend::dropout_backward(const float* dy, const float* mask, float* dx, size_t n) {
  PLINTH_RECORD(dropout_backward, dy, mask, dx, n);
}
void RecordingBackend::optimizer_update(const OptimizerSpec& spec, const LrSchedule& schedule,
                                        float* params, const float* grads, float* m, float* v,
                                        size_t n, const int64_t* step, const float* grad_scale,
                                        const float* skip) {
  PLINTH_RECORD(optimizer_update, spec, schedule, params, grads, m, v, n, step, grad_scale, skip);
}
void RecordingBackend::sum_squares(const float* x, size_t n, float* out) {
  PLINTH_RECORD(sum_squares, x, n, out);
}
void RecordingBackend::clip_scale(const float* sum_sq, float max_norm, float* scale) {
  PLINTH_RECORD(clip_scale, sum_sq, max_norm, scale);
}
void RecordingBackend::count_nonfinite(const float* x, size_t n, float* stats) {
  PLINTH_RECORD(count_nonfinite, x, n, stats);
}
void RecordingBackend::accumulate(const float* x, float* y, size_t n) {
  PLINTH_RECORD(accumulate, x, y, n);
}
void RecordingBackend::increment(int64_t* counter, const float* skip) {
  PLINTH_RECORD(increment, counter, skip);
}
void RecordingBackend::gather_batch(const uint8_t* images, const int32_t* labels,
                                    const int32_t* indices, const int64_t* batch_index, int batch,
                                    int channels, int plane_size, const float* mean,
                                    const float* std, float* out, int32_t* labels_out) {
  PLINTH_RECORD(gather_batch, images, labels, indices, batch_index, batch, channels, plane_size,
                mean, std, out, labels_out);
}
void RecordingBackend::augment(const AugmentSpec& spec, const float* in, float* out, int n, int c,
                               int h, int w, const int32_t* sample_ids, const int64_t* batch_index,
                               uint64_t seed) {
  PLINTH_RECORD(augment, spec, in, out, n, c, h, w, sample_ids, batch_index, seed);
}

#undef PLINTH_RECORD

}  // namespace plinth::test
