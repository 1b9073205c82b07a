// Choosing the device: loud about what runs where, never a silent fallback.
#pragma once

#include <memory>
#include <string>

#include "engine/backend.h"

namespace plinth {

struct DeviceChoice {
  std::unique_ptr<Backend> backend;
  std::string note;  // one line for the user when `auto` fell back to the CPU, else empty
};

// spec: "auto" (the first usable GPU, else the CPU with a note saying why), "cpu", "cuda"
// (the first usable GPU) or "cuda:N" (device number N, an error if it is not usable; N is
// digits only). threads applies to the CPU backend.
// Errors start with "device", e.g. "device cuda: no usable GPU: ...".
DeviceChoice open_device(const std::string& spec, int threads, CudaOptions cuda = {});

}  // namespace plinth
