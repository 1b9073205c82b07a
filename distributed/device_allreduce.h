// Gradient averaging that stays on the GPU: NCCL's allreduce queued on the backend's
// stream, for MpiCommunicator::average on a CUDA backend. No NCCL or CUDA type appears
// here, so the MPI side compiles without either.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "engine/backend.h"

namespace plinth {

class Communicator;

class DeviceAllreduce {
 public:
  virtual ~DeviceAllreduce() = default;
  // Queues the mean over the ranks of data[0, n) on the stream; returns before it is done.
  virtual void average(float* data, size_t n) = 0;
  virtual const Backend* backend() const = 0;
};

// An NCCL communicator over the ranks of `ranks` for this CUDA backend's device: rank 0
// draws NCCL's unique id and `ranks` broadcasts it. Null when this build has no NCCL.
std::unique_ptr<DeviceAllreduce> make_nccl_allreduce(Backend& backend, Communicator& ranks);
// e.g. "NCCL 2.28.9", or "" without NCCL.
std::string nccl_version();

}  // namespace plinth
