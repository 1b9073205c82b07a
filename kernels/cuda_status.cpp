// What this CUDA build offers and which devices this machine has. Every call here fails
// softly: on a machine without a driver, cuda_status() reports why and returns.
#include <fmt/format.h>

#include "engine/device.h"
#include "kernels/cublas_adapter.h"
#include "kernels/cuda_context.h"
#include "kernels/cudnn_adapter.h"

namespace plinth {
namespace cuda {

int device_count(std::string& reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // leave no error behind for the next runtime call
    reason = fmt::format("no usable CUDA device: {} (is the NVIDIA driver installed?)",
                         cudaGetErrorString(status));
    return 0;
  }
  if (count == 0) reason = "no usable CUDA device: the NVIDIA driver reports none";
  return count;
}

bool query_device(int index, CudaDeviceInfo& info, std::string& error) {
  cudaDeviceProp prop{};
  size_t free_bytes = 0, total_bytes = 0;
  int previous = 0;
  cudaError_t status = cudaGetDeviceProperties(&prop, index);
  if (status == cudaSuccess) status = cudaGetDevice(&previous);
  if (status == cudaSuccess) status = cudaSetDevice(index);
  if (status == cudaSuccess) {
    status = cudaMemGetInfo(&free_bytes, &total_bytes);  // creates the device's context
    cudaSetDevice(previous);
  }
  if (status != cudaSuccess) {
    cudaGetLastError();
    error = fmt::format("CUDA device {} is not usable: {}", index, cudaGetErrorString(status));
    return false;
  }
  info.index = index;
  info.name = prop.name;
  info.total_memory = prop.totalGlobalMem;
  info.free_memory = free_bytes;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  return true;
}

}  // namespace cuda

namespace {

// What cuda_status() reports. Asking a device for its free memory creates a context on it
// (hundreds of MiB and a fraction of a second per GPU), so the machine is probed once.
CudaStatus probe() {
  CudaStatus s;
  s.built = true;
  s.build_versions =
      fmt::format("CUDA runtime {}.{}, cuDNN {}, cuBLAS {}", CUDART_VERSION / 1000,
                  CUDART_VERSION % 1000 / 10, cudnn_build_version(), cublas_build_version());
  int driver = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0)
    s.driver = fmt::format("driver supports CUDA {}.{}", driver / 1000, driver % 1000 / 10);
  std::string reason;
  const int count = cuda::device_count(reason);
  for (int i = 0; i < count; ++i) {
    CudaDeviceInfo info;
    if (cuda::query_device(i, info, reason)) s.devices.push_back(info);
  }
  if (s.devices.empty()) s.unavailable_reason = reason;
  return s;
}

}  // namespace

// Probed on the first call (never during static initialisation: a function-local static).
CudaStatus cuda_status() {
  static const CudaStatus status = probe();
  return status;
}

}  // namespace plinth
