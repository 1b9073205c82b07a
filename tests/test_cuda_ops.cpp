// The CUDA backend: its setup and errors, every entry of the op table (tests/op_table*.cpp)
// against the CPU backend, and what a table entry cannot say (bit-for-bit repeats). Where
// no GPU is usable each test warns "SKIPPED: <reason>" and returns, which CTest reports as
// skipped, never as passed.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "tests/op_harness.h"

#if PLINTH_HAVE_CUDA
#include "kernels/library_version.h"
#endif

namespace plinth {
namespace {

using test::gpu_status;

bool same_options(const CudaOptions& a, const CudaOptions& b) {
  return a.device_index == b.device_index && a.native_conv == b.native_conv &&
         a.precision == b.precision && a.deterministic == b.deterministic &&
         a.injected_algorithm_failures == b.injected_algorithm_failures;
}

// One CUDA backend per set of options the table asks for, made on first use.
class CudaBackends {
 public:
  Backend& with(const CudaOptions& options) {
    for (auto& [o, backend] : made_)
      if (same_options(o, options)) return *backend;
    made_.emplace_back(options, make_cuda_backend(options));
    return *made_.back().second;
  }

 private:
  std::vector<std::pair<CudaOptions, std::unique_ptr<Backend>>> made_;
};

template <typename T>
std::vector<T> download(Backend& backend, const DeviceBuffer& buffer, size_t n) {
  std::vector<T> host(n);
  backend.download(host.data(), buffer.as<void>(), n * sizeof(T));
  return host;
}

template <typename T>
DeviceBuffer upload(Backend& backend, const std::vector<T>& host) {
  DeviceBuffer buffer(backend, host.size() * sizeof(T));
  backend.upload(buffer.as<void>(), host.data(), host.size() * sizeof(T));
  return buffer;
}

// ---- status and setup (any machine) ----------------------------------------------------

TEST_CASE("cuda status: reports without throwing, and make_cuda_backend explains a missing GPU",
          "[cuda]") {
  CudaStatus status;
  REQUIRE_NOTHROW(status = cuda_status());
#ifdef PLINTH_HAVE_CUDA
  CHECK(status.built);
  CHECK_THAT(status.build_versions, Catch::Contains("CUDA runtime") && Catch::Contains("cuDNN") &&
                                        Catch::Contains("cuBLAS"));
#else
  CHECK_FALSE(status.built);
#endif
  if (status.devices.empty()) {
    REQUIRE_FALSE(status.unavailable_reason.empty());
    CHECK(status.unavailable_reason.find('\n') == std::string::npos);
    bool threw = false;
    try {
      make_cuda_backend({});
    } catch (const Error& e) {
      threw = true;
      CHECK_THAT(e.what(), Catch::Contains(status.unavailable_reason));
    }
    CHECK(threw);
  } else {
    CHECK(status.unavailable_reason.empty());
    for (const CudaDeviceInfo& d : status.devices) {
      CHECK_FALSE(d.name.empty());
      CHECK(d.compute_major >= 5);
      CHECK(d.multiprocessors > 0);
      CHECK(d.total_memory > 0);
      CHECK(d.free_memory <= d.total_memory);
    }
  }
}

#if PLINTH_HAVE_CUDA
// Needs no GPU: the comparison that check_cudnn_version() makes, with versions this
// machine does not have.
TEST_CASE(
    "cuda version: the loaded cuDNN needs the headers' major version and their minor or newer",
    "[cuda]") {
  const LibraryVersion built{9, 19, 0};
  CHECK(cudnn_version_problem(built, {9, 19, 0}).empty());
  CHECK(cudnn_version_problem(built, {9, 19, 3}).empty());
  CHECK(cudnn_version_problem(built, {9, 20, 0}).empty());
  CHECK(cudnn_version_problem(built, {9, 18, 7}) ==
        "cuDNN 9.18.7 loaded at run time is older than the cuDNN 9.19.0 headers plinth was built "
        "with; put cuDNN 9.19 or newer first on the library path (LD_LIBRARY_PATH) or rebuild "
        "plinth against the older headers (-DPLINTH_CUDNN_ROOT=...)");
  for (const LibraryVersion other : {LibraryVersion{8, 9, 7}, LibraryVersion{10, 0, 0}})
    CHECK_THAT(cudnn_version_problem(built, other),
               Catch::StartsWith("cuDNN version mismatch: plinth was built with cuDNN 9.19.0 but "
                                 "the loaded libcudnn is") &&
                   Catch::EndsWith("; install cuDNN 9.x or rebuild plinth"));
}
#endif

TEST_CASE("cuda backend: description names the device, cuDNN and the options", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const auto fp32 = make_cuda_backend({});
  CHECK(fp32->kind() == DeviceKind::cuda);
  CHECK_THAT(fp32->description(),
             Catch::StartsWith("cuda:0 " + gpu_status().devices[0].name + " (SM ") &&
                 Catch::Contains("GiB, cuDNN ") && Catch::EndsWith(", conv cudnn, fp32)"));
  CudaOptions options;
  options.native_conv = true;
  options.precision = Precision::tf32;
  CHECK_THAT(make_cuda_backend(options)->description(), Catch::EndsWith(", conv native, tf32)"));
  CHECK_THAT(make_cuda_backend({.precision = Precision::bf16})->description(),
             Catch::EndsWith(", conv cudnn, bf16)"));
}

TEST_CASE("cuda backend: a device index that does not exist is a clear error", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  CudaOptions options;
  options.device_index = static_cast<int>(gpu_status().devices.size());
  CHECK_THROWS_WITH(make_cuda_backend(options), Catch::Contains("no CUDA device"));
}

TEST_CASE("cuda memory: an impossible allocation says how much was asked and what is free",
          "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const auto gpu = make_cuda_backend({});
  CHECK_THROWS_WITH(gpu->allocate(size_t{1} << 50),
                    Catch::StartsWith("out of GPU memory: asked for ") &&
                        Catch::Contains("MiB free of") &&
                        Catch::Contains("try a smaller batch size"));
  // The failure leaves the backend usable.
  DeviceBuffer ok(*gpu, 1024);
  gpu->fill(ok.as<float>(), 256, 1.0f);
  CHECK(download<float>(*gpu, ok, 256) == std::vector<float>(256, 1.0f));
}

// ---- the op table -----------------------------------------------------------------------

TEST_CASE("cuda ops: every entry of the op table matches the CPU backend", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const auto cpu = make_cpu_backend(1);
  CudaBackends gpus;
  uint64_t seed = 0;
  for (const auto& op : test::op_table()) {
    try {
      std::unique_ptr<Backend> own;
      if (op->fresh_backend()) own = make_cuda_backend(op->cuda_options());
      test::compare_backends(*op, ++seed, *cpu, own ? *own : gpus.with(op->cuda_options()));
    } catch (const std::exception& e) {
      FAIL_CHECK(op->name() << ": " << e.what());
    }
  }
}

// ---- what a table entry cannot say: repeats on one backend -------------------------------

TEST_CASE("cuda conv2d: deterministic backward passes repeat bit for bit", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const bool native = GENERATE(false, true);
  CudaOptions options;
  options.native_conv = native;
  options.deterministic = true;
  const auto gpu = make_cuda_backend(options);
  const ConvShape s{.n = 16, .c = 32, .h = 13, .w = 13, .k = 64, .r = 3, .s = 3};
  gpu->conv2d_prepare(s);
  test::Buffers values(1);
  const DeviceBuffer x = upload(*gpu, values.random(s.input_elements()));
  const DeviceBuffer w = upload(*gpu, values.random(s.weight_elements()));
  const DeviceBuffer dy = upload(*gpu, values.random(s.output_elements()));
  const DeviceBuffer dx(*gpu, s.input_elements() * sizeof(float));
  const DeviceBuffer dw(*gpu, s.weight_elements() * sizeof(float));
  std::vector<float> first_dx, first_dw;
  for (int run = 0; run < 2; ++run) {
    gpu->conv2d_backward_data(s, dy.as<float>(), w.as<float>(), dx.as<float>());
    gpu->conv2d_backward_filter(s, x.as<float>(), dy.as<float>(), dw.as<float>());
    if (run == 0) {
      first_dx = download<float>(*gpu, dx, s.input_elements());
      first_dw = download<float>(*gpu, dw, s.weight_elements());
    } else {
      CHECK(download<float>(*gpu, dx, s.input_elements()) == first_dx);
      CHECK(download<float>(*gpu, dw, s.weight_elements()) == first_dw);
    }
  }
}

TEST_CASE("cuda losses: stats are identical bit for bit when repeated", "[cuda]") {
  PLINTH_SKIP_WITHOUT_GPU();
  const auto gpu = make_cuda_backend({});
  const int n = 4096, classes = 10;
  const size_t norm_size = size_t{1} << 20;
  test::Buffers values(1);
  std::vector<int32_t> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = i % classes;
  const DeviceBuffer z = upload(*gpu, values.random(size_t(n) * classes, -5, 5));
  const DeviceBuffer y = upload(*gpu, labels);
  const DeviceBuffer x = upload(*gpu, values.random(norm_size));
  std::vector<float> first_stats, first_norm;
  for (int run = 0; run < 3; ++run) {
    const DeviceBuffer stats = upload(*gpu, std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f});
    const DeviceBuffer norm = upload(*gpu, std::vector<float>{0.0f});
    gpu->softmax_cross_entropy(z.as<float>(), y.as<int32_t>(), n, n, classes, nullptr, nullptr,
                               stats.as<float>());
    gpu->sum_squares(x.as<float>(), norm_size, norm.as<float>());
    if (run == 0) {
      first_stats = download<float>(*gpu, stats, kStatsSize);
      first_norm = download<float>(*gpu, norm, 1);
    } else {
      CHECK(download<float>(*gpu, stats, kStatsSize) == first_stats);
      CHECK(download<float>(*gpu, norm, 1) == first_norm);
    }
  }
}

}  // namespace
}  // namespace plinth
