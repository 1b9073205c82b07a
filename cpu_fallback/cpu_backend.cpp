// What is CpuBackend-wide: construction and the description. The ops are defined in their
// families' files beside this one.
#include "cpu_fallback/cpu_backend.h"
#include "cpu_fallback/host_memory.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "engine/error.h"

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

// PLINTH_CPU_CONV picks the convolution algorithms: auto (the default: the faster of
// im2col + GEMM and Winograd, timed per layer when the executor is built), gemm or winograd.
cpu::ConvPolicy conv_policy_from_environment() {
  const char* value = std::getenv("PLINTH_CPU_CONV");
  const std::string name = value ? value : "";
  for (cpu::ConvPolicy p :
       {cpu::ConvPolicy::fastest, cpu::ConvPolicy::gemm, cpu::ConvPolicy::winograd})
    if (name == cpu::conv_policy_name(p)) return p;
  if (name.empty()) return cpu::ConvPolicy::fastest;
  fail("PLINTH_CPU_CONV: '{}' is not one of auto, gemm, winograd", name);
}

// OPENBLAS_CORETYPE overrides OpenBLAS's choice of kernels; pinned to an AVX2 core on an
// AVX-512 machine it halves the GEMM rate (measured 102 vs 179-204 GFLOP/s on 2 cores of an
// AVX-512 EPYC), so the description says so.
std::string blas_core() {
  const std::string core = openblas_get_corename();
  const char* pinned = std::getenv("OPENBLAS_CORETYPE");
  if (!pinned || !*pinned) return core;
  const bool avx512_core = core == "SkylakeX" || core == "Cooperlake" || core == "SapphireRapids";
  return core + (__builtin_cpu_supports("avx512f") && !avx512_core
                     ? ", pinned by OPENBLAS_CORETYPE on an AVX-512 CPU"
                     : ", pinned by OPENBLAS_CORETYPE");
}

}  // namespace

CpuBackend::CpuBackend(int threads)
    : max_threads_(resolve_threads(threads)),
      threads_(max_threads_),
      conv_(threads_, cpu::ConvWorkspace::kDefaultChunkBytes, conv_policy_from_environment()) {}

void CpuBackend::use_threads(int threads) {
  threads_ = std::clamp(threads, 1, max_threads_);
  conv_.use_threads(threads_);
}

std::string CpuBackend::description() const {
  return fmt::format("cpu ({} {}, {} thread{})", openblas_version(), blas_core(), threads_,
                     threads_ == 1 ? "" : "s");
}

size_t CpuBackend::available_memory() const { return cpu::available_host_memory(); }

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace plinth
