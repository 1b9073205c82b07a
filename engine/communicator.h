// Data-parallel training: the ranks of one job and the collectives the trainer needs, with
// no MPI or NCCL type in sight. A Trainer given a Communicator (TrainOptions::communicator)
// takes its rank's shard of every global batch, averages the gradients over the ranks after
// each backward pass, and reduces its evaluations; a null communicator is one process.
//
// MPI (distributed/mpi_communicator.cpp) is the one implementation; a build without it has
// none, and open_communicator() says so. Every collective is called by every rank in the
// same order. A collective that waits longer than the timeout (a rank died or hangs) ends
// the whole job with a message naming the ranks that did not answer, instead of waiting
// forever.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "engine/backend.h"

namespace plinth {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // This rank among those on its host, and how many share the host: a rank's CPU threads
  // are the host's cores divided by local_size(), and its GPU is number local_rank().
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  // e.g. "Open MPI v4.1.4, 2 ranks; gradients over NCCL 2.28.9"
  virtual std::string description() const = 0;

  // Prepares average() for this backend's memory: on a GPU with NCCL, NCCL's communicator
  // (a collective; average() does it on first use otherwise, and description() then says so).
  virtual void attach(Backend& backend) = 0;
  // Releases what attach() made, before the backend it was made for goes.
  virtual void detach() = 0;
  // Replaces data[0, n), in the backend's memory, with its mean over the ranks: one call
  // per bucket of the arena, not per tensor. On a GPU with NCCL it is queued on the
  // backend's stream (and may be captured in a CUDA graph); otherwise it returns when done.
  virtual void average(Backend& backend, float* data, size_t n) = 0;
  // Whether average() on this backend is queued on its stream, so that a CUDA graph may
  // replay it (NCCL, attached to it); otherwise it waits for the host, and steps that
  // average run eagerly (StepGraph::disable, with kNotReplayable).
  virtual bool averages_on_stream(const Backend& /*backend*/) const { return false; }
  static constexpr const char* kNotReplayable =
      "the gradients are averaged over the ranks through the host (MPI without NCCL): a graph "
      "cannot replay a host collective";
  // Host collectives: sums over the ranks in place; whether any rank's flag is set; rank
  // root's bytes to every rank. `what` names the collective in a timeout's message.
  virtual void sum(double* data, size_t n, const char* what) = 0;
  virtual bool any(bool flag, const char* what) = 0;
  virtual void broadcast(void* data, size_t bytes, int root, const char* what) = 0;
  // Copies rank 0's values of data[0, n), in the backend's memory, to every rank.
  void broadcast(Backend& backend, float* data, size_t n, const char* what);

  // Ends every rank of the job now with this exit status (after an error on this rank
  // that the others would otherwise wait for). Does not return.
  [[noreturn]] virtual void abort(int status) = 0;
};

// How the job was launched: the ranks an MPI launcher (Open MPI's mpirun, or one speaking
// MPICH's PMI) started this process as, read from its environment; 1 when started alone.
struct LaunchInfo {
  int size = 1, rank = 0, local_size = 1, local_rank = 0;
  bool by_launcher = false;  // started by a launcher (also as the only rank)
};
LaunchInfo launch_info();

struct DistributedBuild {
  bool mpi = false, nccl = false;
  std::string versions;  // e.g. "Open MPI v4.1.4, NCCL 2.28.9", or "" when neither is built
};
DistributedBuild distributed_build();

// The job's communicator (MPI initialised on the first call, finalised when it is
// destroyed); timeout_seconds bounds every collective's wait. Throws plinth::Error when
// this build has no MPI.
std::unique_ptr<Communicator> open_communicator(double timeout_seconds);

}  // namespace plinth
