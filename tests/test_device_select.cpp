// Choosing the device from a spec: strict parsing before any CUDA call, the first usable
// GPU for auto and cuda, device numbers (not counts) for cuda:N. Runs on any machine; the
// cases that need a GPU check what this machine has.
#include <catch2/catch.hpp>

#include <string>

#include "engine/device.h"
#include "engine/device_select.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "tests/op_harness.h"

using namespace plinth;

TEST_CASE("device select: a malformed cuda:N is refused before the GPU is asked", "[device]") {
  for (const std::string spec :
       {"cuda:", "cuda:1x", "cuda:-1", "cuda: 1", "cuda:+1", "cuda:0x1", "cuda:99999999999"}) {
    INFO(spec);
    CHECK_THROWS_WITH(open_device(spec, 1),
                      Catch::StartsWith("device cuda:N expects an integer from 0 to 1023, got"));
  }
  CHECK_THROWS_WITH(open_device("gpu", 1),
                    Catch::Equals("device: expected auto, cpu, cuda or cuda:N, got 'gpu'"));
  CHECK_THROWS_WITH(open_device("Cuda", 1), Catch::Contains("expected auto, cpu, cuda or cuda:N"));
}

TEST_CASE("device select: auto and cuda take the first usable GPU, cuda:N a usable device number",
          "[device]") {
  const CudaStatus status = cuda_status();
  if (status.devices.empty()) {
    const DeviceChoice fallback = open_device("auto", 1);
    CHECK(fallback.backend->kind() == DeviceKind::cpu);
    CHECK_THAT(fallback.note, Catch::Contains("no usable GPU") && Catch::Contains("using the CPU"));
    for (const std::string spec : {"cuda", "cuda:0"})
      CHECK_THROWS_WITH(open_device(spec, 1),
                        Catch::StartsWith("device " + spec + ": no usable GPU: "));
    return;
  }
  const std::string first = "cuda:" + std::to_string(status.devices.front().index) + " ";
  for (const std::string spec : {"auto", "cuda"}) {
    const DeviceChoice choice = open_device(spec, 1);
    CHECK(choice.note.empty());
    CHECK(choice.backend->kind() == DeviceKind::cuda);
    CHECK_THAT(choice.backend->description(), Catch::StartsWith(first));
  }
  const int missing = status.devices.back().index + 1;
  CHECK_THROWS_WITH(
      open_device("cuda:" + std::to_string(missing), 1),
      Catch::Contains("there is no usable CUDA device " + std::to_string(missing)) &&
          Catch::Contains("(usable: " + std::to_string(status.devices.front().index)));
}

TEST_CASE("device select: the machine is probed once per process", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const CudaStatus before = cuda_status();
  const auto gpu = make_cuda_backend({});
  DeviceBuffer taken(*gpu, size_t{512} << 20);
  // Probed again, device 0's free memory would now be at least 512 MiB less.
  const CudaStatus after = cuda_status();
  REQUIRE(after.devices.size() == before.devices.size());
  CHECK(after.devices.front().free_memory == before.devices.front().free_memory);
}
