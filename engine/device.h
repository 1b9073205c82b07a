// What this build and this machine offer, for `plinth info` and for choosing a device.
// Implemented in kernels/ (CUDA builds) or kernels/no_cuda/ (CPU-only builds); no CUDA
// call happens before one of these functions is called.
#pragma once

#include <string>
#include <vector>

namespace plinth {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  size_t total_memory = 0, free_memory = 0;
  int compute_major = 0, compute_minor = 0;
  int multiprocessors = 0;
};

struct CudaStatus {
  bool built = false;          // the CUDA backend was compiled in
  std::string build_versions;  // e.g. "CUDA runtime 13.0, cuDNN 9.19.0, cuBLAS 13.0.0"
  std::string driver;          // e.g. "driver 580.65 (CUDA 13.0)" or empty
  std::vector<CudaDeviceInfo> devices;
  std::string unavailable_reason;  // one line when devices is empty, e.g. "no CUDA driver found"
};

// The machine is probed once per process, on the first call; later calls return that.
CudaStatus cuda_status();

}  // namespace plinth
