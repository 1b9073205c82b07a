// The Communicator over MPI. Every collective is non-blocking and waited for by polling,
// so that a rank which died or hangs costs its peers the timeout, not the rest of time:
// MPI's own behaviour once a peer is gone is implementation-defined, and a blocked
// MPI_Allreduce cannot be interrupted. When the deadline passes, the waiting ranks tell
// each other on a separate communicator that they are alive; the ones that do not answer
// are named, and MPI_Abort ends the whole job with a non-zero status. (A rank that exits
// is usually caught sooner by mpirun itself, which ends the job and names the rank.)
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "distributed/device_allreduce.h"
#include "engine/communicator.h"
#include "engine/error.h"

namespace plinth {

namespace {

// Floats per allreduce call over host memory: a few calls for a large model, so a long
// message is pipelined by MPI, and one call for a small one (the seed CNN's 93,322).
constexpr size_t kBucketFloats = size_t{1} << 20;
// How long the ranks that timed out wait for each other's answers.
constexpr double kAnswerSeconds = 5;
constexpr int kAliveTag = 7;

using Clock = std::chrono::steady_clock;

std::string library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string v(text, static_cast<size_t>(length));
  return v.substr(0, std::min(v.find(','), v.find('\n')));  // "Open MPI v4.1.4"
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_seconds) : timeout_(timeout_seconds) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        fail("data-parallel: MPI_Init failed");
      owns_mpi_ = true;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_dup(MPI_COMM_WORLD, &alive_);
    MPI_Comm_set_errhandler(alive_, MPI_ERRORS_RETURN);  // its peers may be gone
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
  }

  ~MpiCommunicator() override {
    device_.reset();  // NCCL's communicator goes before MPI
    MPI_Comm_free(&alive_);
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }

  std::string description() const override {
    std::string d = fmt::format("{}, {} rank{}", library_version(), size_, size_ == 1 ? "" : "s");
    if (device_) d += "; gradients over " + nccl_version();
    return d;
  }

  void attach(Backend& backend) override {
    if (backend.kind() == DeviceKind::cuda && (!device_ || device_->backend() != &backend))
      device_ = make_nccl_allreduce(backend, *this);
  }

  void detach() override { device_.reset(); }

  bool averages_on_stream(const Backend& backend) const override {
    return device_ && device_->backend() == &backend;
  }

  void average(Backend& backend, float* data, size_t n) override {
    if (backend.kind() == DeviceKind::cuda) {
      attach(backend);
      if (device_) return device_->average(data, n);
    }
    // The CPU backend's memory is the host's; a GPU without NCCL goes through it.
    float* host = data;
    if (backend.kind() != DeviceKind::cpu) {
      staging_.resize(n);
      backend.download(staging_.data(), data, n * sizeof(float));
      host = staging_.data();
    }
    std::vector<MPI_Request> requests;
    for (size_t at = 0; at < n; at += kBucketFloats) {
      requests.emplace_back();
      MPI_Iallreduce(MPI_IN_PLACE, host + at, static_cast<int>(std::min(kBucketFloats, n - at)),
                     MPI_FLOAT, MPI_SUM, comm_, &requests.back());
    }
    wait(requests, "the gradient allreduce");
    const float scale = 1.0f / static_cast<float>(size_);
    for (size_t i = 0; i < n; ++i) host[i] *= scale;
    if (host != data) backend.upload(data, host, n * sizeof(float));
  }

  void sum(double* data, size_t n, const char* what) override {
    std::vector<MPI_Request> r(1);
    MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, comm_, &r[0]);
    wait(r, what);
  }

  bool any(bool flag, const char* what) override {
    int value = flag ? 1 : 0;
    std::vector<MPI_Request> r(1);
    MPI_Iallreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, comm_, &r[0]);
    wait(r, what);
    return value != 0;
  }

  void broadcast(void* data, size_t bytes, int root, const char* what) override {
    constexpr size_t kChunk = size_t{1} << 30;  // MPI counts are ints
    std::vector<MPI_Request> requests;
    for (size_t at = 0; at < bytes; at += kChunk) {
      requests.emplace_back();
      MPI_Ibcast(static_cast<char*>(data) + at, static_cast<int>(std::min(kChunk, bytes - at)),
                 MPI_BYTE, root, comm_, &requests.back());
    }
    wait(requests, what);
  }
  using Communicator::broadcast;

  [[noreturn]] void abort(int status) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
    std::_Exit(status);  // MPI_Abort does not return; this keeps [[noreturn]] true
  }

 private:
  // Polls the requests until all are done or the timeout passes; then names the ranks
  // that are not waiting too, and ends the job.
  void wait(std::vector<MPI_Request>& requests, const char* what) {
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout_);
    bool waited_long = false;
    for (long polls = 0;; ++polls) {
      int done = 0;
      MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
      if (done) return;
      // Spinning keeps a collective's latency near a microsecond; after a long wait (a peer
      // that shares this core, or is slow) each poll first lets other processes run.
      if (waited_long) sched_yield();
      if ((polls & 1023) == 0) {
        const auto now = Clock::now();
        waited_long = now - start > std::chrono::milliseconds(20);
        if (now > deadline) time_out(what);
      }
    }
  }

  [[noreturn]] void time_out(const char* what) {
    const std::string missing = silent_ranks();
    std::fprintf(stderr,
                 "plinth: error: rank %d: %s waited more than %g s for the other ranks; %s "
                 "(it died or hangs); ending the job (the last checkpoint is intact: continue "
                 "with --resume)\n",
                 rank_, what, timeout_, missing.c_str());
    abort(1);
  }

  // Every rank that timed out sends "alive" to every other and listens for kAnswerSeconds;
  // the ranks that stay silent are the ones that died or hang.
  std::string silent_ranks() {
    int here = rank_;
    std::vector<int> answers(size_, -1);
    std::vector<MPI_Request> sends, receives(size_, MPI_REQUEST_NULL);
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      sends.emplace_back();
      MPI_Isend(&here, 1, MPI_INT, r, kAliveTag, alive_, &sends.back());
      MPI_Irecv(&answers[r], 1, MPI_INT, r, kAliveTag, alive_, &receives[r]);
    }
    const auto until = Clock::now() + std::chrono::duration<double>(kAnswerSeconds);
    while (Clock::now() < until) {
      int done = 0;
      MPI_Testall(size_, receives.data(), &done, MPI_STATUSES_IGNORE);
      if (done) break;
      sched_yield();
    }
    std::vector<int> silent;
    for (int r = 0; r < size_; ++r)
      if (r != rank_ && answers[r] != r) silent.push_back(r);
    if (silent.empty()) return "every rank answered, so one of them is in another collective";
    std::string list;
    for (int r : silent) list += (list.empty() ? "" : ", ") + std::to_string(r);
    return fmt::format("rank{} {} did not answer", silent.size() == 1 ? "" : "s", list);
  }

  double timeout_;
  bool owns_mpi_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm alive_ = MPI_COMM_NULL;  // only for the "alive" messages after a timeout
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::vector<float> staging_;  // a GPU's gradients on the host, without NCCL
  std::unique_ptr<DeviceAllreduce> device_;
};

}  // namespace

DistributedBuild distributed_build() {
  DistributedBuild b;
  b.mpi = true;
  b.versions = library_version();
  const std::string nccl = nccl_version();
  b.nccl = !nccl.empty();
  if (b.nccl) b.versions += ", " + nccl;
  return b;
}

std::unique_ptr<Communicator> open_communicator(double timeout_seconds) {
  if (!(timeout_seconds > 0)) fail("timeout: expected a positive number of seconds");
  return std::make_unique<MpiCommunicator>(timeout_seconds);
}

}  // namespace plinth
