// The device-abstraction layer: every operation the executor needs, implemented once
// for the CPU (cpu_fallback/) and once for CUDA (kernels/). The engine above this line
// never includes a CUDA header and never asks which device it runs on.
//
// Conventions shared by every op:
//  * all float pointers point into memory owned by this backend (see allocate());
//  * activations are NCHW float32, dense activations [N, features]; parameters use
//    PyTorch layouts (conv weight [out, in, kh, kw], dense weight [out, in]);
//  * ops are asynchronous with respect to the host; only download() and synchronize()
//    wait. No op may allocate memory or make a host-side decision that depends on data,
//    so that a whole training step can be captured as one CUDA graph;
//  * "stats" is a device array of kStatsSize floats that loss ops accumulate into
//    (loss sum, correct predictions, samples counted, non-finite values seen); the host
//    reads it with download() once per epoch or on demand;
//  * ops that take a ConvShape, PoolShape or BatchNormShape refuse (plinth::Error) a shape
//    that engine/op_shapes.h does not accept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace plinth {

enum class DeviceKind { cpu, cuda };

enum class Activation { none, relu, sigmoid, tanh };

// Indices into the stats array accumulated by the loss ops.
enum Stat : int { kStatLossSum = 0, kStatCorrect = 1, kStatCount = 2, kStatNonFinite = 3 };
inline constexpr int kStatsSize = 4;

// Element counts assume a valid shape (check_conv_shape / check_pool_shape in
// engine/op_shapes.h); out_h() and out_w() round down, so only the check says whether
// the window fits at all.
struct ConvShape {
  int n = 0, c = 0, h = 0, w = 0;  // input
  int k = 0, r = 0, s = 0;         // output channels, kernel height, kernel width
  int stride = 1, pad = 0;         // same stride and zero padding in both directions
  int out_h() const { return (h + 2 * pad - r) / stride + 1; }
  int out_w() const { return (w + 2 * pad - s) / stride + 1; }
  size_t input_elements() const { return static_cast<size_t>(n) * c * h * w; }
  size_t output_elements() const { return static_cast<size_t>(n) * k * out_h() * out_w(); }
  size_t weight_elements() const { return static_cast<size_t>(k) * c * r * s; }
  friend bool operator==(const ConvShape&, const ConvShape&) = default;
};

struct PoolShape {
  int n = 0, c = 0, h = 0, w = 0;
  int size = 2, stride = 2;  // square window, no padding (Keras 'valid')
  int out_h() const { return (h - size) / stride + 1; }
  int out_w() const { return (w - size) / stride + 1; }
  size_t input_elements() const { return static_cast<size_t>(n) * c * h * w; }
  size_t output_elements() const { return static_cast<size_t>(n) * c * out_h() * out_w(); }
  friend bool operator==(const PoolShape&, const PoolShape&) = default;
};

// Batch normalisation over [n, c, spatial] (spatial = h * w, or 1 for [N, features]):
// statistics per channel c over its n * spatial values. eps and momentum as in PyTorch.
struct BatchNormShape {
  int n = 0, c = 0, spatial = 1;
  float eps = 1e-5f, momentum = 0.1f;
  // constexpr, so that kernels may call them too (nvcc --expt-relaxed-constexpr).
  constexpr size_t elements() const { return static_cast<size_t>(n) * c * spatial; }
  constexpr size_t per_channel() const { return static_cast<size_t>(n) * spatial; }
};

enum class OptimizerKind { sgd, adam, adamw, rmsprop };

// Hyper-parameters of one optimizer update. weight_decay is L2 added to the gradient for
// sgd/adam/rmsprop and decoupled decay for adamw.
struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::adam;
  float lr = 1e-3f;
  float momentum = 0.0f;  // sgd
  bool nesterov = false;  // sgd
  // adam/adamw (Keras defaults); rmsprop uses beta2 as rho
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-7f;
  float weight_decay = 0.0f;
};

enum class ScheduleKind { constant, step, cosine, one_cycle };

// How the learning rate moves over a run (the model file's "schedule").
struct Schedule {
  ScheduleKind kind = ScheduleKind::constant;
  int step_epochs = 1;         // step: multiply by gamma every step_epochs
  float gamma = 0.1f;          // step
  float min_lr = 0.0f;         // cosine: floor; one_cycle: final lr
  float warmup = 0.3f;         // one_cycle: fraction of steps spent rising to the peak
  float start_factor = 0.04f;  // one_cycle: starting lr = peak * start_factor
};

// The learning rate of every optimizer step, which the update evaluates where it runs from
// the device's step counter (engine/elementwise.h, scheduled_lr), so that a captured step
// needs nothing from the host: OptimizerSpec::lr (the peak) along the schedule, times the
// parameter group's multiplier.
struct LrSchedule {
  Schedule schedule;
  int epoch = 0;            // the epoch under way (step decay), constant within an epoch
  double total_steps = 1;   // epochs x steps per epoch (cosine, one_cycle)
  float multiplier = 1.0f;  // the parameter group's lr_multiplier
};

// Random augmentation applied per sample; parameters are drawn from a counter-based
// generator keyed by (seed, epoch, sample id) so CPU and GPU agree. An affine warp, then
// the photometric changes, then cutout (the strong view of semi-supervised training).
struct AugmentSpec {
  float max_shift = 0.0f;   // pixels, uniform in [-max_shift, max_shift] for x and y
  float max_rotate = 0.0f;  // degrees, uniform in [-max_rotate, max_rotate]
  float max_scale = 0.0f;   // relative, scale uniform in [1-max_scale, 1+max_scale]
  bool horizontal_flip = false;
  float contrast = 0.0f;    // value * (1 + u), u uniform in [-contrast, contrast]
  float brightness = 0.0f;  // + u, u uniform in [-brightness, brightness] (input units)
  float cutout = 0.0f;      // a square of this side (pixels) at a random centre set to 0
  bool enabled() const {
    return max_shift > 0 || max_rotate > 0 || max_scale > 0 || horizontal_flip || contrast > 0 ||
           brightness > 0 || cutout > 0;
  }
};

// Every op of the interface, once: each entry is OP(result, name, (parameters) qualifiers)
// under the contract it must honour. Backend declares the entries as pure virtuals, and
// CpuBackend and CudaBackend declare their overrides from the same list; the family's two
// halves, named in its heading, define them. So adding an op is one entry here, one
// definition in each half and one entry in the op table (tests/op_table*.cpp).
// (Comments inside a macro must be block comments.)
// clang-format off
#define PLINTH_BACKEND_OPS(OP)                                                                     \
  /* ---- memory (cpu_fallback/memory.cpp, kernels/memory.cu) */                                   \
  /* allocate() throws plinth::Error (with the size asked for and the size free) on                \
     failure. */                                                                                   \
  OP(void*, allocate, (size_t bytes))                                                              \
  OP(void, deallocate, (void* ptr) noexcept)                                                       \
  OP(void, upload, (void* device_dst, const void* host_src, size_t bytes))                         \
  OP(void, download, (void* host_dst, const void* device_src, size_t bytes))                       \
  OP(void, copy, (void* dst, const void* src, size_t bytes))                                       \
  OP(void, fill, (float* x, size_t n, float value))                                                \
  OP(void, synchronize, ())                                                                        \
                                                                                                   \
  /* ---- convolution, a cross-correlation as in PyTorch and Keras (cpu_fallback/conv.cpp,         \
     kernels/conv.cpp: cuDNN or the native kernels of kernels/conv_native.cu) */                   \
  /* Called once per shape when the executor is built: choose algorithms, size                     \
     workspaces. */                                                                                \
  OP(void, conv2d_prepare, (const ConvShape& shape))                                               \
  /* y = act(conv(x, w) + b); b may be null. */                                                    \
  OP(void, conv2d_forward, (const ConvShape& shape, const float* x, const float* w,                \
                            const float* b, float* y, Activation act))                             \
  /* A convolution and the max pool that alone reads its output, forward in one:                   \
     pool_y and argmax as maxpool_forward(pool) over act(conv(x, w) + b) gives them (to fp32       \
     rounding: the CPU computes only the outputs the pool reads). conv_y, of the convolution's     \
     output size, is the op's to use as scratch: what it holds afterwards is unspecified (the      \
     CPU pools each plane while it is in cache and never writes it whole). */                      \
  OP(void, conv2d_maxpool_forward, (const ConvShape& conv, const PoolShape& pool, const float* x,  \
                                    const float* w, const float* b, Activation act,                \
                                    float* conv_y, float* pool_y, int32_t* argmax))                \
  /* The backward of conv2d_maxpool_forward with a ReLU, in one: dx, dw and db as                  \
     maxpool_relu_backward(pool, pool_dy, argmax, pool_y) into the convolution's output            \
     gradient, then conv2d_backward_filter and conv2d_backward_data give them (db the bias         \
     gradient; any of the three may be null: not wanted). conv_dy, of the convolution's            \
     output size, is scratch as in the forward. */                                                 \
  OP(void, conv2d_maxpool_relu_backward, (const ConvShape& conv, const PoolShape& pool,            \
                                          const float* x, const float* w, const float* pool_dy,    \
                                          const int32_t* argmax, const float* pool_y,              \
                                          float* conv_dy, float* dx, float* dw, float* db))        \
  /* dx = conv_transpose(dy, w)   (overwrites dx) */                                               \
  OP(void, conv2d_backward_data, (const ConvShape& shape, const float* dy, const float* w,         \
                                  float* dx))                                                      \
  /* dw = correlation of x with dy (overwrites dw) */                                              \
  OP(void, conv2d_backward_filter, (const ConvShape& shape, const float* x, const float* dy,       \
                                    float* dw))                                                    \
                                                                                                   \
  /* ---- dense (cpu_fallback/gemm.cpp, kernels/gemm.cpp) */                                       \
  /* Row-major C[m, n] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T. */                    \
  OP(void, gemm, (bool trans_a, bool trans_b, int m, int n, int k, float alpha,                    \
                  const float* a, int lda, const float* b, int ldb, float beta, float* c,          \
                  int ldc))                                                                        \
                                                                                                   \
  /* ---- per-channel bias (cpu_fallback/bias.cpp, kernels/bias.cu) */                             \
  /* y[n, c, spatial] = act(y + b[c]) in place; b may be null. */                                  \
  OP(void, bias_activation_forward, (float* y, const float* b, int n, int c, int spatial,          \
                                     Activation act))                                              \
  /* db[c] = sum over n and spatial of dy[n, c, spatial] (overwrites db). Also used for            \
     dense layers with spatial = 1. */                                                             \
  OP(void, bias_backward, (const float* dy, float* db, int n, int c, int spatial))                 \
  /* The backward of bias_activation_forward in one pass over dy: dx = dy * act'(y) (dx            \
     may alias dy), and db[c] = the sum of dx over n and spatial (overwrites db). Equals           \
     activation_backward followed by bias_backward, without reading dy twice. */                   \
  OP(void, bias_activation_backward, (Activation act, const float* y, const float* dy,             \
                                      float* dx, float* db, int n, int c, int spatial))            \
                                                                                                   \
  /* ---- activations, elementwise; backward uses the forward output y                             \
     (cpu_fallback/activation.cpp, kernels/activation.cu) */                                       \
  OP(void, activation_forward, (Activation act, const float* x, float* y, size_t n))               \
  /* dx = dy * act'(y); dx may alias dy. */                                                        \
  OP(void, activation_backward, (Activation act, const float* y, const float* dy, float* dx,       \
                                 size_t n))                                                        \
                                                                                                   \
  /* ---- pooling (cpu_fallback/pool.cpp, kernels/pool.cu) */                                      \
  /* argmax records, per output element, the flat input index within its (n, c) plane. */          \
  OP(void, maxpool_forward, (const PoolShape& shape, const float* x, float* y,                     \
                             int32_t* argmax))                                                     \
  /* dx = scatter of dy through argmax (overwrites dx). */                                         \
  OP(void, maxpool_backward, (const PoolShape& shape, const float* dy, const int32_t* argmax,      \
                              float* dx))                                                          \
  /* The backward of max pooling over a ReLU's output and of that ReLU, in one: y is the           \
     pool's output, so the ReLU's derivative at each window's maximum is y > 0. dx = the           \
     scatter of dy * (y > 0) through argmax (overwrites dx); when db is not null, also             \
     db[c] = the sum of dx over n and positions (the bias gradient of the layer whose ReLU         \
     output was pooled; overwrites db). Equals maxpool_backward then                               \
     bias_activation_backward(relu) without their passes over the pool's input. */                 \
  OP(void, maxpool_relu_backward, (const PoolShape& shape, const float* dy,                        \
                                   const int32_t* argmax, const float* y, float* dx, float* db))   \
                                                                                                   \
  /* ---- average pooling (cpu_fallback/avgpool.cpp, kernels/avgpool.cu) */                        \
  /* y = the mean of each size x size window (no padding), as PyTorch's AvgPool2d. */              \
  OP(void, avgpool_forward, (const PoolShape& shape, const float* x, float* y))                    \
  /* dx = each dy spread evenly over its window (overwrites dx; overlapping windows add). */       \
  OP(void, avgpool_backward, (const PoolShape& shape, const float* dy, float* dx))                 \
  /* Global average pooling: y[p] = the mean of x[p * spatial, (p + 1) * spatial). */              \
  OP(void, global_avgpool_forward, (const float* x, float* y, size_t planes, int spatial))         \
  /* dx[p * spatial + i] = dy[p] / spatial (overwrites dx). */                                     \
  OP(void, global_avgpool_backward, (const float* dy, float* dx, size_t planes, int spatial))      \
                                                                                                   \
  /* ---- batch normalisation, per channel of [n, c, spatial]                                      \
     (cpu_fallback/batchnorm.cpp, kernels/batchnorm.cu) */                                         \
  /* y = act((x - mean) * invstd * weight + bias), invstd = 1 / sqrt(var + eps). training:         \
     mean and (biased) var of this batch, written to saved_mean and saved_invstd, and the          \
     running estimates move towards them: r = (1 - momentum) r + momentum * batch, the             \
     variance unbiased (times m / (m - 1) for m = n * spatial > 1) as in PyTorch.                  \
     Otherwise the running estimates, which are also written to saved_mean and saved_invstd. */   \
  OP(void, batchnorm_forward, (const BatchNormShape& shape, bool training, const float* x,         \
                               const float* weight, const float* bias, float* running_mean,        \
                               float* running_var, float* saved_mean, float* saved_invstd,         \
                               float* y, Activation act))                                          \
  /* The backward of batchnorm_forward, from its output y and saved statistics: dz = dy *          \
     act'(y), xhat = (x - mean) * invstd; dbias = sum of dz and dweight = sum of dz * xhat per     \
     channel (both overwritten, never null); dx (may be null, may alias dy) = weight * invstd *    \
     (dz - mean(dz) - xhat * mean(dz * xhat)) in training, weight * invstd * dz otherwise. */      \
  OP(void, batchnorm_backward, (const BatchNormShape& shape, bool training, Activation act,        \
                                const float* x, const float* y, const float* dy,                   \
                                const float* weight, const float* saved_mean,                      \
                                const float* saved_invstd, float* dx, float* dweight,              \
                                float* dbias))                                                     \
                                                                                                   \
  /* ---- merging branches: add and concat (cpu_fallback/merge.cpp, kernels/merge.cu) */           \
  /* y = act(a + b), elementwise; y may alias a or b. */                                           \
  OP(void, add_forward, (const float* a, const float* b, float* y, size_t n, Activation act))      \
  /* dst[r * dst_stride + i] = src[r * src_stride + i] for r < rows and i < width, in floats       \
     (no overlap): one input's samples into their place in a concatenation, or back. */            \
  OP(void, copy_rows, (float* dst, size_t dst_stride, const float* src, size_t src_stride,         \
                       size_t width, size_t rows))                                                 \
                                                                                                   \
  /* ---- losses, mean over the batch; grad may be null in evaluation                              \
     (cpu_fallback/losses.cpp, kernels/losses.cu). The n rows are the first n of a batch of        \
     `batch` rows (n, or more where the executor runs a batch slice by slice): the gradient is     \
     of the mean over the batch, while stats add the n rows' sums. */                              \
  /* Fused softmax + categorical cross-entropy on logits [n, classes] with int labels.             \
     probs (may be null) receives the softmax; grad = (softmax - onehot) / batch. */               \
  OP(void, softmax_cross_entropy, (const float* logits, const int32_t* labels, int n, int batch,   \
                                   int classes, float* probs, float* grad, float* stats))          \
  /* Mean squared error, as Keras: mean over features, then over the batch;                        \
     grad = 2 (pred - target) / (batch * features). stats: loss sum over samples, count += n. */   \
  OP(void, mse_loss, (const float* pred, const float* target, int n, int batch, int features,      \
                      float* grad, float* stats))                                                  \
  /* Binary cross-entropy on probabilities (clamped to [1e-7, 1-1e-7], as Keras) against           \
     targets in [0,1], mean over features and batch; stats[correct] += per-sample fraction         \
     of elements with (pred > 0.5) == (target > 0.5). */                                           \
  OP(void, bce_loss, (const float* pred, const float* target, int n, int batch, int features,      \
                      float* grad, float* stats))                                                  \
  /* Pseudo-labels from logits [n, classes] (semi-supervised training): labels[i] = the            \
     argmax of row i (the first maximum wins ties) where its softmax probability is at least       \
     threshold, else -1 (softmax_cross_entropy then gives that row no loss and no gradient);       \
     counts[c] += the rows labelled c (counts: `classes` floats). */                               \
  OP(void, pseudo_label, (const float* logits, int n, int classes, float threshold,                \
                          int32_t* labels, float* counts))                                         \
                                                                                                   \
  /* ---- regularisation (cpu_fallback/dropout.cpp, kernels/dropout.cu) */                         \
  /* mask[i] = 0 or 1/(1-rate) from a counter-based generator keyed by (seed, *step, i);           \
     y = x * mask. step is a device counter so a captured graph sees a new mask each               \
     replay. */                                                                                    \
  OP(void, dropout_forward, (const float* x, float* y, float* mask, size_t n, float rate,          \
                             uint64_t seed, const int64_t* step))                                  \
  /* dx = dy * mask; dx may alias dy. */                                                           \
  OP(void, dropout_backward, (const float* dy, const float* mask, float* dx, size_t n))            \
                                                                                                   \
  /* ---- optimizer, one call updates a contiguous run of parameters                               \
     (cpu_fallback/optimizer.cpp, kernels/optimizer.cu) */                                         \
  /* *step (a device counter) counts from 1; the learning rate is schedule's at step               \
     *step - 1 (spec.lr being its peak). grad_scale (may be null) points to one device             \
     float that multiplies every gradient (global-norm clipping). m and v are the                  \
     optimizer's state buffers of n floats each (unused ones may be null). When skip (a            \
     device float, may be null) is not 0 nothing changes: how a step whose gradients are           \
     not finite is kept from the weights without the host looking. */                              \
  OP(void, optimizer_update, (const OptimizerSpec& spec, const LrSchedule& schedule,               \
                              float* params, const float* grads, float* m, float* v, size_t n,     \
                              const int64_t* step, const float* grad_scale, const float* skip))    \
                                                                                                   \
  /* ---- reductions (cpu_fallback/reductions.cpp, kernels/reductions.cu) */                       \
  /* *out += sum of x[i]^2 (out is one device float). */                                           \
  OP(void, sum_squares, (const float* x, size_t n, float* out))                                    \
  /* *scale = min(1, max_norm / sqrt(*sum_sq)) (both device floats). */                            \
  OP(void, clip_scale, (const float* sum_sq, float max_norm, float* scale))                        \
  /* stats[kStatNonFinite] += number of NaN/Inf values in x. */                                    \
  OP(void, count_nonfinite, (const float* x, size_t n, float* stats))                              \
  /* y += x */                                                                                     \
  OP(void, accumulate, (const float* x, float* y, size_t n))                                       \
  /* *counter += 1 (a device int64, e.g. the optimizer step), unless skip (a device float,         \
     may be null) is not 0. */                                                                     \
  OP(void, increment, (int64_t* counter, const float* skip))                                       \
                                                                                                   \
  /* ---- data (cpu_fallback/data.cpp, kernels/data.cu) */                                         \
  /* out[b, c, p] = (images[i, c, p] / 255 - mean[c]) / std[c] and labels_out[b] = labels[i]    \
     for b < batch, c < channels, p < plane_size, where i = indices[*batch_index * batch + b]      \
     (labels/labels_out may be null; batch_index, a device counter, may be null for 0: how a       \
     captured step reads the next batch at each replay). images are uint8 [count, channels,        \
     plane_size], mean and std float [channels], all on this device. */                            \
  OP(void, gather_batch, (const uint8_t* images, const int32_t* labels,                            \
                          const int32_t* indices, const int64_t* batch_index, int batch,           \
                          int channels, int plane_size, const float* mean, const float* std,       \
                          float* out, int32_t* labels_out))                                        \
  /* out = random affine augmentation of in, both [n, c, h, w] (no aliasing); sample               \
     ids[*batch_index * n + i] (device int32; batch_index may be null for 0) identifies            \
     sample i for the generator together with seed. The per-pixel math is augment_math.h. */       \
  OP(void, augment, (const AugmentSpec& spec, const float* in, float* out, int n, int c,           \
                     int h, int w, const int32_t* sample_ids, const int64_t* batch_index,          \
                     uint64_t seed))
// clang-format on

// What Backend, and the backends' classes, expand the op list with.
#define PLINTH_DECLARE_PURE_VIRTUAL_OP(result, name, parameters) virtual result name parameters = 0;
#define PLINTH_DECLARE_OVERRIDE_OP(result, name, parameters) result name parameters override;

// A recording of the ops that one call queued (a CUDA graph), which replay() queues again,
// with the same arguments, as one launch.
class OpGraph {
 public:
  virtual ~OpGraph() = default;
  virtual void replay() = 0;
  // The kernel launches, copies and fills that one replay queues, those inside cuDNN and
  // cuBLAS included.
  virtual size_t launches() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual DeviceKind kind() const = 0;
  // One line naming the device, e.g. "cpu (OpenBLAS 0.3.21, 2 threads)".
  virtual std::string description() const = 0;
  // Bytes that allocate() could still hand out now: the GPU's free memory, or the host's
  // available memory within any cgroup limit. Plans are checked against it before they
  // allocate (engine/memory_budget.h).
  virtual size_t available_memory() const = 0;
  // The host threads the ops may use: max_threads() is the count the backend was made with
  // (0 where the ops run elsewhere, on a GPU), use_threads() runs them on fewer, or on all
  // again. Results do not depend on the count, so it may change between any two ops
  // (engine/thread_governor.h does, between training steps).
  virtual int max_threads() const { return 0; }
  virtual void use_threads(int threads) {}
  // The activation bytes the executor holds a slice of a batch to: it runs a larger batch
  // slice by slice, each through every layer while its activations stay in the caches (see
  // Executor). 0: whole batches (a GPU wants them). The same on every machine, so that
  // results do not depend on the machine's caches.
  virtual size_t slice_bytes() const { return 0; }

  PLINTH_BACKEND_OPS(PLINTH_DECLARE_PURE_VIRTUAL_OP)

  // Why this backend cannot capture(), or empty when it can.
  virtual std::string capture_unavailable() const;
  // Records the ops that `ops` queues into a graph instead of running them. Every op it
  // calls must be capturable: no download() or synchronize(), nothing that allocates (a
  // convolution shape must have been prepared). reuse (may be null), a graph recorded
  // before from the same ops with other arguments, is updated in place where possible,
  // which is cheaper than a new one. Throws plinth::Error when the backend cannot capture
  // or the capture fails, leaving the backend usable.
  virtual std::unique_ptr<OpGraph> capture(const std::function<void()>& ops,
                                           std::unique_ptr<OpGraph> reuse = nullptr);
};

// The math inside convolutions and GEMMs; tensors, weights and the optimizer stay fp32.
//  fp32: true fp32 (FMA) math;
//  tf32: TF32 tensor cores (10-bit mantissa inputs, fp32 sums);
//  bf16: BF16 tensor cores (8-bit mantissa inputs, fp32 sums): the operands are rounded
//        to bfloat16 inside the call. bfloat16 has fp32's exponent range, so gradients
//        need no loss scaling.
enum class Precision { fp32, tf32, bf16 };

const char* precision_name(Precision p);  // "fp32", "tf32", "bf16"

struct CudaOptions {
  int device_index = 0;
  bool native_conv = false;  // hand-written convolution instead of cuDNN (fp32 only)
  Precision precision = Precision::fp32;
  bool deterministic = false;  // deterministic cuDNN algorithms only
  // Debugging: every launch waits for the device, so that a fault is reported at the launch
  // that caused it (also PLINTH_SYNC_LAUNCHES=1; process-wide once on; no CUDA graphs).
  bool sync_launches = false;
  // Hears each convolution algorithm chosen, and each abandoned at run time (the tool's
  // --verbose); may be empty.
  std::function<void(const std::string&)> log;
  // Tests of the algorithm fallback: the first N runs of each convolution direction's
  // chosen algorithms fail as if cuDNN had refused them.
  int injected_algorithm_failures = 0;
};

// The backends available in this build. make_cuda_backend() throws plinth::Error with a
// one-line reason when CUDA was not built or no usable GPU is present.
std::unique_ptr<Backend> make_cpu_backend(int threads);
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options);

}  // namespace plinth
