// How a convolution is cut into work for the threads, and the scratch memory that work uses.
//
// The batch is split into chunks of consecutive samples, small enough that a chunk's
// column matrix and GEMM output stay in L2. The chunking depends only on the shape, the
// scalar size and the machine's core count (never on the thread count), so the
// backward-filter sum over chunks adds the same numbers in the same order for any number
// of threads: bitwise reproducible results.
//
// Each direction of a stride-1 3x3 convolution runs either as im2col + GEMM (the
// reference) or as Winograd F(2x2, 3x3) (winograd.h); the policy says which, or that
// conv2d_prepare (conv.h) times both on one chunk and keeps the faster.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>

#include "cpu_fallback/aligned_buffer.h"
#include "cpu_fallback/winograd.h"
#include "engine/backend.h"

namespace plinth::cpu {

enum class ConvAlgorithm { gemm, winograd };

enum class ConvPolicy {
  fastest,   // the faster of the two, timed when the shape is prepared (gemm until then)
  gemm,      // im2col + GEMM everywhere
  winograd,  // Winograd wherever the shape allows it
};

// "auto", "gemm", "winograd"
const char* conv_policy_name(ConvPolicy policy);

// The CPU seconds one thread spent on its share of one call, timed on one chunk: forward,
// backward data, backward filter.
struct ConvTiming {
  double gemm[3] = {}, winograd[3] = {};
};

struct ConvPlan {
  ConvShape shape;
  ConvAlgorithm forward = ConvAlgorithm::gemm;
  ConvAlgorithm backward_data = ConvAlgorithm::gemm;
  ConvAlgorithm backward_filter = ConvAlgorithm::gemm;
  bool timed = false;  // the algorithms were chosen by timing them
  ConvTiming timing;
  int chunks = 1;     // the batch is cut into this many runs of consecutive samples
  int max_chunk = 1;  // samples in the largest chunk
  int groups = 1;     // backward-filter partial sums; consecutive chunks share one

  int crs() const { return shape.c * shape.r * shape.s; }
  int pixels() const { return shape.out_h() * shape.out_w(); }
  int chunk_begin(int i) const {
    return static_cast<int>(static_cast<long long>(i) * shape.n / chunks);
  }
  int group_begin(int g) const {
    return static_cast<int>(static_cast<long long>(g) * chunks / groups);
  }
  // Per-thread scratch elements: the column matrix and the [K, chunk*P] GEMM rows (or, for
  // conv_pool_direct's filter gradient, K x 9 taps x 16 lanes).
  size_t col_elems() const { return static_cast<size_t>(crs()) * max_chunk * pixels(); }
  size_t rows_elems() const {
    return static_cast<size_t>(shape.k) * std::max(max_chunk * pixels(), 9 * 16);
  }
  size_t filter_elems() const { return static_cast<size_t>(shape.k) * crs(); }
  bool uses_winograd() const {
    return forward == ConvAlgorithm::winograd || backward_data == ConvAlgorithm::winograd ||
           backward_filter == ConvAlgorithm::winograd;
  }
  size_t winograd_filter_elems() const {
    return kWinogradElems * winograd_stride(static_cast<size_t>(shape.k) * shape.c);
  }
};

class ConvWorkspace {
 public:
  // L2-sized target for one chunk's column matrix plus GEMM rows.
  static constexpr size_t kDefaultChunkBytes = size_t{1} << 20;

  explicit ConvWorkspace(int threads, size_t chunk_bytes = kDefaultChunkBytes,
                         ConvPolicy policy = ConvPolicy::gemm);

  // The threads the ops run on now (use_threads), at most the count the scratch is for.
  int threads() const { return threads_; }
  void use_threads(int threads);
  int cores() const { return cores_; }
  ConvPolicy policy() const { return policy_; }

  // The plan for shape with scalars of elem_size bytes; grows the buffers to fit it the
  // first time a shape is seen, and is a lookup without allocation after that.
  const ConvPlan& prepare(const ConvShape& shape, size_t elem_size);
  // Records the algorithms timed for a prepared shape.
  void choose(const ConvShape& shape, size_t elem_size, const ConvAlgorithm (&algorithms)[3],
              const ConvTiming& timing);

  template <typename T>
  T* col(int thread) const {
    return col_.as<T>(thread * col_stride_);
  }
  template <typename T>
  T* rows(int thread) const {
    return rows_.as<T>(thread * rows_stride_);
  }
  // Backward-filter partial sums of groups 1.. (group 0 sums straight into dw).
  template <typename T>
  T* partial(const ConvPlan& plan, int group) const {
    return partials_.as<T>((group - 1) * plan.filter_elems() * sizeof(T));
  }
  // Winograd: the per-thread tile scratch, and the transformed filter (or, in the filter
  // gradient, one transformed partial sum per group).
  template <typename T>
  T* winograd_scratch(int thread) const {
    return winograd_.as<T>(thread * winograd_stride_);
  }
  template <typename T>
  T* winograd_filter(const ConvPlan& plan, int group = 0) const {
    return winograd_filters_.as<T>(group * plan.winograd_filter_elems() * sizeof(T));
  }

 private:
  struct Entry {
    ConvShape shape;
    size_t elem_size;
    ConvPlan plan;
  };
  ConvPlan make_plan(const ConvShape& shape, size_t elem_size) const;
  ConvPlan& find(const ConvShape& shape, size_t elem_size);

  int max_threads_;  // per-thread scratch is kept for this many
  int threads_;
  size_t chunk_bytes_;
  int cores_;
  ConvPolicy policy_;
  std::deque<Entry> plans_;  // a deque keeps returned plan references valid
  AlignedBuffer col_, rows_, partials_, winograd_, winograd_filters_;
  size_t col_stride_ = 0, rows_stride_ = 0, winograd_stride_ = 0;  // bytes per thread
};

}  // namespace plinth::cpu
