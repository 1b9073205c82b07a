// One backend's ops against another's, entry by entry, in the shape of ggml's
// tests/test-backend-ops.cpp. Each op under test is one small struct (tests/op_table*.cpp)
// that lists the buffers the op reads and writes with their contents for its sizes, runs
// the op on a backend, and says how closely two backends must agree and why. The harness
// creates every buffer on both backends with the same contents, runs the op on each and
// compares the buffers the entry marks. So a new op gets its CPU-vs-CUDA test by adding
// one entry to the table.
//
// Nothing here calls CUDA until a test runs: the test binary is run at build time to list
// the tests, on machines without a driver.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/backend.h"
#include "engine/device.h"
#include "engine/tensor.h"

namespace plinth::test {

// fp32 results of different summation orders: a few ulps per operation, relative to the
// largest value of the array.
inline constexpr double kFp32 = 1e-5;
// Long dot products summed by different algorithms (convolutions, bilinear sampling).
inline constexpr double kFp32Conv = 1e-4;
// TF32 keeps 10 mantissa bits of each product's inputs (relative error about 5e-4 each).
inline constexpr double kTf32 = 1e-2;
// BF16 keeps 8 (about 2e-3 each), and a bf16 convolution's output is rounded to bf16 too.
inline constexpr double kBf16 = 5e-2;

// The contents of a buffer on the host, in the buffer's element type.
using HostData = std::variant<std::vector<float>, std::vector<int32_t>, std::vector<int64_t>,
                              std::vector<uint8_t>>;

// How a buffer is compared after the op ran on both backends.
struct Check {
  enum Kind {
    none,      // an input the op only reads
    exact,     // equal element for element (integers, and floats both compute the same way)
    relative,  // max |tested - reference| / max |reference| below tolerance (floats)
    stats,     // a loss stats array: loss and correct within tolerance (relative, at least
               // 1 absolute), count and non-finite exact
  };
  Kind kind = none;
  double tolerance = 0;
  // When set, both backends' results must also equal this (a value known independently).
  std::optional<HostData> expected;
};

inline Check exact() { return {Check::exact}; }
inline Check exact_and_equal_to(HostData expected) {
  return {Check::exact, 0, std::move(expected)};
}
inline Check relative(double tolerance) { return {Check::relative, tolerance}; }
inline Check stats(double tolerance = kFp32) { return {Check::stats, tolerance}; }

// The buffers of one entry, declared by OpTest::buffers(), with the random values that fill
// them: every call draws fresh values from the entry's seed, so runs repeat exactly.
class Buffers {
 public:
  explicit Buffers(uint64_t seed) : seed_(seed) {}

  // An input the op only reads.
  void in(const std::string& name, HostData contents) { add(name, std::move(contents), {}); }
  // A buffer the op writes, starting as contents (13s for a buffer the op must overwrite;
  // the start of a buffer the op accumulates into), compared as check says.
  void out(const std::string& name, HostData contents, Check check) {
    add(name, std::move(contents), std::move(check));
  }

  // n values uniform in [lo, hi).
  std::vector<float> random(size_t n, double lo = -1.0, double hi = 1.0);
  // n values in [-1, 1), evenly spaced, in random order: no ties where floats can tell
  // them apart (max pooling).
  std::vector<float> distinct(size_t n);

  struct Entry {
    std::string name;
    HostData contents;
    Check check;
  };
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  void add(const std::string& name, HostData contents, Check check);
  uint64_t seed_;
  std::vector<Entry> entries_;
};

// An entry's buffers on one backend, by name.
class Args {
 public:
  Args(Backend& backend, const Buffers& buffers);

  // The buffer's memory; throws std::logic_error for an unknown name or another type.
  float* f32(const std::string& name) const;
  int32_t* i32(const std::string& name) const;
  int64_t* i64(const std::string& name) const;
  uint8_t* u8(const std::string& name) const;

  // The buffer's contents now, downloaded in its element type.
  HostData read(const std::string& name) const;

 private:
  struct Buffer {
    DeviceBuffer memory;
    HostData host;  // an empty vector of the element type; sized on read()
  };
  template <typename T>
  T* get(const std::string& name) const;
  const Buffer& at(const std::string& name) const;

  Backend* backend_;
  std::map<std::string, Buffer> buffers_;
};

// One op under test at one size.
class OpTest {
 public:
  virtual ~OpTest() = default;
  // The op and its sizes, printed with every failure.
  virtual std::string name() const = 0;
  virtual void buffers(Buffers& b) const = 0;
  virtual void run(Backend& backend, const Args& args) const = 0;
  // The CUDA backend's settings for this entry (cuDNN or the native convolution, precision).
  virtual CudaOptions cuda_options() const { return {}; }
  // Entries at batch 4096 stress the GPU kernels' block caps and index widths; CPU-only
  // runs leave them out.
  virtual bool large() const { return false; }
  // True for an entry about a backend's first use (nothing prepared, no workspace yet):
  // the harness gives it a backend of its own instead of one shared with other entries.
  virtual bool fresh_backend() const { return false; }
};

// Every entry, built afresh on each call (no device work).
std::vector<std::unique_ptr<OpTest>> op_table();

// Runs test on both backends from the same buffers (seeded by seed) and CHECKs every
// buffer it marks; a failure names the entry, the buffer and the error.
void compare_backends(const OpTest& test, uint64_t seed, Backend& reference, Backend& tested);

// Asked once per process, inside a test (never during static initialisation).
const CudaStatus& gpu_status();

}  // namespace plinth::test

// Where no GPU is usable a [cuda] test warns "SKIPPED: <reason>" and returns, which CTest
// reports as skipped (SKIP_REGULAR_EXPRESSION), never as passed.
#define PLINTH_SKIP_WITHOUT_GPU()                                           \
  do {                                                                      \
    if (::plinth::test::gpu_status().devices.empty()) {                     \
      WARN("SKIPPED: " << ::plinth::test::gpu_status().unavailable_reason); \
      return;                                                               \
    }                                                                       \
  } while (0)
