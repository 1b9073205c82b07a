#include "engine/communicator.h"

#include <cstdlib>
#include <vector>

namespace plinth {

namespace {

// An environment variable as a number, or -1 when it is unset or not a number.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' && n >= 0 && n < (1 << 24) ? static_cast<int>(n) : -1;
}

}  // namespace

LaunchInfo launch_info() {
  // Open MPI's mpirun, then MPICH's Hydra (and launchers speaking its PMI, such as srun).
  const char* names[2][4] = {{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                              "OMPI_COMM_WORLD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
                             {"PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS", "MPI_LOCALRANKID"}};
  for (const auto& n : names) {
    const int size = env_int(n[0]), rank = env_int(n[1]);
    if (size < 1 || rank < 0 || rank >= size) continue;
    LaunchInfo info{size, rank, env_int(n[2]), env_int(n[3])};
    if (info.local_size < 1 || info.local_rank < 0 || info.local_rank >= info.local_size)
      info.local_size = 1, info.local_rank = 0;
    info.by_launcher = true;
    return info;
  }
  return {};
}

void Communicator::broadcast(Backend& backend, float* data, size_t n, const char* what) {
  std::vector<float> host(n);
  if (rank() == 0) backend.download(host.data(), data, n * sizeof(float));
  broadcast(host.data(), n * sizeof(float), 0, what);
  if (rank() != 0) backend.upload(data, host.data(), n * sizeof(float));
}

}  // namespace plinth
