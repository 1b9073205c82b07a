// CudaBackend: device setup, memory, convolution dispatch (cuDNN or native) and GEMM.
// The kernel families define their own methods in the .cu files beside this one.
#include "kernels/cuda_backend.h"

#include <fmt/format.h>

#include "engine/device.h"
#include "engine/error.h"
#include "kernels/conv_native.h"
#include "kernels/cublas_adapter.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"
#include "kernels/cudnn_adapter.h"
#include "kernels/launchers.h"
#include "kernels/shape_checks.h"

namespace plinth {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kBlasWorkspaceBytes = 32 * kMiB;  // what NVIDIA advises for Hopper
// Per cuDNN algorithm. A fixed limit (not a share of free memory) keeps the algorithm
// choice, and so the rounding of results, the same from run to run.
constexpr size_t kConvWorkspaceLimit = 512 * kMiB;

double mib(size_t bytes) { return static_cast<double>(bytes) / static_cast<double>(kMiB); }

// An op that meets a shape conv2d_prepare() has not seen prepares it then: slower (it
// may allocate) but correct.
bool needs_prepare(const CudaContext& ctx, const ConvShape& shape) {
  if (ctx.cudnn) return !ctx.cudnn->prepared(shape);
  return cuda::native_conv_workspace_bytes(shape) > ctx.workspace_bytes;
}

}  // namespace

// ---- context -------------------------------------------------------------------------

void* allocate_device_memory(size_t bytes) {
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // out of memory is not sticky: clear it and report
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail("out of GPU memory: asked for {:.1f} MiB, {:.1f} MiB free of {:.1f} MiB; "
         "try a smaller --batch-size",
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
  if (count == 0) fail("--device cuda: {}", reason);
  if (options.device_index < 0 || options.device_index >= count)
    fail("--device cuda: there is no CUDA device {} (this machine has {}: 0 to {})",
         options.device_index, count, count - 1);
  if (!cuda::query_device(options.device_index, ctx_->device, reason))
    fail("--device cuda: {}", reason);
  check_cudnn_version();
  ctx_->cudnn_version = cudnn_loaded_version();

  // Ops run on this thread's current device; the backend's resources belong to this one.
  PLINTH_CUDA_CHECK(cudaSetDevice(options.device_index));
  PLINTH_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_->stream, cudaStreamNonBlocking));
  ctx_->partials = static_cast<double*>(
      allocate_device_memory(sizeof(double) * kMaxPartialBlocks * kMaxPartialValues));
  ctx_->blas_workspace = allocate_device_memory(kBlasWorkspaceBytes);
  ctx_->blas = std::make_unique<CublasGemm>(ctx_->stream, options.allow_tf32,
                                            ctx_->blas_workspace, kBlasWorkspaceBytes);
  if (!options.native_conv)
    ctx_->cudnn = std::make_unique<CudnnConvolutions>(ctx_->stream, options.allow_tf32,
                                                      options.deterministic);
}

CudaBackend::~CudaBackend() = default;

std::string CudaBackend::description() const {
  const CudaDeviceInfo& d = ctx_->device;
  return fmt::format("cuda:{} {} (SM {}.{}, {} GiB, cuDNN {}, conv {}, {})", d.index, d.name,
                     d.compute_major, d.compute_minor, d.total_memory >> 30, ctx_->cudnn_version,
                     options_.native_conv ? "native" : "cudnn",
                     options_.allow_tf32 ? "tf32" : "fp32");
}

// ---- memory --------------------------------------------------------------------------

void* CudaBackend::allocate(size_t bytes) {
  return bytes == 0 ? nullptr : allocate_device_memory(bytes);
}

void CudaBackend::deallocate(void* ptr) noexcept {
  if (ptr) cudaFree(ptr);  // waits for the device; a failure here cannot be reported
}

// Host memory from the engine is pageable: cudaMemcpyAsync stages it before returning,
// so the caller may reuse its buffer at once.
void CudaBackend::upload(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes == 0) return;
  PLINTH_CUDA_CHECK(
      cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, ctx_->stream));
}

void CudaBackend::download(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes == 0) return;
  PLINTH_CUDA_CHECK(
      cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, ctx_->stream));
  PLINTH_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  PLINTH_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_->stream));
}

void CudaBackend::synchronize() { PLINTH_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream)); }

// ---- convolution ---------------------------------------------------------------------

void CudaBackend::conv2d_prepare(const ConvShape& shape) {
  cuda::check_conv_shape(shape);
  if (ctx_->cudnn)
    ctx_->reserve_workspace(ctx_->cudnn->prepare(shape, kConvWorkspaceLimit));
  else
    ctx_->reserve_workspace(cuda::native_conv_workspace_bytes(shape));
}

void CudaBackend::conv2d_forward(const ConvShape& shape, const float* x, const float* w,
                                 const float* b, float* y, Activation act) {
  cuda::check_conv_shape(shape);
  if (needs_prepare(*ctx_, shape)) conv2d_prepare(shape);
  if (!ctx_->cudnn) {
    cuda::native_conv_forward(ctx_->stream, shape, x, w, b, y, act);
    return;
  }
  ctx_->cudnn->forward(shape, x, w, y, ctx_->workspace);
  if (b || act != Activation::none)
    cuda::launch_bias_activation(ctx_->stream, y, b, shape.n, shape.k,
                                 shape.out_h() * shape.out_w(), act);
}

void CudaBackend::conv2d_backward_data(const ConvShape& shape, const float* dy, const float* w,
                                       float* dx) {
  cuda::check_conv_shape(shape);
  if (needs_prepare(*ctx_, shape)) conv2d_prepare(shape);
  if (ctx_->cudnn)
    ctx_->cudnn->backward_data(shape, dy, w, dx, ctx_->workspace);
  else
    cuda::native_conv_backward_data(ctx_->stream, shape, dy, w, dx);
}

void CudaBackend::conv2d_backward_filter(const ConvShape& shape, const float* x,
                                         const float* dy, float* dw) {
  cuda::check_conv_shape(shape);
  if (needs_prepare(*ctx_, shape)) conv2d_prepare(shape);
  if (ctx_->cudnn)
    ctx_->cudnn->backward_filter(shape, x, dy, dw, ctx_->workspace);
  else
    cuda::native_conv_backward_filter(ctx_->stream, shape, x, dy, dw,
                                      static_cast<float*>(ctx_->workspace));
}

// ---- dense ---------------------------------------------------------------------------

void CudaBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                       const float* a, int lda, const float* b, int ldb, float beta, float* c,
                       int ldc) {
  ctx_->blas->gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// ---- factory -------------------------------------------------------------------------

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

}  // namespace plinth
