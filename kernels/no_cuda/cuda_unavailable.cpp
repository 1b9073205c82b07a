// CPU-only builds (PLINTH_CUDA=OFF or no nvcc): the CUDA entry points exist and explain.
#include "engine/backend.h"
#include "engine/device.h"
#include "engine/error.h"

namespace plinth {

CudaStatus cuda_status() {
  CudaStatus s;
  s.unavailable_reason = "this plinth was built without CUDA (PLINTH_CUDA=OFF or no nvcc found)";
  return s;
}

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions&) {
  fail("device cuda: {}", cuda_status().unavailable_reason);
}

}  // namespace plinth
