#include "engine/device_select.h"

#include "engine/device.h"
#include "engine/error.h"
#include "engine/user_text.h"

namespace plinth {

DeviceChoice open_device(const std::string& spec, int threads, CudaOptions cuda) {
  DeviceChoice choice;
  if (spec == "cpu") {
    choice.backend = make_cpu_backend(threads);
    return choice;
  }
  if (spec == "auto") {
    const CudaStatus status = cuda_status();
    if (status.devices.empty()) {
      choice.note =
          fmt::format("plinth: no usable GPU ({}); using the CPU", status.unavailable_reason);
      choice.backend = make_cpu_backend(threads);
      return choice;
    }
    choice.backend = make_cuda_backend(cuda);
    return choice;
  }
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    if (spec.size() > 5)
      cuda.device_index = static_cast<int>(parse_integer(spec.substr(5), "device cuda:N", 0, 1023));
    const CudaStatus status = cuda_status();
    if (status.devices.empty())
      fail("device {}: no usable GPU: {}", spec, status.unavailable_reason);
    if (cuda.device_index < 0 || cuda.device_index >= static_cast<int>(status.devices.size()))
      fail("device {}: there are {} CUDA devices", spec, status.devices.size());
    choice.backend = make_cuda_backend(cuda);
    return choice;
  }
  fail("device: expected auto, cpu, cuda or cuda:N, got {}", quoted_input(spec));
}

}  // namespace plinth
