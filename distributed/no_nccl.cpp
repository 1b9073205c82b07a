// A build without NCCL: a CUDA rank averages its gradients through host memory over MPI.
#include "distributed/device_allreduce.h"

namespace plinth {

std::unique_ptr<DeviceAllreduce> make_nccl_allreduce(Backend&, Communicator&) { return nullptr; }

std::string nccl_version() { return ""; }

}  // namespace plinth
