// plinth info: what this build is and what it can see.
#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/backend.h"
#include "engine/communicator.h"
#include "engine/device.h"

namespace plinth::cli {

int info_command(int argc, char** argv) {
  Args a("info",
         "Print the build (CUDA, cuDNN, cuBLAS, BLAS, threads, MPI, NCCL) and the devices found.");
  a.option("threads", "N",
           fmt::format("CPU threads to report for, 0 to {} (0: all cores)", kMaxThreads), "0")
      .range(0, kMaxThreads);
  if (!a.parse(argc, argv)) return 0;
  std::printf("plinth %s\n", PLINTH_VERSION);
  std::printf("cpu:  %s\n", make_cpu_backend(a.integer("threads"))->description().c_str());
  const CudaStatus s = cuda_status();
  std::printf("cuda: %s\n", s.built ? s.build_versions.c_str() : "not built");
  if (!s.driver.empty()) std::printf("      %s\n", s.driver.c_str());
  for (const CudaDeviceInfo& d : s.devices)
    std::printf("      cuda:%d %s, compute capability %d.%d, %d SMs, %.1f GiB (%.1f GiB free)\n",
                d.index, d.name.c_str(), d.compute_major, d.compute_minor, d.multiprocessors,
                d.total_memory / 1073741824.0, d.free_memory / 1073741824.0);
  if (s.devices.empty()) std::printf("      no usable GPU: %s\n", s.unavailable_reason.c_str());
  const DistributedBuild d = distributed_build();
  std::printf("mpi:  %s\n", d.mpi ? "built (mpirun -np N plinth train ...)" : "not built");
  std::printf("nccl: %s\n", d.nccl ? "built (GPU ranks average gradients over NCCL)" : "not built");
  if (!d.versions.empty()) std::printf("      %s\n", d.versions.c_str());
  return 0;
}

}  // namespace plinth::cli
