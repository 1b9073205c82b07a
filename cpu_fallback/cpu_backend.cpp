// What is CpuBackend-wide: construction and the description. The ops are defined in their
// families' files beside this one.
#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/host_memory.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>

#include <fmt/format.h>

namespace plinth {
namespace {

int resolve_threads(int threads) {
  return threads > 0 ? threads : std::max(1, omp_get_num_procs());
}

// "OpenBLAS 0.3.21" from the linked library's configuration string, which starts with the
// name and version ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... MAX_THREADS=64").
std::string openblas_version() {
  const std::string config = openblas_get_config();
  const size_t name_end = config.find(' ');
  const size_t version_end =
      name_end == std::string::npos ? name_end : config.find(' ', name_end + 1);
  return config.substr(0, version_end);
}

}  // namespace

CpuBackend::CpuBackend(int threads) : threads_(resolve_threads(threads)), conv_(threads_) {}

std::string CpuBackend::description() const {
  return fmt::format("cpu ({} {}, {} thread{})", openblas_version(), openblas_get_corename(),
                     threads_, threads_ == 1 ? "" : "s");
}

size_t CpuBackend::available_memory() const { return cpu::available_host_memory(); }

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace plinth
