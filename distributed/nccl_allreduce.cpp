// NCCL's allreduce on the CUDA backend's stream. The buckets go out as one NCCL group, so
// NCCL fuses them into one launch; nothing here synchronises or allocates, so the call can
// sit inside a captured CUDA graph (NCCL 2.9.6 and later support capture).
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <fmt/format.h>

#include "distributed/device_allreduce.h"
#include "engine/communicator.h"
#include "engine/error.h"
#include "kernels/cuda_backend.h"
#include "kernels/cuda_context.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "plinth needs NCCL 2.10 or later (ncclAvg)"
#endif

namespace plinth {

namespace {

// Elements per ncclAllReduce: buckets of the gradient arena, not one call per tensor.
constexpr size_t kBucketFloats = size_t{1} << 22;

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) fail("NCCL: {} failed: {}", what, ncclGetErrorString(r));
}

class NcclAllreduce final : public DeviceAllreduce {
 public:
  NcclAllreduce(CudaBackend& backend, Communicator& ranks) : backend_(backend) {
    ncclUniqueId id{};
    if (ranks.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    ranks.broadcast(&id, sizeof(id), 0, "the broadcast of NCCL's unique id");
    const CudaContext& ctx = backend.context();
    if (cudaSetDevice(ctx.device.index) != cudaSuccess)
      fail("NCCL: cannot select cuda:{}", ctx.device.index);
    check(ncclCommInitRank(&comm_, ranks.size(), id, ranks.rank()), "ncclCommInitRank");
    stream_ = ctx.stream;
  }
  ~NcclAllreduce() override { ncclCommDestroy(comm_); }

  void average(float* data, size_t n) override {
    check(ncclGroupStart(), "ncclGroupStart");
    for (size_t at = 0; at < n; at += kBucketFloats)
      check(ncclAllReduce(data + at, data + at, std::min(kBucketFloats, n - at), ncclFloat, ncclAvg,
                          comm_, stream_),
            "ncclAllReduce");
    check(ncclGroupEnd(), "ncclGroupEnd");
  }
  const Backend* backend() const override { return &backend_; }

 private:
  CudaBackend& backend_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::unique_ptr<DeviceAllreduce> make_nccl_allreduce(Backend& backend, Communicator& ranks) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (!cuda) return nullptr;
  return std::make_unique<NcclAllreduce>(*cuda, ranks);
}

std::string nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL";
  // NCCL >= 2.9 encodes major * 10000 + minor * 100 + patch.
  return fmt::format("NCCL {}.{}.{}", v / 10000, v / 100 % 100, v % 100);
}

}  // namespace plinth
