#include "cpu_fallback/conv_workspace.h"

#include <omp.h>

#include <algorithm>

#include "engine/op_shapes.h"

namespace plinth::cpu {
namespace {

// Enough backward-filter partial sums to keep every core busy, few enough that their
// memory stays modest for wide layers.
constexpr int kMaxGroups = 16;
constexpr size_t kPartialBudgetBytes = size_t{64} << 20;

size_t round_up(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace

ConvWorkspace::ConvWorkspace(int threads, size_t chunk_bytes)
    : threads_(std::max(1, threads)),
      chunk_bytes_(std::max<size_t>(1, chunk_bytes)),
      cores_(std::max(1, omp_get_num_procs())) {}

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
  return plan;
}

const ConvPlan& ConvWorkspace::prepare(const ConvShape& shape, size_t elem_size) {
  for (const Entry& e : plans_)
    if (e.shape == shape && e.elem_size == elem_size) return e.plan;
  const ConvPlan plan = make_plan(shape, elem_size);
  col_stride_ = std::max(col_stride_, round_up(plan.col_elems() * elem_size));
  rows_stride_ = std::max(rows_stride_, round_up(plan.rows_elems() * elem_size));
  col_.reserve(col_stride_ * threads_);
  rows_.reserve(rows_stride_ * threads_);
  partials_.reserve((plan.groups - 1) * plan.filter_elems() * elem_size);
  plans_.push_back({shape, elem_size, plan});
  return plans_.back().plan;
}

}  // namespace plinth::cpu
