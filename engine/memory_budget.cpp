#include "engine/memory_budget.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

namespace plinth {

int largest_batch_within(const MemoryNeed& need, size_t available) {
  if (need.batch <= 1 || available <= need.fixed_bytes || need.bytes <= need.fixed_bytes) return 0;
  // Per sample the plan needs at most bytes / batch: so b samples need at most
  // fixed_bytes + b * bytes / batch. In 128 bits: available * batch overflows 64.
  using Wide = unsigned __int128;
  const Wide fits = static_cast<Wide>(available - need.fixed_bytes) * need.batch / need.bytes;
  return static_cast<int>(std::min<Wide>(fits, static_cast<Wide>(need.batch - 1)));
}

std::string memory_size(size_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes >= size_t{1} << 50) return fmt::format("{:.1f} PiB", b / (size_t{1} << 50));
  if (bytes >= size_t{1} << 40) return fmt::format("{:.1f} TiB", b / (size_t{1} << 40));
  if (bytes >= size_t{1} << 30) return fmt::format("{:.1f} GiB", b / (1 << 30));
  if (bytes >= size_t{1} << 20) return fmt::format("{:.1f} MiB", b / (1 << 20));
  if (bytes >= size_t{1} << 10) return fmt::format("{:.1f} KiB", b / (1 << 10));
  return fmt::format("{} bytes", bytes);
}

void require_memory(const Backend& backend, const MemoryNeed& need) {
  const size_t available = backend.available_memory();
  if (need.bytes <= available) return;
  std::vector<std::pair<std::string, size_t>> parts(need.by_owner.begin(), need.by_owner.end());
  std::stable_sort(parts.begin(), parts.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string largest;
  for (size_t i = 0; i < std::min<size_t>(parts.size(), 3); ++i)
    largest += fmt::format("{}{} {}", i ? ", " : "", parts[i].first, memory_size(parts[i].second));
  const int fits = largest_batch_within(need, available);
  std::string advice = "use a smaller model";
  if (need.batch > 0)
    advice = fits > 0 ? fmt::format("batch size {} would fit", fits)
                      : "not even batch size 1 would fit: use a smaller model";
  throw MemoryError(fmt::format("{} needs {} but {} is available on {} (largest: {}); {}",
                                need.what, memory_size(need.bytes), memory_size(available),
                                backend.description(), largest, advice),
                    fits);
}

}  // namespace plinth
