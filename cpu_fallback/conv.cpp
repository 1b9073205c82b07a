#include "cpu_fallback/conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <functional>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "cpu_fallback/activation.h"
#include "cpu_fallback/conv_pool_direct.h"
#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/gemm.h"
#include "cpu_fallback/im2col.h"
#include "cpu_fallback/parallel.h"
#include "cpu_fallback/pool.h"
#include "cpu_fallback/winograd.h"
#include "engine/op_shapes.h"

namespace plinth::cpu {
namespace {

// Every GEMM of a convolution is single-threaded (a scope of 1 thread around each op): the chunks
// are the parallelism, also where there is only one chunk, because OpenBLAS's threaded sgemm does
// not round as its one-threaded one does and the results must not depend on the thread count.
//
// Runs body(chunk, thread) for every chunk, each thread taking the next chunk when it is
// free: on a shared machine a thread that is descheduled for a while leaves its chunks to
// the others instead of holding up the op's end (what a thread computes never depends on
// which thread runs it, so results stay the same).
template <typename F>
void for_each_chunk(const ConvWorkspace& ws, int count, F&& body) {
  if (ws.threads() > 1 && count > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(ws.threads())
    for (int i = 0; i < count; ++i) body(i, omp_get_thread_num());
  } else {
    for (int i = 0; i < count; ++i) body(i, 0);
  }
}

// Runs body(first, count, col, rows) for every chunk of the plan: samples [first,
// first + count) and the running thread's column and GEMM-row scratch.
template <typename T, typename F>
void for_each_chunk_with_scratch(const ConvWorkspace& ws, const ConvPlan& plan, F&& body) {
  for_each_chunk(ws, plan.chunks, [&](int i, int thread) {
    const int first = plan.chunk_begin(i);
    body(first, plan.chunk_begin(i + 1) - first, ws.col<T>(thread), ws.rows<T>(thread));
  });
}

// rows[k, j*P + p] = dy[first + j, k, p]: the chunk's output gradient as one GEMM operand.
template <typename T>
void gather_rows(const ConvPlan& plan, const T* dy, int first, int count, T* rows) {
  const int k = plan.shape.k, p = plan.pixels();
  const size_t ld = static_cast<size_t>(count) * p;
  for (int j = 0; j < count; ++j)
    for (int c = 0; c < k; ++c)
      copy_row(dy + (static_cast<size_t>(first + j) * k + c) * p, p,
               rows + c * ld + static_cast<size_t>(j) * p);
}

// dst[q] = act(src[q] + bias) over one output plane; dst may be src.
template <typename T, typename Kind>
void bias_activate(Kind kind, const T* src, T bias, int p, T* dst) {
  for (int q = 0; q < p; ++q) dst[q] = activate(kind(), src[q] + bias);
}

// With this many output pixels per sample a per-sample GEMM is wide enough to run at full
// speed, and it reads and writes NCHW in place: no copy of dy into GEMM rows and no scatter
// of the GEMM output (the seed CNN's first layer has 676).
constexpr int kPerSamplePixels = 256;

size_t input_sample(const ConvShape& s) { return static_cast<size_t>(s.c) * s.h * s.w; }
size_t output_sample(const ConvShape& s) {
  return static_cast<size_t>(s.k) * s.out_h() * s.out_w();
}

// One chunk of `count` samples of each direction as im2col + GEMM; x, y, dx and dy point to
// the chunk's first sample.
template <typename T>
void gemm_forward_chunk(const ConvPlan& plan, const T* x, const T* w, const T* b, T* y,
                        Activation act, int count, T* col, T* rows) {
  const ConvShape& s = plan.shape;
  const int crs = plan.crs(), p = plan.pixels(), cols = count * p;
  im2col(s, x, count, col);
  if (p >= kPerSamplePixels) {
    for (int j = 0; j < count; ++j) {
      T* out = y + static_cast<size_t>(j) * s.k * p;
      gemm<T>(false, false, s.k, p, crs, T(1), w, crs, col + static_cast<size_t>(j) * p, cols, T(0),
              out, p);
      with_activation(act, [&](auto kind) {
        for (int k = 0; k < s.k; ++k) {
          T* plane = out + static_cast<size_t>(k) * p;
          bias_activate(kind, plane, b ? b[k] : T(0), p, plane);
        }
      });
    }
    return;
  }
  gemm<T>(false, false, s.k, cols, crs, T(1), w, crs, col, cols, T(0), rows, cols);
  // Scatter to NCHW with the bias and activation fused, while the rows are in cache.
  with_activation(act, [&](auto kind) {
    for (int j = 0; j < count; ++j)
      for (int k = 0; k < s.k; ++k)
        bias_activate(kind, rows + static_cast<size_t>(k) * cols + static_cast<size_t>(j) * p,
                      b ? b[k] : T(0), p, y + (static_cast<size_t>(j) * s.k + k) * p);
  });
}

// The outputs a max pool reads: the rows and columns its windows cover, from the top left.
// A stride-1 convolution without padding computes only those under fusion (the seed CNN's
// conv2 has 11x11 outputs, of which pool2 reads 10x10: 17% of its work). Its GEMM columns
// are then h * w per sample, im2col_top_left's.
struct PooledWindow {
  int h, w;
  bool cropped;
  int pixels() const { return h * w; }
};

PooledWindow pooled_window(const ConvShape& s, const PoolShape& pool) {
  const int h = (pool.out_h() - 1) * pool.stride + pool.size;
  const int w = (pool.out_w() - 1) * pool.stride + pool.size;
  if (s.stride == 1 && s.pad == 0 && (h < s.out_h() || w < s.out_w())) return {h, w, true};
  return {s.out_h(), s.out_w(), false};
}

template <typename T>
void unfold(const ConvShape& s, const PooledWindow& win, const T* x, int count, T* col) {
  if (win.cropped)
    im2col_top_left(s, x, count, col, win.h, win.w);
  else
    im2col(s, x, count, col);
}

// The chunk's forward followed by the max pool over it, each output plane pooled while it
// is in cache: the convolution's output is never written whole, and only the part the pool
// reads is computed. The same arithmetic as gemm_forward_chunk then maxpool_forward (the same
// bits where nothing is cropped).
template <typename T>
void gemm_forward_pool_chunk(const ConvPlan& plan, const PoolShape& pool, const T* x, const T* w,
                             const T* b, Activation act, int count, T* col, T* rows, T* pool_y,
                             int32_t* argmax) {
  const ConvShape& s = plan.shape;
  const PooledWindow win = pooled_window(s, pool);
  const int crs = plan.crs(), p = win.pixels(), cols = count * p;
  const size_t pooled = static_cast<size_t>(pool.out_h()) * pool.out_w();
  PoolShape plane_pool = pool;  // over the computed window: the same outputs
  plane_pool.h = win.h;
  plane_pool.w = win.w;
  // Sample j's plane k lies at planes + k * k_stride.
  auto pool_sample = [&](int j, T* planes, size_t k_stride) {
    with_activation(act, [&](auto kind) {
      for (int k = 0; k < s.k; ++k) {
        T* plane = planes + k * k_stride;
        bias_activate(kind, plane, b ? b[k] : T(0), p, plane);
        const size_t out = (static_cast<size_t>(j) * s.k + k) * pooled;
        maxpool_plane(plane_pool, plane, pool_y + out, argmax + out, s.out_w());
      }
    });
  };
  unfold(s, win, x, count, col);
  if (p >= kPerSamplePixels) {  // one sample's planes at a time in rows
    for (int j = 0; j < count; ++j) {
      gemm<T>(false, false, s.k, p, crs, T(1), w, crs, col + static_cast<size_t>(j) * p, cols, T(0),
              rows, p);
      pool_sample(j, rows, p);
    }
    return;
  }
  gemm<T>(false, false, s.k, cols, crs, T(1), w, crs, col, cols, T(0), rows, cols);
  for (int j = 0; j < count; ++j) pool_sample(j, rows + static_cast<size_t>(j) * p, cols);
}

template <typename T>
void gemm_backward_data_chunk(const ConvPlan& plan, const T* dy, const T* w, T* dx, int count,
                              T* col, T* rows) {
  const ConvShape& s = plan.shape;
  const int crs = plan.crs(), p = plan.pixels(), cols = count * p;
  if (p >= kPerSamplePixels) {
    for (int j = 0; j < count; ++j)
      gemm<T>(true, false, crs, p, s.k, T(1), w, crs, dy + static_cast<size_t>(j) * s.k * p, p,
              T(0), col + static_cast<size_t>(j) * p, cols);
  } else {
    gather_rows(plan, dy, 0, count, rows);
    gemm<T>(true, false, crs, cols, s.k, T(1), w, crs, rows, cols, T(0), col, cols);
  }
  col2im(s, col, count, dx);
}

// sum = beta * sum + the chunk's filter gradient.
template <typename T>
void gemm_backward_filter_chunk(const ConvPlan& plan, const T* x, const T* dy, int count, T beta,
                                T* sum, T* col, T* rows) {
  const ConvShape& s = plan.shape;
  const int crs = plan.crs(), p = plan.pixels(), cols = count * p;
  im2col(s, x, count, col);
  if (p >= kPerSamplePixels) {
    for (int j = 0; j < count; ++j)
      gemm<T>(false, true, s.k, crs, p, T(1), dy + static_cast<size_t>(j) * s.k * p, p,
              col + static_cast<size_t>(j) * p, cols, j == 0 ? beta : T(1), sum, crs);
    return;
  }
  gather_rows(plan, dy, 0, count, rows);
  gemm<T>(false, true, s.k, crs, cols, T(1), rows, cols, col, cols, beta, sum, crs);
}

// rows[k, j*P + q] = the chunk's convolution output gradient: the pool's gradient times the
// ReLU's derivative at each window's maximum (y > 0), scattered through argmax, as
// maxpool_relu_backward computes it (the same additions in the same order).
template <typename T>
void pooled_gradient_rows(const ConvPlan& plan, const PoolShape& pool, const PooledWindow& win,
                          const T* dy, const int32_t* argmax, const T* y, int count, T* rows) {
  const int k = plan.shape.k, p = win.pixels(), ow = plan.shape.out_w();
  const size_t cols = static_cast<size_t>(count) * p;
  const size_t pooled = static_cast<size_t>(pool.out_h()) * pool.out_w();
  std::fill_n(rows, k * cols, T(0));
  for (int j = 0; j < count; ++j)
    for (int c = 0; c < k; ++c) {
      T* plane = rows + c * cols + static_cast<size_t>(j) * p;
      const size_t at = (static_cast<size_t>(j) * k + c) * pooled;
#if defined(__AVX512F__)
      // Windows that do not overlap have maxima at distinct positions: sixteen at a time
      // with a scatter, each position written once onto its zero.
      if constexpr (std::is_same_v<T, float>)
        if (pool.stride >= pool.size && plan.pixels() < (1 << 16)) {
          // A position's row is (index + 0.5) / ow rounded down, exactly in float for the
          // indices of a plane below 2^16.
          const __m512 inverse = _mm512_set1_ps(1.0f / static_cast<float>(ow));
          const __m512i width = _mm512_set1_epi32(ow), kept = _mm512_set1_epi32(win.w);
          for (size_t o = 0; o < pooled; o += 16) {
            const __mmask16 lanes =
                static_cast<__mmask16>(pooled - o >= 16 ? 0xffff : (1u << (pooled - o)) - 1);
            const __m512 g = _mm512_maskz_loadu_ps(lanes, dy + at + o);
            const __mmask16 live = _mm512_mask_cmp_ps_mask(
                lanes, _mm512_maskz_loadu_ps(lanes, y + at + o), _mm512_setzero_ps(), _CMP_GT_OQ);
            __m512i index = _mm512_maskz_loadu_epi32(lanes, argmax + at + o);
            if (win.cropped) {
              // The masked conversions: GCC 12 warns of the plain ones' undefined start.
              const __m512i row = _mm512_maskz_cvttps_epi32(
                  lanes, _mm512_mul_ps(_mm512_add_ps(_mm512_maskz_cvtepi32_ps(lanes, index),
                                                     _mm512_set1_ps(0.5f)),
                                       inverse));
              index = _mm512_add_epi32(_mm512_mullo_epi32(row, kept),
                                       _mm512_sub_epi32(index, _mm512_mullo_epi32(row, width)));
            }
            _mm512_mask_i32scatter_ps(plane, lanes, index, _mm512_maskz_mov_ps(live, g), 4);
          }
          continue;
        }
#endif
      for (size_t o = 0; o < pooled; ++o) {
        const int32_t full = argmax[at + o];
        plane[full / ow * win.w + full % ow] += y[at + o] > T(0) ? dy[at + o] : T(0);
      }
    }
}

// One chunk of the fused backward: the convolution's output gradient built in GEMM rows from
// the pool's, then the filter gradient (sum = beta * sum + the chunk's) and the data gradient
// from those rows. sum and dx may be null.
template <typename T>
void gemm_pool_backward_chunk(const ConvPlan& plan, const PoolShape& pool, const T* x, const T* w,
                              const T* dy, const int32_t* argmax, const T* y, int count, T beta,
                              T* sum, T* dx, T* col, T* rows) {
  const ConvShape& s = plan.shape;
  const PooledWindow win = pooled_window(s, pool);
  const int crs = plan.crs(), p = win.pixels(), cols = count * p;
  // Wide planes: one GEMM per sample, as the unfused ops run them (a chunk-wide filter GEMM
  // with a long inner dimension ran at a third of the speed).
  const int pieces = p >= kPerSamplePixels ? count : 1, width = cols / pieces;
  pooled_gradient_rows(plan, pool, win, dy, argmax, y, count, rows);
  if (sum) {
    unfold(s, win, x, count, col);
    for (int j = 0; j < pieces; ++j)
      gemm<T>(false, true, s.k, crs, width, T(1), rows + static_cast<size_t>(j) * width, cols,
              col + static_cast<size_t>(j) * width, cols, j == 0 ? beta : T(1), sum, crs);
  }
  if (dx) {
    for (int j = 0; j < pieces; ++j)
      gemm<T>(true, false, crs, width, s.k, T(1), w, crs, rows + static_cast<size_t>(j) * width,
              cols, T(0), col + static_cast<size_t>(j) * width, cols);
    if (win.cropped)
      col2im_top_left(s, col, count, dx, win.h, win.w);
    else
      col2im(s, col, count, dx);
  }
}

// db[c] = the sum of the convolution's output gradient over channel c, taken from the pool's:
// the scatter only moves each dy * (y > 0) to its window's maximum. In float, sixteen float
// lanes per sample added to the channel's double total in sample order (vectorised; LaneSum's
// double lanes were 5% of a step); in double, one running sum: GCC 12.2 at -O3 vectorises a
// lane loop (or LaneSum) of double terms chosen by a comparison into wrong sums (seen
// 2026-12-02 with AVX2 and AVX-512; right with -fno-tree-loop-vectorize).
template <typename T>
void pooled_bias_gradient(int threads, const PoolShape& pool, const T* dy, const T* y, T* db) {
  constexpr int kLanes = 16;
  const int spatial = pool.out_h() * pool.out_w();
  parallel_for(threads, pool.c, static_cast<size_t>(pool.n) * spatial, [&](size_t c) {
    double total = 0;
    for (int i = 0; i < pool.n; ++i) {
      const size_t at = (static_cast<size_t>(i) * pool.c + c) * spatial;
      const T* __restrict g = dy + at;
      const T* __restrict v = y + at;
      if constexpr (std::is_same_v<T, float>) {
        float lane[kLanes] = {};
#if defined(__AVX512F__)
        // The same lanes, the last partial run too in one masked step (a scalar tail was most
        // of the time for pooled planes of 169 and 25).
        __m512 sum = _mm512_setzero_ps();
        for (int q = 0; q < spatial; q += kLanes) {
          const __mmask16 in =
              static_cast<__mmask16>(spatial - q >= kLanes ? 0xffff : (1u << (spatial - q)) - 1);
          const __mmask16 live = _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, v + q),
                                                         _mm512_setzero_ps(), _CMP_GT_OQ);
          sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(live, g + q));
        }
        _mm512_storeu_ps(lane, sum);
#else
        int q = 0;
        for (; q + kLanes <= spatial; q += kLanes)
          for (int l = 0; l < kLanes; ++l) lane[l] += v[q + l] > 0.0f ? g[q + l] : 0.0f;
        for (int l = 0; q < spatial; ++q, ++l) lane[l] += v[q] > 0.0f ? g[q] : 0.0f;
#endif
        for (int l = 0; l < kLanes; ++l) total += static_cast<double>(lane[l]);
      } else {
        for (int q = 0; q < spatial; ++q) total += v[q] > T(0) ? g[q] : T(0);
      }
    }
    db[c] = static_cast<T>(total);
  });
}

// dst[e] += the partial sums of groups 1.. in group order, in blocks of elements.
template <typename T>
void add_partials(const ConvWorkspace& ws, int groups, size_t n, T* dst,
                  const std::function<const T*(int)>& partial) {
  if (groups < 2) return;
  constexpr size_t kBlock = 4096;
  const size_t blocks = (n + kBlock - 1) / kBlock;
  auto add_block = [&](size_t blk) {
    const size_t lo = blk * kBlock, hi = std::min(n, lo + kBlock);
    for (int g = 1; g < groups; ++g) {
      const T* part = partial(g);
      for (size_t e = lo; e < hi; ++e) dst[e] += part[e];
    }
  };
  if (use_threads(ws.threads(), n)) {
#pragma omp parallel for schedule(static) num_threads(ws.threads())
    for (size_t blk = 0; blk < blocks; ++blk) add_block(blk);
  } else {
    for (size_t blk = 0; blk < blocks; ++blk) add_block(blk);
  }
}

// Winograd rounds differently from the reference, so auto takes it only when it is
// clearly faster; this also keeps near ties from going one way in one process and the other
// in the next.
constexpr double kWinogradMargin = 0.75;

// Below this many input or output channels Winograd's 16 GEMMs over the channels are too
// thin to pay (measured 4-8x slower than im2col + GEMM with one input channel): auto keeps
// the reference without timing.
constexpr int kWinogradMinChannels = 8;

struct TimedChoice {
  ConvAlgorithm algorithms[3];
  ConvTiming timing;
};

// This thread's CPU seconds so far: unlike the wall clock, it does not count the time the
// thread waits while the machine's other work runs, so timings stay comparable under load.
double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The fastest of a few runs of each of two alternatives, run in turns so that anything
// passing on the machine (cache pollution, frequency changes) slows both alike.
template <typename A, typename B>
std::pair<double, double> time_both(A&& a, B&& b) {
  constexpr int kRuns = 5;
  auto seconds = [](auto&& run) {
    const double start = thread_seconds();
    run();
    return thread_seconds() - start;
  };
  a();
  b();
  double best_a = 1e30, best_b = 1e30;
  for (int i = 0; i < kRuns; ++i) {
    best_a = std::min(best_a, seconds(a));
    best_b = std::min(best_b, seconds(b));
  }
  return {best_a, best_b};
}

// The algorithms of each direction, timed: one chunk of each direction with each algorithm on this
// thread, as each thread runs them; Winograd's per-call transforms of the filter are counted once
// per call.
template <typename T>
TimedChoice time_algorithms(const ConvWorkspace& ws, const ConvPlan& plan) {
  const ConvShape& s = plan.shape;
  const int count = plan.max_chunk;
  std::vector<T> x(count * input_sample(s)), y(count * output_sample(s)), w(s.weight_elements()),
      b(s.k);
  for (std::vector<T>* v : {&x, &y, &w, &b})
    for (size_t i = 0; i < v->size(); ++i) (*v)[i] = T(0.01) * static_cast<T>(int(i * 7 % 13) - 6);
  const ThreadScope scope(1);
  T* col = ws.col<T>(0);
  T* rows = ws.rows<T>(0);
  T* scratch = ws.winograd_scratch<T>(0);
  T* u = ws.winograd_filter<T>(plan);
  // The faster over the chunks each core runs in one call, Winograd's once-per-call
  // transform of the filter (or of the summed gradient) included.
  // Per core, not per thread, so that the choice (and with it the rounding) does not depend
  // on the thread count.
  const double chunks_per_core = std::max(1.0, double(plan.chunks) / ws.cores());
  ConvTiming timing;
  int direction = 0;
  auto pick = [&](auto&& once, auto&& gemm_chunk, auto&& winograd_chunk) {
    const double once_time = time_both(once, [] {}).first;
    const auto [gemm_time, winograd_time] = time_both(gemm_chunk, winograd_chunk);
    timing.gemm[direction] = gemm_time * chunks_per_core;
    timing.winograd[direction++] = once_time + winograd_time * chunks_per_core;
    return timing.winograd[direction - 1] < kWinogradMargin * timing.gemm[direction - 1]
               ? ConvAlgorithm::winograd
               : ConvAlgorithm::gemm;
  };
  const WinogradGrid fg = forward_grid(s), bg = backward_data_grid(s);
  const ConvAlgorithm forward =
      pick([&] { winograd_filter(s, w.data(), false, u); },
           [&] {
             gemm_forward_chunk(plan, x.data(), w.data(), b.data(), y.data(), Activation::relu,
                                count, col, rows);
           },
           [&] {
             winograd_conv_chunk(fg, s.c, s.k, u, x.data(), count, b.data(), Activation::relu,
                                 y.data(), scratch);
           });
  const ConvAlgorithm backward_data =
      pick([&] { winograd_filter(s, w.data(), true, u); },
           [&] { gemm_backward_data_chunk(plan, y.data(), w.data(), x.data(), count, col, rows); },
           [&] {
             winograd_conv_chunk(bg, s.k, s.c, u, y.data(), count, static_cast<const T*>(nullptr),
                                 Activation::none, x.data(), scratch);
           });
  const ConvAlgorithm backward_filter =
      pick([&] { winograd_filter_gradient_finish(s, u, w.data()); },
           [&] {
             gemm_backward_filter_chunk(plan, x.data(), y.data(), count, T(0), w.data(), col, rows);
           },
           [&] { winograd_filter_gradient_chunk(s, x.data(), y.data(), count, T(0), u, scratch); });
  return {{forward, backward_data, backward_filter}, timing};
}

// The choices made in this process, by shape and chunking: every workspace in a process
// runs a shape with the same algorithms (so results do not depend on the thread count or on
// which backend timed first), and a shape is timed once.
struct TimedShape {
  ConvShape shape;
  size_t elem_size;
  int chunks, max_chunk;
  TimedChoice choice;
};

template <typename T>
TimedChoice process_choice(const ConvWorkspace& ws, const ConvPlan& plan) {
  static std::mutex mutex;
  static std::vector<TimedShape> chosen;
  const std::lock_guard<std::mutex> lock(mutex);
  for (const TimedShape& t : chosen)
    if (t.shape == plan.shape && t.elem_size == sizeof(T) && t.chunks == plan.chunks &&
        t.max_chunk == plan.max_chunk)
      return t.choice;
  const TimedChoice choice = time_algorithms<T>(ws, plan);
  chosen.push_back({plan.shape, sizeof(T), plan.chunks, plan.max_chunk, choice});
  return choice;
}

}  // namespace

template <typename T>
void conv2d_prepare(ConvWorkspace& ws, const ConvShape& s) {
  const ConvPlan& plan = ws.prepare(s, sizeof(T));
  if (ws.policy() != ConvPolicy::fastest || plan.timed || !winograd_fits(s) ||
      std::min(s.c, s.k) < kWinogradMinChannels)
    return;
  const TimedChoice choice = process_choice<T>(ws, plan);
  ws.choose(s, sizeof(T), choice.algorithms, choice.timing);
}

template <typename T>
void conv2d_forward(ConvWorkspace& ws, const ConvShape& s, const T* x, const T* w, const T* b, T* y,
                    Activation act) {
  const ConvPlan& plan = ws.prepare(s, sizeof(T));
  const ThreadScope scope(1);  // one-threaded GEMMs (above)
  const size_t in = input_sample(s), out = output_sample(s);
  if (plan.forward == ConvAlgorithm::winograd) {
    T* u = ws.winograd_filter<T>(plan);
    winograd_filter(s, w, false, u);
    const WinogradGrid grid = forward_grid(s);
    for_each_chunk(ws, plan.chunks, [&](int i, int thread) {
      const int first = plan.chunk_begin(i), count = plan.chunk_begin(i + 1) - first;
      winograd_conv_chunk(grid, s.c, s.k, u, x + first * in, count, b, act, y + first * out,
                          ws.winograd_scratch<T>(thread));
    });
    return;
  }
  for_each_chunk_with_scratch<T>(ws, plan, [&](int first, int count, T* col, T* rows) {
    gemm_forward_chunk(plan, x + first * in, w, b, y + first * out, act, count, col, rows);
  });
}

template <typename T>
void conv2d_maxpool_forward(ConvWorkspace& ws, const ConvShape& s, const PoolShape& pool,
                            const T* x, const T* w, const T* b, Activation act, T* conv_y,
                            T* pool_y, int32_t* argmax) {
  const ConvPlan& plan = ws.prepare(s, sizeof(T));
  if (plan.forward == ConvAlgorithm::winograd) {  // its tiles are not whole planes
    conv2d_forward(ws, s, x, w, b, conv_y, act);
    maxpool_forward(ws.threads(), pool, conv_y, pool_y, argmax);
    return;
  }
  if constexpr (std::is_same_v<T, float>)
    if (conv_pool_direct_fits(s, pool, act)) {  // a first layer: in registers, the same bits
      for_each_chunk(ws, plan.chunks, [&](int i, int) {
        const int first = plan.chunk_begin(i);
        conv_pool_direct(s, pool, x, w, b, act, first, plan.chunk_begin(i + 1) - first, pool_y,
                         argmax);
      });
      return;
    }
  const ThreadScope scope(1);  // one-threaded GEMMs (above)
  const size_t in = input_sample(s),
               pooled = static_cast<size_t>(s.k) * pool.out_h() * pool.out_w();
  for_each_chunk_with_scratch<T>(ws, plan, [&](int first, int count, T* col, T* rows) {
    gemm_forward_pool_chunk(plan, pool, x + first * in, w, b, act, count, col, rows,
                            pool_y + first * pooled, argmax + first * pooled);
  });
}

template <typename T>
void conv2d_maxpool_relu_backward(ConvWorkspace& ws, const ConvShape& s, const PoolShape& pool,
                                  const T* x, const T* w, const T* pool_dy, const int32_t* argmax,
                                  const T* pool_y, T* conv_dy, T* dx, T* dw, T* db) {
  const ConvPlan& plan = ws.prepare(s, sizeof(T));
  if (plan.backward_data == ConvAlgorithm::winograd ||
      plan.backward_filter == ConvAlgorithm::winograd) {  // the ops one after the other
    maxpool_relu_backward(ws.threads(), pool, pool_dy, argmax, pool_y, conv_dy, db);
    if (dw) conv2d_backward_filter(ws, s, x, conv_dy, dw);
    if (dx) conv2d_backward_data(ws, s, conv_dy, w, dx);
    return;
  }
  const ThreadScope scope(1);  // one-threaded GEMMs (above)
  const size_t in = input_sample(s),
               pooled = static_cast<size_t>(s.k) * pool.out_h() * pool.out_w();
  // As conv2d_backward_filter: each group sums its chunks in order (group 0 into dw), then
  // the groups' sums are added in group order, for bits that do not depend on the threads.
  auto sum_of = [&](int g) -> T* {
    if (!dw) return nullptr;
    return g == 0 ? dw : ws.partial<T>(plan, g);
  };
  // A first layer (no data gradient) whose forward ran in registers: its filter gradient too.
  bool direct = false;
  if constexpr (std::is_same_v<T, float>)
    direct = !dx && dw && conv_pool_direct_fits(s, pool, Activation::relu);
  for_each_chunk(ws, plan.groups, [&](int g, int thread) {
    for (int i = plan.group_begin(g); i < plan.group_begin(g + 1); ++i) {
      const int first = plan.chunk_begin(i), count = plan.chunk_begin(i + 1) - first;
      const T beta = i == plan.group_begin(g) ? T(0) : T(1);
      if constexpr (std::is_same_v<T, float>)
        if (direct) {
          conv_pool_direct_filter_gradient(s, pool, x, pool_dy, argmax, pool_y, first, count, beta,
                                           sum_of(g), ws.rows<T>(thread));
          continue;
        }
      gemm_pool_backward_chunk(plan, pool, x + first * in, w, pool_dy + first * pooled,
                               argmax + first * pooled, pool_y + first * pooled, count, beta,
                               sum_of(g), dx ? dx + first * in : nullptr, ws.col<T>(thread),
                               ws.rows<T>(thread));
    }
  });
  if (dw)
    add_partials<T>(ws, plan.groups, plan.filter_elems(), dw,
                    [&](int g) -> const T* { return sum_of(g); });
  if (db) pooled_bias_gradient(ws.threads(), pool, pool_dy, pool_y, db);
}

template <typename T>
void conv2d_backward_data(ConvWorkspace& ws, const ConvShape& s, const T* dy, const T* w, T* dx) {
  const ConvPlan& plan = ws.prepare(s, sizeof(T));
  const ThreadScope scope(1);  // one-threaded GEMMs (above)
  const size_t in = input_sample(s), out = output_sample(s);
  if (plan.backward_data == ConvAlgorithm::winograd) {
    T* u = ws.winograd_filter<T>(plan);
    winograd_filter(s, w, true, u);
    const WinogradGrid grid = backward_data_grid(s);
    for_each_chunk(ws, plan.chunks, [&](int i, int thread) {
      const int first = plan.chunk_begin(i), count = plan.chunk_begin(i + 1) - first;
      winograd_conv_chunk(grid, s.k, s.c, u, dy + first * out, count,
                          static_cast<const T*>(nullptr), Activation::none, dx + first * in,
                          ws.winograd_scratch<T>(thread));
    });
    return;
  }
  for_each_chunk_with_scratch<T>(ws, plan, [&](int first, int count, T* col, T* rows) {
    gemm_backward_data_chunk(plan, dy + first * out, w, dx + first * in, count, col, rows);
  });
}

template <typename T>
void conv2d_backward_filter(ConvWorkspace& ws, const ConvShape& s, const T* x, const T* dy, T* dw) {
  const ConvPlan& plan = ws.prepare(s, sizeof(T));
  const ThreadScope scope(1);  // one-threaded GEMMs (above)
  const size_t in = input_sample(s), out = output_sample(s);
  const bool winograd = plan.backward_filter == ConvAlgorithm::winograd;
  // Each group sums its chunks in order into its own partial (group 0 into dw itself, or
  // into Winograd's first transformed sum).
  auto sum_of = [&](int g) -> T* {
    if (winograd) return ws.winograd_filter<T>(plan, g);
    return g == 0 ? dw : ws.partial<T>(plan, g);
  };
  for_each_chunk(ws, plan.groups, [&](int g, int thread) {
    for (int i = plan.group_begin(g); i < plan.group_begin(g + 1); ++i) {
      const int first = plan.chunk_begin(i), count = plan.chunk_begin(i + 1) - first;
      const T beta = i == plan.group_begin(g) ? T(0) : T(1);
      if (winograd)
        winograd_filter_gradient_chunk(s, x + first * in, dy + first * out, count, beta, sum_of(g),
                                       ws.winograd_scratch<T>(thread));
      else
        gemm_backward_filter_chunk(plan, x + first * in, dy + first * out, count, beta, sum_of(g),
                                   ws.col<T>(thread), ws.rows<T>(thread));
    }
  });
  // Then the partials are added to the first in group order.
  const size_t n = winograd ? plan.winograd_filter_elems() : plan.filter_elems();
  add_partials<T>(ws, plan.groups, n, sum_of(0), [&](int g) -> const T* { return sum_of(g); });
  if (winograd) winograd_filter_gradient_finish(s, sum_of(0), dw);
}

template void conv2d_prepare<float>(ConvWorkspace&, const ConvShape&);
template void conv2d_prepare<double>(ConvWorkspace&, const ConvShape&);
template void conv2d_forward<float>(ConvWorkspace&, const ConvShape&, const float*, const float*,
                                    const float*, float*, Activation);
template void conv2d_forward<double>(ConvWorkspace&, const ConvShape&, const double*, const double*,
                                     const double*, double*, Activation);
template void conv2d_maxpool_forward<float>(ConvWorkspace&, const ConvShape&, const PoolShape&,
                                            const float*, const float*, const float*, Activation,
                                            float*, float*, int32_t*);
template void conv2d_maxpool_forward<double>(ConvWorkspace&, const ConvShape&, const PoolShape&,
                                             const double*, const double*, const double*,
                                             Activation, double*, double*, int32_t*);
template void conv2d_maxpool_relu_backward<float>(ConvWorkspace&, const ConvShape&,
                                                  const PoolShape&, const float*, const float*,
                                                  const float*, const int32_t*, const float*,
                                                  float*, float*, float*, float*);
template void conv2d_maxpool_relu_backward<double>(ConvWorkspace&, const ConvShape&,
                                                   const PoolShape&, const double*, const double*,
                                                   const double*, const int32_t*, const double*,
                                                   double*, double*, double*, double*);
template void conv2d_backward_data<float>(ConvWorkspace&, const ConvShape&, const float*,
                                          const float*, float*);
template void conv2d_backward_data<double>(ConvWorkspace&, const ConvShape&, const double*,
                                           const double*, double*);
template void conv2d_backward_filter<float>(ConvWorkspace&, const ConvShape&, const float*,
                                            const float*, float*);
template void conv2d_backward_filter<double>(ConvWorkspace&, const ConvShape&, const double*,
                                             const double*, double*);

}  // namespace plinth::cpu

namespace plinth {

void CpuBackend::conv2d_prepare(const ConvShape& shape) {
  check_conv_shape(shape, "conv2d_prepare");
  cpu::conv2d_prepare<float>(conv_, shape);
}

void CpuBackend::conv2d_forward(const ConvShape& shape, const float* x, const float* w,
                                const float* b, float* y, Activation act) {
  check_conv_shape(shape, "conv2d_forward");
  cpu::conv2d_forward(conv_, shape, x, w, b, y, act);
}

void CpuBackend::conv2d_maxpool_forward(const ConvShape& conv, const PoolShape& pool,
                                        const float* x, const float* w, const float* b,
                                        Activation act, float* conv_y, float* pool_y,
                                        int32_t* argmax) {
  check_conv_pool_shapes(conv, pool, "conv2d_maxpool_forward");
  cpu::conv2d_maxpool_forward(conv_, conv, pool, x, w, b, act, conv_y, pool_y, argmax);
}

void CpuBackend::conv2d_maxpool_relu_backward(const ConvShape& conv, const PoolShape& pool,
                                              const float* x, const float* w, const float* pool_dy,
                                              const int32_t* argmax, const float* pool_y,
                                              float* conv_dy, float* dx, float* dw, float* db) {
  check_conv_pool_shapes(conv, pool, "conv2d_maxpool_relu_backward");
  cpu::conv2d_maxpool_relu_backward(conv_, conv, pool, x, w, pool_dy, argmax, pool_y, conv_dy, dx,
                                    dw, db);
}

void CpuBackend::conv2d_backward_data(const ConvShape& shape, const float* dy, const float* w,
                                      float* dx) {
  check_conv_shape(shape, "conv2d_backward_data");
  cpu::conv2d_backward_data(conv_, shape, dy, w, dx);
}

void CpuBackend::conv2d_backward_filter(const ConvShape& shape, const float* x, const float* dy,
                                        float* dw) {
  check_conv_shape(shape, "conv2d_backward_filter");
  cpu::conv2d_backward_filter(conv_, shape, x, dy, dw);
}

}  // namespace plinth
