// The CPU backend object: memory, description, and results that do not depend on the
// number of threads (also for every entry of the op table, tests/op_table*.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu_fallback/conv.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "tests/gradcheck.h"
#include "tests/op_harness.h"

// Under AddressSanitizer an impossible allocation aborts unless the allocator may return
// null; the allocation test below needs the ordinary behaviour. (Unused without ASan.)
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

namespace plinth {
namespace {

std::vector<float> random_floats(size_t n, uint64_t seed, double scale = 1.0) {
  const std::vector<double> v = test::random_values(n, seed, -scale, scale);
  return {v.begin(), v.end()};
}

TEST_CASE("cpu backend: description names OpenBLAS and the thread count", "[cpu]") {
  const auto one = make_cpu_backend(1);
  const auto two = make_cpu_backend(2);
  CHECK(one->kind() == DeviceKind::cpu);
  CHECK_THAT(one->description(),
             Catch::StartsWith("cpu (OpenBLAS 0.3") && Catch::EndsWith(", 1 thread)"));
  CHECK_THAT(two->description(), Catch::EndsWith(", 2 threads)"));
  CHECK_THAT(make_cpu_backend(0)->description(), Catch::Contains("thread"));
}

TEST_CASE("cpu backend: memory is 64-byte aligned and copies are exact", "[cpu]") {
  const auto backend = make_cpu_backend(2);
  const std::vector<float> host = {1.5f, -2.0f, 3.25f, 4.0f};
  for (size_t bytes : {size_t{1}, size_t{16}, size_t{1000}}) {
    void* p = backend->allocate(bytes);
    CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    backend->deallocate(p);
  }
  auto* a = static_cast<float*>(backend->allocate(sizeof(float) * 4));
  auto* b = static_cast<float*>(backend->allocate(sizeof(float) * 4));
  backend->upload(a, host.data(), sizeof(float) * 4);
  backend->copy(b, a, sizeof(float) * 4);
  std::vector<float> back(4);
  backend->download(back.data(), b, sizeof(float) * 4);
  CHECK(back == host);
  backend->fill(b, 3, 7.0f);
  backend->synchronize();
  backend->download(back.data(), b, sizeof(float) * 4);
  CHECK(back == std::vector<float>{7.0f, 7.0f, 7.0f, 4.0f});
  int64_t counter = 41;
  backend->increment(&counter, nullptr);
  CHECK(counter == 42);
  const float go = 0.0f, skip = 2.0f;
  backend->increment(&counter, &go);
  backend->increment(&counter, &skip);
  CHECK(counter == 43);
  backend->deallocate(a);
  backend->deallocate(b);
}

TEST_CASE("cpu backend: an impossible allocation throws with the size", "[cpu]") {
  const auto backend = make_cpu_backend(1);
  const size_t huge = size_t{1} << 62;
  CHECK_THROWS_AS(backend->allocate(huge), Error);
  CHECK_THROWS_WITH(backend->allocate(huge), Catch::Contains("4611686018427387904 bytes"));
}

TEST_CASE("cpu backend: conv forwards to the float templates", "[cpu]") {
  const ConvShape s{.n = 3, .c = 4, .h = 9, .w = 9, .k = 8, .r = 3, .s = 3, .stride = 2, .pad = 1};
  const std::vector<float> x = random_floats(size_t(s.n) * s.c * s.h * s.w, 1);
  const std::vector<float> w = random_floats(size_t(s.k) * s.c * 9, 2);
  const std::vector<float> b = random_floats(s.k, 3);
  std::vector<float> via_backend(size_t(s.n) * s.k * s.out_h() * s.out_w()),
      direct(via_backend.size());
  const auto backend = make_cpu_backend(2);
  backend->conv2d_prepare(s);
  backend->conv2d_forward(s, x.data(), w.data(), b.data(), via_backend.data(), Activation::relu);
  cpu::ConvWorkspace ws(2);
  cpu::conv2d_forward(ws, s, x.data(), w.data(), b.data(), direct.data(), Activation::relu);
  CHECK(via_backend == direct);
}

// The backend built with PLINTH_CPU_CONV set to value (restored after).
std::unique_ptr<Backend> cpu_backend_with_conv(const char* value) {
  const char* old = std::getenv("PLINTH_CPU_CONV");
  const std::string saved = old ? old : "";
  setenv("PLINTH_CPU_CONV", value, 1);
  struct Restore {
    bool had;
    std::string value;
    ~Restore() { had ? setenv("PLINTH_CPU_CONV", value.c_str(), 1) : unsetenv("PLINTH_CPU_CONV"); }
  } restore{old != nullptr, saved};
  return make_cpu_backend(2);
}

TEST_CASE("cpu backend: PLINTH_CPU_CONV chooses the convolution algorithm or is refused", "[cpu]") {
  const ConvShape s{.n = 8, .c = 16, .h = 13, .w = 13, .k = 32, .r = 3, .s = 3, .pad = 1};
  const std::vector<float> x = random_floats(size_t(s.n) * s.c * s.h * s.w, 1);
  const std::vector<float> w = random_floats(size_t(s.k) * s.c * 9, 2, 0.1);
  auto forward = [&](const char* value) {
    const auto backend = cpu_backend_with_conv(value);
    backend->conv2d_prepare(s);
    std::vector<float> y(size_t(s.n) * s.k * s.out_h() * s.out_w());
    backend->conv2d_forward(s, x.data(), w.data(), nullptr, y.data(), Activation::none);
    return y;
  };
  const std::vector<float> gemm = forward("gemm"), winograd = forward("winograd");
  const std::vector<float> timed = forward("auto");
  CHECK(gemm != winograd);  // the setting reaches the convolution: they round differently
  CHECK((timed == gemm || timed == winograd));
  double diff = 0;
  for (size_t i = 0; i < gemm.size(); ++i)
    diff = std::max(diff, double(std::abs(gemm[i] - winograd[i])));
  CHECK(diff < 1e-5);
  CHECK_THROWS_WITH(cpu_backend_with_conv("fast"),
                    "PLINTH_CPU_CONV: 'fast' is not one of auto, gemm, winograd");
}

TEST_CASE("cpu backend: conv backward-filter is bitwise identical on 1 and 2 threads", "[cpu]") {
  // conv2 of the seed network at batch 32: several chunks and partial sums
  const ConvShape s{.n = 32, .c = 32, .h = 13, .w = 13, .k = 64, .r = 3, .s = 3};
  const std::vector<float> x = random_floats(size_t(s.n) * s.c * s.h * s.w, 4);
  const std::vector<float> dy = random_floats(size_t(s.n) * s.k * s.out_h() * s.out_w(), 5);
  const size_t filter = size_t(s.k) * s.c * 9;
  std::vector<float> one(filter), two(filter), dx1(x.size()), dx2(x.size());
  const auto b1 = make_cpu_backend(1), b2 = make_cpu_backend(2);
  b1->conv2d_prepare(s);
  b2->conv2d_prepare(s);
  b1->conv2d_backward_filter(s, x.data(), dy.data(), one.data());
  b2->conv2d_backward_filter(s, x.data(), dy.data(), two.data());
  CHECK(std::memcmp(one.data(), two.data(), filter * sizeof(float)) == 0);
  std::vector<float> db1(s.k), db2(s.k);
  b1->bias_backward(dy.data(), db1.data(), s.n, s.k, s.out_h() * s.out_w());
  b2->bias_backward(dy.data(), db2.data(), s.n, s.k, s.out_h() * s.out_w());
  CHECK(db1 == db2);
}

TEST_CASE("cpu backend: optimizer and reductions are bitwise identical on 1 and 2 threads",
          "[cpu]") {
  const size_t n = 93322;  // the seed network's parameter count
  const std::vector<float> grads = random_floats(n, 6);
  const OptimizerSpec spec{.kind = OptimizerKind::adam, .weight_decay = 1e-4f};
  std::vector<std::vector<float>> params;
  std::vector<float> norms;
  for (int threads : {1, 2}) {
    const auto backend = make_cpu_backend(threads);
    std::vector<float> p = random_floats(n, 7), m(n, 0.0f), v(n, 0.0f);
    const float scale = 0.75f;
    for (int64_t step = 1; step <= 3; ++step)
      backend->optimizer_update(spec, LrSchedule{}, p.data(), grads.data(), m.data(), v.data(), n,
                                &step, &scale, nullptr);
    float sum_sq = 0;
    backend->sum_squares(p.data(), n, &sum_sq);
    params.push_back(p);
    norms.push_back(sum_sq);
  }
  CHECK(std::memcmp(params[0].data(), params[1].data(), n * sizeof(float)) == 0);
  CHECK(norms[0] == norms[1]);
}

// The op table's CPU-vs-CUDA comparisons, run as 1 thread against 2: every entry is well
// formed and runs (also where no GPU is), its known results hold, and threads do not change
// results beyond the entry's tolerance. The batch-4096 entries are for GPU kernels; left out.
TEST_CASE("cpu backend: every op table entry agrees on 1 and 2 threads", "[cpu]") {
  const auto one = make_cpu_backend(1), two = make_cpu_backend(2);
  uint64_t seed = 0;
  for (const auto& op : test::op_table()) {
    ++seed;
    if (op->large()) continue;
    try {
      if (op->fresh_backend())
        test::compare_backends(*op, seed, *make_cpu_backend(1), *make_cpu_backend(2));
      else
        test::compare_backends(*op, seed, *one, *two);
    } catch (const std::exception& e) {
      FAIL_CHECK(op->name() << ": " << e.what());
    }
  }
}

// The harness itself: an op whose result depends on the backend must fail the comparison
// (Catch's [!shouldfail]: these pass only by failing).
struct DisagreeingOp : test::OpTest {
  const Backend* reference;
  float step;  // the tested backend's value is 1 + step
  test::Check check;
  DisagreeingOp(const Backend* r, float s, test::Check c) : reference(r), step(s), check(c) {}
  std::string name() const override { return "disagreeing fill"; }
  void buffers(test::Buffers& b) const override { b.out("y", std::vector<float>(4), check); }
  void run(Backend& be, const test::Args& a) const override {
    be.fill(a.f32("y"), 4, &be == reference ? 1.0f : 1.0f + step);
  }
};

TEST_CASE("op harness: a difference of one ulp fails an exact comparison", "[cpu][!shouldfail]") {
  const auto one = make_cpu_backend(1), two = make_cpu_backend(2);
  const float ulp = std::nextafter(1.0f, 2.0f) - 1.0f;
  test::compare_backends(DisagreeingOp(one.get(), ulp, test::exact()), 1, *one, *two);
}

TEST_CASE("op harness: a difference past the tolerance fails a relative comparison",
          "[cpu][!shouldfail]") {
  const auto one = make_cpu_backend(1), two = make_cpu_backend(2);
  test::compare_backends(DisagreeingOp(one.get(), 2e-5f, test::relative(test::kFp32)), 1, *one,
                         *two);
}

}  // namespace
}  // namespace plinth
