// Memory as a whole: plans are added up and refused before anything is allocated, with one
// line that says what would fit (engine/memory_budget.h); the host's available memory
// honours cgroup limits (cpu_fallback/host_memory.h); evaluation runs at the training
// batch size.
#include <catch2/catch.hpp>

#include <fstream>

#include "cpu_fallback/host_memory.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "engine/memory_budget.h"
#include "engine/trainer.h"
#include "engine_fixtures.h"
#include "robustness_fixtures.h"

using namespace plinth;
using Catch::Contains;

TEST_CASE("memory budget: the largest batch that fits is found from the plan, conservatively",
          "[memory]") {
  MemoryNeed need;
  need.batch = 100;
  need.fixed_bytes = 1000;
  need.add("stats", 1000);
  need.add("fc1", 100'000'000 - 1000);  // at most 1 MB a sample
  CHECK(largest_batch_within(need, 50'000'000) == 49);
  CHECK(largest_batch_within(need, 1'000'999) == 0);
  CHECK(largest_batch_within(need, 2'001'000) == 2);
  CHECK(largest_batch_within(need, 500) == 0);
  CHECK(largest_batch_within(need, size_t{1} << 60) == 99);  // never the batch itself or more
  need.batch = 0;  // a need that no batch changes (the parameters)
  CHECK(largest_batch_within(need, 50'000'000) == 0);
}

TEST_CASE("memory budget: a plan larger than the device is one line naming what would fit",
          "[memory]") {
  auto be = make_cpu_backend(1);
  MemoryNeed need;
  need.what = "model 'huge' at batch 64 (training)";
  need.batch = 64;
  need.fixed_bytes = 4096;
  need.add("fc1", size_t{1} << 61);
  need.add("conv1", size_t{1} << 58);
  need.add("input", 1000);
  try {
    require_memory(*be, need);
    FAIL("no error");
  } catch (const MemoryError& e) {
    CHECK_THAT(std::string(e.what()),
               Contains("model 'huge' at batch 64 (training) needs 2304.0 PiB but ") &&
                   Contains(" is available on cpu (") &&
                   Contains("(largest: fc1 2048.0 PiB, conv1 256.0 PiB, input 1000 bytes); ") &&
                   Contains("not even batch size 1 would fit: use a smaller model"));
    CHECK(e.fitting_batch() == 0);
  }
  MemoryNeed small;
  small.add("x", 1 << 20);
  CHECK_NOTHROW(require_memory(*be, small));
}

TEST_CASE("host memory: MemAvailable and cgroup limits, v1 and v2, page cache reclaimable",
          "[memory]") {
  CHECK(cpu::mem_available("MemTotal: 100 kB\nMemAvailable:   2048 kB\n") == 2048 * 1024);
  CHECK(cpu::mem_available("MemTotal: 100 kB\n") == SIZE_MAX);
  const std::string dir = test::temp_dir("cgroup");
  auto put = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
  };
  put("memory.max", "max\n");
  put("memory.current", "5000\n");
  CHECK(cpu::cgroup_room(dir) == SIZE_MAX);  // v2 without a limit
  put("memory.max", "1000000\n");
  put("memory.stat", "anon 1000\nfile 4000\ninactive_file 3000\nactive_file 1000\n");
  CHECK(cpu::cgroup_room(dir) == 1000000 - 2000);  // 5000 used, 3000 of it reclaimable
  put("memory.current", "2000000\n");
  CHECK(cpu::cgroup_room(dir) == 0);

  const std::string v1 = test::temp_dir("cgroup-v1");
  std::ofstream(v1 + "/memory.limit_in_bytes") << "9223372036854771712\n";  // v1's "no limit"
  std::ofstream(v1 + "/memory.usage_in_bytes") << "7000\n";
  CHECK(cpu::cgroup_room(v1) == SIZE_MAX);
  std::ofstream(v1 + "/memory.limit_in_bytes") << "10000\n";
  std::ofstream(v1 + "/memory.stat") << "cache 5000\ntotal_inactive_file 1000\n";
  CHECK(cpu::cgroup_room(v1) == 4000);
  // This process's own figure is positive and no more than the machine's.
  CHECK(cpu::available_host_memory() > 0);
  CHECK(cpu::available_host_memory() <= cpu::mem_available([] {
          std::ifstream in("/proc/meminfo");
          return std::string(std::istreambuf_iterator<char>(in), {});
        }()));
}

TEST_CASE("memory budget: the executor refuses a plan the device cannot hold, before allocating",
          "[memory]") {
  // 2^26 floats (256 MiB) an activation per sample; in training the input, the
  // probabilities and each layer's output and gradient: 1.5 GiB a sample.
  const Model m = test::model_from(R"({"input": [64, 1024, 1024], "loss": "mse", "layers": [
      {"type": "activation", "name": "a1", "activation": "relu"},
      {"type": "activation", "name": "a2", "activation": "relu"}]})");
  const size_t per_sample = size_t{6} << 28;
  auto be = make_cpu_backend(1);
  Parameters params(m, *be);
  const size_t available = be->available_memory();
  const int batch = static_cast<int>(std::min<size_t>(2 * available / per_sample + 2, 1 << 20));
  try {
    Executor exec(m, params, *be, batch, true);
    FAIL("no error at batch " << batch);
  } catch (const MemoryError& e) {
    CHECK_THAT(std::string(e.what()),
               Contains("model 'model' at batch " + std::to_string(batch) + " (training) needs ") &&
                   Contains(" is available on cpu (") && Contains("(largest: a1 ") &&
                   Contains("would fit"));
    CHECK(e.fitting_batch() < batch);
    CHECK(static_cast<double>(e.fitting_batch()) * per_sample <= static_cast<double>(available));
    CHECK(static_cast<double>(e.fitting_batch() + 2) * per_sample > static_cast<double>(available));
  }
}

TEST_CASE("evaluation: runs at the training batch size, not a fixed 500", "[memory][engine]") {
  REQUIRE_FASHION();
  const Model m = test::model_from(R"({"input": [1, 28, 28], "layers": [
      {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]})");
  auto be = make_cpu_backend(1);
  Parameters params(m, *be);
  params.initialize(1);
  const Dataset data = test::head(test::fashion_train(), 700);
  TrainOptions o;
  o.batch_size = 32;
  Trainer t(m, *be, params, o);
  const EvalResult r = t.evaluate(data);
  CHECK(r.count == 700);
  CHECK(r.batch == 32);
  CHECK(t.evaluate(test::head(data, 20)).batch == 20);
  o.eval_batch_size = 250;
  CHECK(Trainer(m, *be, params, o).evaluate(data).batch == 250);
}

TEST_CASE(
    "memory budget: a dense layer of millions of units and a 100,000-layer model fail fast "
    "with one line",
    "[memory][robustness]") {
  REQUIRE_FASHION();
  const test::SmallData d("memory-cli");
  const size_t available = make_cpu_backend(1)->available_memory();
  // Each of the parameters' four arenas (values, gradients, two moments) 40% of what is
  // available: each allocation alone was allowed, and the kernel's OOM killer ended the
  // run after 74 s without a word. 2 M units on a machine with 21 GB available.
  const size_t per_arena = available / 10 * 4;
  const size_t filters = 1 + per_arena / (size_t{3136} << 24);
  const size_t units = per_arena / (3136 * filters);
  const std::string dense = d.dir + "/dense.json";
  test::spit(dense, fmt::format(R"({{"name": "wide", "input": [1, 28, 28], "layers": [
      {{"type": "conv2d", "filters": {}, "kernel": 3, "padding": "same"}}, {{"type": "flatten"}},
      {{"type": "dense", "name": "fc1", "units": {}, "activation": "softmax"}}]}})",
                                filters, units));
  test::CliProcess wide(d.args("--model " + dense), d.dir + "/dense.log");
  REQUIRE(wide.wait_for(120));
  test::expect_clean_error(
      {wide.status(), wide.output()},
      "model 'wide', for its parameters (values, gradients, optimizer moments), "
      "needs ",
      "(largest: fc1 ");
  CHECK(wide.seconds() < 60);

  // 100,000 layers, each an output and a gradient at batch 32: twice what is available.
  const size_t channels = 1 + 2 * available / (size_t{20} << 30);
  std::string layers = fmt::format(R"({{"type": "conv2d", "filters": {}, "kernel": 1}})", channels);
  for (int i = 0; i < 99'998; ++i) layers += R"(,{"type": "activation", "activation": "relu"})";
  layers += R"(,{"type": "conv2d", "filters": 1, "kernel": 1})";
  const std::string deep = d.dir + "/deep.json";
  test::spit(deep, fmt::format(R"({{"name": "deep", "input": [1, 28, 28], "loss": "mse",
      "layers": [{}]}})",
                               layers));
  test::CliProcess tall(d.args("--model " + deep + " --batch-size 32"), d.dir + "/deep.log");
  REQUIRE(tall.wait_for(120));
  test::expect_clean_error({tall.status(), tall.output()},
                           "model 'deep' at batch 32 (training) needs ", "would fit");
  CHECK(tall.seconds() < 60);
}
