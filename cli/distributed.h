// The tool's side of data-parallel training (engine/communicator.h): joining the job that
// mpirun started, placing each rank on its share of the host, and ending the whole job
// when one rank fails.
#pragma once

#include <memory>
#include <string>

#include "cli/args.h"
#include "engine/communicator.h"

namespace plinth::cli {

// --rank-timeout, for the commands that run as a job's ranks.
void add_distributed_options(Args& args);
// The job's communicator when an MPI launcher started this process, else null (one
// process). Ranks other than 0 print nothing but errors from here on.
std::unique_ptr<Communicator> join_job(const Args& args);
// A rank's share of its host: the cores divided by the ranks on it (when threads is 0,
// all cores), and GPU number local_rank for --device cuda, or auto where GPUs are visible.
void place_rank(const Communicator& ranks, std::string& device, int& threads);

// The job's collectives bound to a backend's memory (Communicator::attach) while it lives.
class AttachedRanks {
 public:
  AttachedRanks(Communicator* ranks, Backend& backend) : ranks_(ranks) {
    if (ranks_) ranks_->attach(backend);
  }
  ~AttachedRanks() {
    if (ranks_) ranks_->detach();
  }
  AttachedRanks(const AttachedRanks&) = delete;
  AttachedRanks& operator=(const AttachedRanks&) = delete;

 private:
  Communicator* ranks_;
};

// Runs command(); when it fails on one rank of several, prints the error with the rank and
// ends every rank, which would otherwise wait for this one until the timeout.
template <typename Command>
int as_rank(Communicator* ranks, Command&& command);

}  // namespace plinth::cli

#include <cstdio>
#include <exception>

namespace plinth::cli {

template <typename Command>
int as_rank(Communicator* ranks, Command&& command) {
  if (!ranks || ranks->size() == 1) return command();
  try {
    return command();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plinth: error: rank %d of %d: %s\n", ranks->rank(), ranks->size(),
                 e.what());
    ranks->abort(1);
  }
  return 1;  // not reached: abort() ends the process
}

}  // namespace plinth::cli
