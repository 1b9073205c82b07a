// What is CudaBackend-wide: device setup, the description, and the context every op
// family shares (stream, library handles, scratch memory). The ops are defined in their
// families' files beside this one.
#include "kernels/cuda_backend.h"

#include <cstdlib>

#include <fmt/format.h>

#include "engine/device.h"
#include "engine/error.h"
#include "kernels/cublas_adapter.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"
#include "kernels/cudnn_adapter.h"

namespace plinth {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kBlasWorkspaceBytes = 32 * kMiB;  // what NVIDIA advises for Hopper

double mib(size_t bytes) { return static_cast<double>(bytes) / static_cast<double>(kMiB); }

}  // namespace

// ---- context -------------------------------------------------------------------------

void* allocate_device_memory(size_t bytes) {
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // out of memory is not sticky: clear it and report
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail(
        "out of GPU memory: asked for {:.1f} MiB, {:.1f} MiB free of {:.1f} MiB; "
        "try a smaller batch size",
        mib(bytes), mib(free_bytes), mib(total_bytes));
  }
  if (status != cudaSuccess)
    cuda::library_error("CUDA", "cudaMalloc", __FILE__, __LINE__, cudaGetErrorString(status));
  return ptr;
}

CudaContext::~CudaContext() {
  // Statuses are ignored: a destructor must not throw, and there is nothing left to do.
  blas.reset();
  cudnn.reset();
  if (stream) cudaStreamSynchronize(stream);
  if (workspace) cudaFree(workspace);
  if (blas_workspace) cudaFree(blas_workspace);
  if (partials) cudaFree(partials);
  if (stream) cudaStreamDestroy(stream);
}

void CudaContext::reserve_workspace(size_t bytes) {
  if (bytes <= workspace_bytes) return;
  PLINTH_CUDA_CHECK(cudaStreamSynchronize(stream));  // queued ops may still read the old one
  if (workspace) PLINTH_CUDA_CHECK(cudaFree(workspace));
  workspace = nullptr;
  workspace_bytes = 0;
  workspace = allocate_device_memory(bytes);
  workspace_bytes = bytes;
}

// ---- setup ---------------------------------------------------------------------------

CudaBackend::CudaBackend(const CudaOptions& options)
    : options_(options), ctx_(std::make_unique<CudaContext>()) {
  std::string reason;
  const int count = cuda::device_count(reason);
  if (count == 0) fail("device cuda: {}", reason);
  if (options.device_index < 0 || options.device_index >= count)
    fail("device cuda: there is no CUDA device {} (this machine has {}: 0 to {})",
         options.device_index, count, count - 1);
  if (!cuda::query_device(options.device_index, ctx_->device, reason))
    fail("device cuda: {}", reason);
  check_cudnn_version();
  ctx_->cudnn_version = cudnn_loaded_version();
  const char* sync = std::getenv("PLINTH_SYNC_LAUNCHES");
  if (options.sync_launches || (sync && std::string(sync) == "1")) cuda::enable_sync_launches();

  // Ops run on this thread's current device; the backend's resources belong to this one.
  PLINTH_CUDA_CHECK(cudaSetDevice(options.device_index));
  PLINTH_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_->stream, cudaStreamNonBlocking));
  ctx_->partials = static_cast<double*>(
      allocate_device_memory(sizeof(double) * kMaxPartialBlocks * kMaxPartialValues));
  ctx_->blas_workspace = allocate_device_memory(kBlasWorkspaceBytes);
  ctx_->blas = std::make_unique<CublasGemm>(ctx_->stream, options.precision, ctx_->blas_workspace,
                                            kBlasWorkspaceBytes);
  if (!options.native_conv)
    ctx_->cudnn = std::make_unique<CudnnConvolutions>(
        ctx_->stream,
        CudnnConvolutions::Settings{options.precision, options.deterministic, options.log,
                                    options.injected_algorithm_failures});
}

CudaBackend::~CudaBackend() = default;

std::string CudaBackend::description() const {
  const CudaDeviceInfo& d = ctx_->device;
  return fmt::format("cuda:{} {} (SM {}.{}, {} GiB, cuDNN {}, conv {}, {}{})", d.index, d.name,
                     d.compute_major, d.compute_minor, d.total_memory >> 30, ctx_->cudnn_version,
                     options_.native_conv ? "native" : "cudnn", precision_name(options_.precision),
                     cuda::sync_launches() ? ", synchronised launches" : "");
}

size_t CudaBackend::available_memory() const {
  size_t free_bytes = 0, total_bytes = 0;
  PLINTH_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

// ---- factory -------------------------------------------------------------------------

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

}  // namespace plinth
