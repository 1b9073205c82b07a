#include "cpu_fallback/conv_workspace.h"

#include <omp.h>

#include <algorithm>

#include "cpu_fallback/winograd.h"
#include "engine/op_shapes.h"

namespace plinth::cpu {
namespace {

// Enough backward-filter partial sums to keep every core busy, few enough that their
// memory stays modest for wide layers.
constexpr int kMaxGroups = 16;
constexpr size_t kPartialBudgetBytes = size_t{64} << 20;

size_t round_up(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace

const char* conv_policy_name(ConvPolicy policy) {
  switch (policy) {
    case ConvPolicy::gemm:
      return "gemm";
    case ConvPolicy::winograd:
      return "winograd";
    default:
      return "auto";
  }
}

ConvWorkspace::ConvWorkspace(int threads, size_t chunk_bytes, ConvPolicy policy)
    : max_threads_(std::max(1, threads)),
      threads_(max_threads_),
      chunk_bytes_(std::max<size_t>(1, chunk_bytes)),
      cores_(std::max(1, omp_get_num_procs())),
      policy_(policy) {}

void ConvWorkspace::use_threads(int threads) { threads_ = std::clamp(threads, 1, max_threads_); }

ConvPlan ConvWorkspace::make_plan(const ConvShape& s, size_t elem_size) const {
  // The plan's int arithmetic (taps, pixels) relies on a valid shape; the templates may be
  // called directly (the tests do), so the workspace checks as well as the backend.
  check_conv_shape(s, "cpu conv2d");
  ConvPlan plan;
  plan.shape = s;
  const size_t sample_bytes = static_cast<size_t>(plan.crs() + s.k) * plan.pixels() * elem_size;
  const int per_chunk = static_cast<int>(std::clamp<size_t>(chunk_bytes_ / sample_bytes, 1, s.n));
  // A multiple of the core count balances the threads when they use every core.
  int chunks = (s.n + per_chunk - 1) / per_chunk;
  chunks = std::min(s.n, (chunks + cores_ - 1) / cores_ * cores_);
  plan.chunks = chunks;
  plan.max_chunk = (s.n + chunks - 1) / chunks;
  const size_t filter_bytes = plan.filter_elems() * elem_size;
  const int affordable = static_cast<int>(std::max<size_t>(1, kPartialBudgetBytes / filter_bytes));
  plan.groups = std::min(chunks, std::max(cores_, std::min(kMaxGroups, affordable)));
  if (policy_ == ConvPolicy::winograd && winograd_fits(s))
    plan.forward = plan.backward_data = plan.backward_filter = ConvAlgorithm::winograd;
  return plan;
}

ConvPlan& ConvWorkspace::find(const ConvShape& shape, size_t elem_size) {
  for (Entry& e : plans_)
    if (e.shape == shape && e.elem_size == elem_size) return e.plan;
  const ConvPlan plan = make_plan(shape, elem_size);
  col_stride_ = std::max(col_stride_, round_up(plan.col_elems() * elem_size));
  rows_stride_ = std::max(rows_stride_, round_up(plan.rows_elems() * elem_size));
  col_.reserve(col_stride_ * max_threads_);
  rows_.reserve(rows_stride_ * max_threads_);
  partials_.reserve((plan.groups - 1) * plan.filter_elems() * elem_size);
  // Winograd's buffers are needed where it may run: forced, or timed against GEMM.
  if (policy_ != ConvPolicy::gemm && winograd_fits(shape)) {
    const size_t scratch = winograd_scratch_elems(shape, plan.max_chunk) * elem_size;
    winograd_stride_ = std::max(winograd_stride_, round_up(scratch));
    winograd_.reserve(winograd_stride_ * max_threads_);
    winograd_filters_.reserve(plan.groups * plan.winograd_filter_elems() * elem_size);
  }
  plans_.push_back({shape, elem_size, plan});
  return plans_.back().plan;
}

const ConvPlan& ConvWorkspace::prepare(const ConvShape& shape, size_t elem_size) {
  return find(shape, elem_size);
}

void ConvWorkspace::choose(const ConvShape& shape, size_t elem_size,
                           const ConvAlgorithm (&algorithms)[3], const ConvTiming& timing) {
  ConvPlan& plan = find(shape, elem_size);
  plan.forward = algorithms[0];
  plan.backward_data = algorithms[1];
  plan.backward_filter = algorithms[2];
  plan.timed = true;
  plan.timing = timing;
}

}  // namespace plinth::cpu
