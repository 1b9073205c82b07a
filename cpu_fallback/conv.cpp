#include "cpu_fallback/conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "cpu_fallback/activation.h"
#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/gemm.h"
#include "cpu_fallback/im2col.h"
#include "cpu_fallback/parallel.h"
#include "engine/op_shapes.h"

namespace plinth::cpu {
namespace {

// Runs body(chunk, thread) for every chunk, the chunks spread statically over the threads.
template <typename F>
void for_each_chunk(const ConvWorkspace& ws, int count, F&& body) {
  if (ws.threads() > 1 && count > 1) {
#pragma omp parallel for schedule(static) num_threads(ws.threads())
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

}  // namespace

template <typename T>
void conv2d_forward(ConvWorkspace& ws, const ConvShape& s, const T* x, const T* w, const T* b, T* y,
                    Activation act) {
  const ConvPlan& plan = ws.prepare(s, sizeof(T));
  const ThreadScope scope(ws.threads());
  const int crs = plan.crs(), p = plan.pixels();
  const size_t in_sample = static_cast<size_t>(s.c) * s.h * s.w;
  for_each_chunk_with_scratch<T>(ws, plan, [&](int first, int count, T* col, T* rows) {
    const int cols = count * p;
    im2col(s, x + first * in_sample, count, col);
    if (p >= kPerSamplePixels) {
      for (int j = 0; j < count; ++j) {
        T* out = y + static_cast<size_t>(first + j) * s.k * p;
        gemm<T>(false, false, s.k, p, crs, T(1), w, crs, col + static_cast<size_t>(j) * p, cols,
                T(0), out, p);
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
                        b ? b[k] : T(0), p, y + (static_cast<size_t>(first + j) * s.k + k) * p);
    });
  });
}

template <typename T>
void conv2d_backward_data(ConvWorkspace& ws, const ConvShape& s, const T* dy, const T* w, T* dx) {
  const ConvPlan& plan = ws.prepare(s, sizeof(T));
  const ThreadScope scope(ws.threads());
  const int crs = plan.crs(), p = plan.pixels();
  const size_t in_sample = static_cast<size_t>(s.c) * s.h * s.w;
  for_each_chunk_with_scratch<T>(ws, plan, [&](int first, int count, T* col, T* rows) {
    const int cols = count * p;
    if (p >= kPerSamplePixels) {
      for (int j = 0; j < count; ++j)
        gemm<T>(true, false, crs, p, s.k, T(1), w, crs,
                dy + static_cast<size_t>(first + j) * s.k * p, p, T(0),
                col + static_cast<size_t>(j) * p, cols);
    } else {
      gather_rows(plan, dy, first, count, rows);
      gemm<T>(true, false, crs, cols, s.k, T(1), w, crs, rows, cols, T(0), col, cols);
    }
    col2im(s, col, count, dx + first * in_sample);
  });
}

template <typename T>
void conv2d_backward_filter(ConvWorkspace& ws, const ConvShape& s, const T* x, const T* dy, T* dw) {
  const ConvPlan& plan = ws.prepare(s, sizeof(T));
  const ThreadScope scope(ws.threads());
  const int crs = plan.crs(), p = plan.pixels();
  const size_t in_sample = static_cast<size_t>(s.c) * s.h * s.w;
  // Each group sums its chunks in order into its own partial (group 0 into dw itself).
  for_each_chunk(ws, plan.groups, [&](int g, int thread) {
    T* sum = g == 0 ? dw : ws.partial<T>(plan, g);
    T* col = ws.col<T>(thread);
    T* rows = ws.rows<T>(thread);
    for (int i = plan.group_begin(g); i < plan.group_begin(g + 1); ++i) {
      const int first = plan.chunk_begin(i), count = plan.chunk_begin(i + 1) - first;
      const int cols = count * p;
      im2col(s, x + first * in_sample, count, col);
      const T beta = i == plan.group_begin(g) ? T(0) : T(1);
      if (p >= kPerSamplePixels) {
        for (int j = 0; j < count; ++j)
          gemm<T>(false, true, s.k, crs, p, T(1), dy + static_cast<size_t>(first + j) * s.k * p, p,
                  col + static_cast<size_t>(j) * p, cols, j == 0 ? beta : T(1), sum, crs);
        continue;
      }
      gather_rows(plan, dy, first, count, rows);
      gemm<T>(false, true, s.k, crs, cols, T(1), rows, cols, col, cols, beta, sum, crs);
    }
  });
  // Then the partials are added to dw in group order, in blocks of elements.
  const size_t n = plan.filter_elems();
  constexpr size_t kBlock = 4096;
  const size_t blocks = (n + kBlock - 1) / kBlock;
  auto add_block = [&](size_t blk) {
    const size_t lo = blk * kBlock, hi = std::min(n, lo + kBlock);
    for (int g = 1; g < plan.groups; ++g) {
      const T* part = ws.partial<T>(plan, g);
      for (size_t e = lo; e < hi; ++e) dw[e] += part[e];
    }
  };
  if (plan.groups > 1 && use_threads(ws.threads(), n)) {
#pragma omp parallel for schedule(static) num_threads(ws.threads())
    for (size_t blk = 0; blk < blocks; ++blk) add_block(blk);
  } else if (plan.groups > 1) {
    for (size_t blk = 0; blk < blocks; ++blk) add_block(blk);
  }
}

template void conv2d_forward<float>(ConvWorkspace&, const ConvShape&, const float*, const float*,
                                    const float*, float*, Activation);
template void conv2d_forward<double>(ConvWorkspace&, const ConvShape&, const double*, const double*,
                                     const double*, double*, Activation);
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
  conv_.prepare(shape, sizeof(float));
}

void CpuBackend::conv2d_forward(const ConvShape& shape, const float* x, const float* w,
                                const float* b, float* y, Activation act) {
  check_conv_shape(shape, "conv2d_forward");
  cpu::conv2d_forward(conv_, shape, x, w, b, y, act);
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
