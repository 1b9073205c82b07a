#include "cli/distributed.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "cli/common.h"
#include "engine/device.h"
#include "engine/error.h"

namespace plinth::cli {

void add_distributed_options(Args& args) {
  args.option("rank-timeout", "SECONDS",
              "under mpirun: how long a rank waits for the others in a collective before it "
              "ends the job, naming the ranks that did not answer",
              "300")
      // Up to a week: a collective that waits longer is a hung job.
      .number_range(0.001, 7 * 24 * 3600);
}

std::unique_ptr<Communicator> join_job(const Args& args) {
  const LaunchInfo launch = launch_info();
  if (!launch.by_launcher) return nullptr;
  if (!distributed_build().mpi) {
    if (launch.size == 1) return nullptr;  // mpirun -np 1: one process either way
    fail(
        "mpirun started this plinth as rank {} of {}, but it was built without MPI "
        "(configure with -DPLINTH_MPI=ON and Open MPI's libopenmpi-dev)",
        launch.rank, launch.size);
  }
  std::unique_ptr<Communicator> ranks = open_communicator(args.number("rank-timeout"));
  if (ranks->rank() != 0) set_silent(true);
  return ranks;
}

void place_rank(const Communicator& ranks, std::string& device, int& threads) {
  if (threads == 0)
    threads =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / ranks.local_size());
  if (device != "cuda" && device != "auto") return;
  const CudaStatus cuda = cuda_status();
  if (cuda.devices.empty()) return;  // auto: the CPU; cuda: open_device says why not
  const int gpus = static_cast<int>(cuda.devices.size());
  if (ranks.local_size() > gpus)
    fail(
        "--device: {} ranks on this host but {} usable GPU{}: one GPU per rank (start at most {} "
        "ranks per host, or use --device cpu)",
        ranks.local_size(), gpus, gpus == 1 ? "" : "s", gpus);
  device = fmt::format("cuda:{}", cuda.devices[ranks.local_rank()].index);
}

}  // namespace plinth::cli
