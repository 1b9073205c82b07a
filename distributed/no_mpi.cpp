// A build without MPI: one process, and a clear error for a job that asks for more.
#include "engine/communicator.h"
#include "engine/error.h"

namespace plinth {

DistributedBuild distributed_build() { return {}; }

std::unique_ptr<Communicator> open_communicator(double) {
  fail(
      "data-parallel: this plinth was built without MPI (configure with -DPLINTH_MPI=ON and "
      "Open MPI's libopenmpi-dev)");
}

}  // namespace plinth
