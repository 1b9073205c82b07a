// Data-parallel training with the real tool under mpirun: 2 CPU ranks on this machine
// train the weights one process trains with the same global batch, checkpoints move
// between rank counts, and a rank that dies or hangs ends the job with a message naming it,
// the last checkpoint intact. Skipped (visibly) where the build has no MPI or no mpirun.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "engine/checkpoint.h"
#include "engine/communicator.h"
#include "robustness_fixtures.h"

using namespace plinth;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// mpirun's path, or "" when this build has no MPI or the machine no mpirun.
std::string mpirun() {
  if (!distributed_build().mpi) return "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin";
  for (size_t start = 0, end = 0; start <= dirs.size(); start = end + 1) {
    end = std::min(dirs.find(':', start), dirs.size());
    const fs::path candidate = fs::path(dirs.substr(start, end - start)) / "mpirun";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

#define REQUIRE_MPIRUN()                                                            \
  if (mpirun().empty()) {                                                           \
    WARN("SKIPPED: this build has no MPI, or there is no mpirun (libopenmpi-dev)"); \
    return;                                                                         \
  }

// N ranks on this machine, as root too (CI) and on more ranks than cores.
std::string launcher(int ranks) {
  return fmt::format("{} --allow-run-as-root --oversubscribe -np {}", mpirun(), ranks);
}

// 600 training images (540 after the validation split: 16 global batches of 32 an epoch).
// The model has augmentation (keyed by sample, so shards see what one process sees) and no
// dropout (each rank draws its own masks, so dropout cannot equal one process's).
struct Run {
  std::string dir;
  std::string model;
  explicit Run(const std::string& name) : dir(test::small_fashion_dir(name, 600, 200)) {
    model = dir + "/cnn.json";
    std::ofstream(model) << R"({
      "name": "cnn", "input": [1, 28, 28],
      "layers": [
        {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "activation": "relu"},
        {"type": "maxpool2d", "name": "pool1", "size": 2},
        {"type": "flatten", "name": "flatten"},
        {"type": "dense", "name": "fc1", "units": 16, "activation": "relu"},
        {"type": "dense", "name": "fc2", "units": 10, "activation": "softmax"}],
      "loss": "categorical_crossentropy",
      "optimizer": {"type": "adam", "lr": 0.002},
      "training": {"augment": {"shift": 2}}
    })";
  }
  std::string args(const std::string& more) const {
    return fmt::format(
        "train --device cpu --threads 1 --data {} --model {} --batch-size 32 --seed 3 "
        "--val-split 0.1 {}",
        dir, model, more);
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
};

// Runs the tool (under mpirun with ranks > 0) to its end; its output on failure.
test::CliProcess& finish(test::CliProcess& p, double seconds = 300) {
  const bool ended = p.wait_for(seconds);
  INFO(p.output());
  REQUIRE(ended);
  return p;
}

int run(const Run& r, const std::string& more, const std::string& log, int ranks = 0) {
  test::CliProcess p(r.args(more), r.path(log),
                     {.launcher = ranks > 0 ? launcher(ranks) : std::string()});
  finish(p);
  INFO(p.output());
  CHECK(p.status() == 0);
  return p.status();
}

// The largest difference of two checkpoints' tensors relative to the tensor's largest value.
double max_relative_difference(const std::string& a, const std::string& b) {
  const auto wa = test::checkpoint_weights(a), wb = test::checkpoint_weights(b);
  REQUIRE(wa.size() == wb.size());
  double worst = 0;
  for (const auto& [name, values] : wa) {
    const std::vector<float>& other = wb.at(name);
    REQUIRE(other.size() == values.size());
    float scale = 1e-12f, diff = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      scale = std::max(scale, std::abs(values[i]));
      diff = std::max(diff, std::abs(values[i] - other[i]));
    }
    worst = std::max(worst, static_cast<double>(diff / scale));
  }
  return worst;
}

// Rank `rank`'s process among the children of mpirun `launcher_pid`, or -1 before it starts.
pid_t rank_pid(pid_t launcher_pid, int rank) {
  const std::string wanted = fmt::format("OMPI_COMM_WORLD_RANK={}", rank);
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    if (parent != launcher_pid) continue;
    std::ifstream environ(entry.path() / "environ");
    for (std::string var; std::getline(environ, var, '\0');)
      if (var == wanted) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// Starts a long 2-rank run that saves every epoch, waits for its first checkpoint, sends
// rank 1 `sig` and returns the job once it has ended.
struct Failed {
  int status;
  std::string output;
  double seconds_after_signal;
};
Failed fail_rank_1(const Run& r, int sig, const std::string& ckpt, const std::string& more) {
  test::CliProcess p(r.args("--epochs 1000 --save-every 1 --save " + ckpt + " --quiet " + more),
                     r.path("failing.log"), {.launcher = launcher(2)});
  while (!fs::exists(ckpt) && p.seconds() < 120 && !p.wait_for(p.seconds() + 0.01)) {
  }
  INFO(p.output());
  REQUIRE(fs::exists(ckpt));
  REQUIRE(p.running());
  const pid_t rank1 = rank_pid(p.pid(), 1);
  REQUIRE(rank1 > 0);
  ::kill(rank1, sig);
  const double signalled = p.seconds();
  finish(p, signalled + 60);
  if (sig == SIGSTOP) ::kill(rank1, SIGKILL);  // in case the launcher left it stopped
  return {p.status(), p.output(), p.seconds() - signalled};
}

}  // namespace

TEST_CASE("distributed: the job's ranks are read from the launcher's environment",
          "[distributed]") {
  const char* vars[] = {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                        "OMPI_COMM_WORLD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"};
  std::vector<std::pair<std::string, std::string>> saved;
  for (const char* v : vars) {
    const char* value = std::getenv(v);
    if (value) saved.emplace_back(v, value);
  }
  ::setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  ::setenv("OMPI_COMM_WORLD_RANK", "3", 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  const LaunchInfo four = launch_info();
  ::setenv("OMPI_COMM_WORLD_RANK", "4", 1);  // out of range: not a launch
  const LaunchInfo bad = launch_info();
  for (const char* v : vars) ::unsetenv(v);
  const LaunchInfo alone = launch_info();
  for (const auto& [name, value] : saved) ::setenv(name.c_str(), value.c_str(), 1);
  CHECK((four.by_launcher && four.size == 4 && four.rank == 3 && four.local_size == 2 &&
         four.local_rank == 1));
  CHECK_FALSE(bad.by_launcher);
  CHECK((!alone.by_launcher && alone.size == 1 && alone.rank == 0));
}

TEST_CASE("distributed: plinth info says whether MPI and NCCL are built", "[distributed][cli]") {
  const test::CommandResult info = test::run_cli("info");
  REQUIRE(info.status == 0);
  CHECK_THAT(info.output, Contains(distributed_build().mpi ? "mpi:  built" : "mpi:  not built"));
  CHECK_THAT(info.output, Contains(distributed_build().nccl ? "nccl: built" : "nccl: not built"));
}

TEST_CASE("distributed: 2 CPU ranks train the weights of one process with the same global batch",
          "[distributed][training]") {
  REQUIRE_MPIRUN();
  const Run r("dist-equal");
  // 2 epochs: 32 steps, validation and test sets evaluated in shards and reduced.
  constexpr const char* common = "--epochs 2 --history {} --save {}";
  REQUIRE(run(r, fmt::format(fmt::runtime(common), r.path("one.json"), r.path("one.safetensors")),
              "one.log") == 0);
  test::CliProcess two(
      r.args(fmt::format(fmt::runtime(common), r.path("two.json"), r.path("two.safetensors"))),
      r.path("two.log"), {.launcher = launcher(2)});
  finish(two);
  const std::string out = two.output();
  INFO(out);
  REQUIRE(two.status() == 0);
  CHECK_THAT(out, Contains("data-parallel: ") && Contains("global batch 32 = 2 x 16 per rank"));
  // Rank 0 alone prints: one result line.
  CHECK(out.find("Test accuracy") == out.rfind("Test accuracy"));
  CHECK(max_relative_difference(r.path("one.safetensors"), r.path("two.safetensors")) < 1e-4);
  const CheckpointMeta one = read_checkpoint_meta(r.path("one.safetensors"));
  const CheckpointMeta dist = read_checkpoint_meta(r.path("two.safetensors"));
  CHECK(dist.state.step == one.state.step);
  REQUIRE(dist.state.history.size() == 2);
  for (size_t e = 0; e < 2; ++e) {  // whole-set figures, reduced over the ranks
    CHECK(dist.state.history[e].loss == Approx(one.state.history[e].loss).epsilon(1e-4));
    CHECK(dist.state.history[e].val_accuracy ==
          Approx(one.state.history[e].val_accuracy).margin(1.5 / 60));
  }
}

TEST_CASE("distributed: a 2-rank checkpoint resumes with 1 rank, and a 1-rank one with 2",
          "[distributed][checkpoint]") {
  REQUIRE_MPIRUN();
  const Run r("dist-resume");
  REQUIRE(run(r, "--epochs 2 --quiet --save " + r.path("whole.safetensors"), "whole.log") == 0);
  // Stopped inside epoch 2 (step 20 of 32) with 2 ranks, finished with 1.
  REQUIRE(run(r, "--epochs 2 --max-steps 20 --quiet --save " + r.path("2to1.safetensors"),
              "first.log", 2) == 0);
  CHECK(read_checkpoint_meta(r.path("2to1.safetensors")).state.batch_in_epoch == 4);
  REQUIRE(run(r,
              fmt::format("--epochs 2 --quiet --resume {0} --save {0}", r.path("2to1.safetensors")),
              "second.log") == 0);
  CHECK(max_relative_difference(r.path("whole.safetensors"), r.path("2to1.safetensors")) < 1e-4);
  // And the other way: 1 rank, then 2.
  REQUIRE(run(r, "--epochs 1 --quiet --save " + r.path("1to2.safetensors"), "third.log") == 0);
  REQUIRE(run(r,
              fmt::format("--epochs 2 --quiet --resume {0} --save {0}", r.path("1to2.safetensors")),
              "fourth.log", 2) == 0);
  CHECK(max_relative_difference(r.path("whole.safetensors"), r.path("1to2.safetensors")) < 1e-4);
  const CheckpointMeta whole = read_checkpoint_meta(r.path("whole.safetensors"));
  const CheckpointMeta resumed = read_checkpoint_meta(r.path("1to2.safetensors"));
  CHECK(resumed.state.step == whole.state.step);
  REQUIRE(resumed.state.history.size() == 2);
  CHECK(resumed.state.history[1].loss == Approx(whole.state.history[1].loss).epsilon(1e-4));
}

TEST_CASE("distributed: a global batch that does not divide among the ranks is refused",
          "[distributed][cli]") {
  REQUIRE_MPIRUN();
  const Run r("dist-batch");
  test::CliProcess p(r.args("--epochs 1 --batch-size 33"), r.path("odd.log"),
                     {.launcher = launcher(2)});
  finish(p, 120);
  INFO(p.output());
  CHECK(p.status() != 0);
  CHECK_THAT(p.output(), Contains("--batch-size: the global batch of 33 does not divide among 2 "
                                  "ranks (give a multiple of 2)"));
}

TEST_CASE("distributed: a killed rank ends the job, naming it, and the checkpoint resumes",
          "[distributed][robustness]") {
  REQUIRE_MPIRUN();
  const Run r("dist-kill");
  const std::string ckpt = r.path("killed.safetensors");
  const Failed f = fail_rank_1(r, SIGKILL, ckpt, "");
  INFO(f.output);
  CHECK(f.status != 0);
  CHECK_THAT(f.output, Contains("rank 1"));
  const CheckpointMeta saved = read_checkpoint_meta(ckpt);  // intact: it loads
  CHECK(saved.state.epoch >= 1);
  REQUIRE(run(r,
              fmt::format("--epochs 1000 --quiet --resume {0} --save {0} --max-steps {1}", ckpt,
                          saved.state.step + 16),
              "resumed.log") == 0);
  CHECK(read_checkpoint_meta(ckpt).state.step == saved.state.step + 16);
}

TEST_CASE("distributed: a hung rank ends the job after --rank-timeout, naming it",
          "[distributed][robustness]") {
  REQUIRE_MPIRUN();
  const Run r("dist-hang");
  const std::string ckpt = r.path("hung.safetensors");
  const Failed f = fail_rank_1(r, SIGSTOP, ckpt, "--rank-timeout 2");
  INFO(f.output);
  CHECK(f.status != 0);
  CHECK_THAT(f.output, Contains("plinth: error: rank 0: ") && Contains("waited more than 2 s"));
  CHECK_THAT(f.output, Contains("rank 1 did not answer"));
  CHECK(f.seconds_after_signal < 30);
  CHECK(read_checkpoint_meta(ckpt).state.epoch >= 1);
}
