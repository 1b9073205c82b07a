#include "engine/device_select.h"

#include <algorithm>

#include "engine/device.h"
#include "engine/error.h"
#include "engine/user_text.h"

namespace plinth {

namespace {

// The N of "cuda:N": digits only, nothing before or after them.
int device_number(const std::string& spec) {
  return static_cast<int>(parse_integer(spec.substr(5), "device cuda:N", 0, 1023));
}

// The usable device numbered `index`, or an error naming the usable ones.
void check_usable(const std::string& spec, const CudaStatus& status, int index) {
  const auto& d = status.devices;
  if (std::any_of(d.begin(), d.end(), [&](const CudaDeviceInfo& i) { return i.index == index; }))
    return;
  std::string usable;
  for (const CudaDeviceInfo& i : d)
    usable += fmt::format("{}{}", usable.empty() ? "" : ", ", i.index);
  fail("device {}: there is no usable CUDA device {} (usable: {})", spec, index, usable);
}

}  // namespace

DeviceChoice open_device(const std::string& spec, int threads, CudaOptions cuda) {
  DeviceChoice choice;
  if (spec == "cpu") {
    choice.backend = make_cpu_backend(threads);
    return choice;
  }
  const bool numbered = spec.rfind("cuda:", 0) == 0;
  if (spec != "auto" && spec != "cuda" && !numbered)
    fail("device: expected auto, cpu, cuda or cuda:N, got {}", quoted_input(spec));
  if (numbered) cuda.device_index = device_number(spec);  // a malformed spec fails first
  const CudaStatus status = cuda_status();
  if (status.devices.empty()) {
    if (spec != "auto") fail("device {}: no usable GPU: {}", spec, status.unavailable_reason);
    choice.note =
        fmt::format("plinth: no usable GPU ({}); using the CPU", status.unavailable_reason);
    choice.backend = make_cpu_backend(threads);
    return choice;
  }
  // auto and cuda take the first usable device, which need not be device 0.
  if (numbered)
    check_usable(spec, status, cuda.device_index);
  else
    cuda.device_index = status.devices.front().index;
  choice.backend = make_cuda_backend(cuda);
  return choice;
}

}  // namespace plinth
