#include "kernels/cuda_check.h"

#include <atomic>
#include <string>
#include <string_view>

#include "engine/error.h"

namespace plinth::cuda {

namespace {

std::atomic<bool> g_sync_launches{false};

// __FILE__ is an absolute build path; from "kernels/" on is what a reader needs.
std::string_view short_path(const char* file) {
  std::string_view where(file);
  if (const size_t pos = where.rfind("kernels/"); pos != std::string_view::npos)
    where.remove_prefix(pos);
  return where;
}

}  // namespace

void library_error(const char* library, const char* call, const char* file, int line,
                   const char* message) {
  fail("{} error in {} at {}:{}: {}", library, call, short_path(file), line, message);
}

void enable_sync_launches() { g_sync_launches = true; }
bool sync_launches() { return g_sync_launches; }

void check_launch(const char* what, const char* file, int line) {
  cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    const std::string call = std::string("the kernel launch in ") + what;
    library_error("CUDA", call.c_str(), file, line, cudaGetErrorString(status));
  }
  if (!g_sync_launches) return;
  status = cudaDeviceSynchronize();
  if (status == cudaSuccess) status = cudaGetLastError();
  if (status != cudaSuccess) {
    const std::string call = std::string("the work queued by ") + what + " (synchronised launch)";
    library_error("CUDA", call.c_str(), file, line, cudaGetErrorString(status));
  }
}

}  // namespace plinth::cuda
