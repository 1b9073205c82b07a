// The CUDA implementation of the op interface. This header is the only part of kernels/
// that the engine may see, so it names no CUDA type: the stream, the library handles and
// the scratch buffers live in CudaContext (cuda_context.h), defined where they are used.
// The ops are declared from the op list of engine/backend.h; each family defines its own
// in the file its heading there names (memory.cu, conv.cpp, pool.cu, ...), and
// cuda_backend.cpp holds what is backend-wide: setup, the description and the context.
#pragma once

#include <memory>
#include <string>

#include "engine/backend.h"

namespace plinth {

struct CudaContext;

class CudaBackend final : public Backend {
 public:
  // Throws plinth::Error when the device cannot be used (see make_cuda_backend()).
  explicit CudaBackend(const CudaOptions& options);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  DeviceKind kind() const override { return DeviceKind::cuda; }
  std::string description() const override;
  size_t available_memory() const override;

  PLINTH_BACKEND_OPS(PLINTH_DECLARE_OVERRIDE_OP)

  // The stream and device, for code beside the ops that queues work on the same stream
  // (NCCL's gradient allreduce, distributed/nccl_allreduce.cpp).
  CudaContext& context() const { return *ctx_; }
  // CUDA graphs by stream capture (graph.cpp).
  std::string capture_unavailable() const override;
  std::unique_ptr<OpGraph> capture(const std::function<void()>& ops,
                                   std::unique_ptr<OpGraph> reuse) override;

 private:
  CudaOptions options_;
  std::unique_ptr<CudaContext> ctx_;
};

}  // namespace plinth
