#include "kernels/cuda_check.h"

#include <string_view>

#include "engine/error.h"

namespace plinth::cuda {

void library_error(const char* library, const char* call, const char* file, int line,
                   const char* message) {
  // __FILE__ is an absolute build path; from "kernels/" on is what a reader needs.
  std::string_view where(file);
  if (const size_t pos = where.rfind("kernels/"); pos != std::string_view::npos)
    where.remove_prefix(pos);
  fail("{} error in {} at {}:{}: {}", library, call, where, line, message);
}

}  // namespace plinth::cuda
