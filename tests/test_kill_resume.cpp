// Process faults: the real CLI killed at random moments, stopped by signals, or unable to
// save, and then resumed. A resumed run must end with exactly the weights of a run that
// was never interrupted, and a failed save must never cost the previous checkpoint.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include "engine/checkpoint.h"
#include "robustness_fixtures.h"

using namespace plinth;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// 600 training images (540 after the validation split: 16 steps of 32 per epoch), 200 test.
struct SmallRun {
  std::string dir = test::small_fashion_dir("kill-resume", 600, 200);
  std::string model = test::tiny_cnn_file(dir);

  std::string args(const std::string& save, int epochs = 4) const {
    return fmt::format(
        "train --device cpu --threads 2 --data {} --model {} --epochs {} --batch-size 32 "
        "--save-every 1 --save {} --seed 3 --val-split 0.1 --quiet",
        dir, model, epochs, save);
  }
};

// The uninterrupted run every interrupted one is compared with, computed once.
struct Reference {
  std::map<std::string, std::vector<float>> weights;
  double seconds = 0;
};

const Reference& reference(const SmallRun& run) {
  static const Reference r = [&] {
    test::CliProcess p(run.args(run.dir + "/reference.safetensors"), run.dir + "/reference.log");
    const int status = p.wait();
    const double seconds = p.seconds();
    INFO(p.output());
    REQUIRE(status == 0);
    return Reference{test::checkpoint_weights(run.dir + "/reference.safetensors"), seconds};
  }();
  return r;
}

// The checkpoint and every file saved beside it under its name (optimizer state, ...).
void remove_checkpoint(const std::string& path) {
  const std::string stem = fs::path(path).stem().string() + ".";
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
    if (entry.path().filename().string().rfind(stem, 0) == 0) fs::remove(entry.path());
}

bool has_temporaries(const std::string& dir) {
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) return true;
  return false;
}

bool waits_for_file(test::CliProcess& p, const std::string& path, double seconds) {
  while (!fs::exists(path)) {
    if (p.wait_for(p.seconds() + 0.002) || p.seconds() > seconds) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("robustness kill: SIGKILL at random moments, resumed with --resume, ends bit-identical",
          "[robustness][checkpoint]") {
  REQUIRE_FASHION();
  const SmallRun run;
  const Reference& ref = reference(run);
  const std::string ckpt = run.dir + "/killed.safetensors";
  const uint64_t seed = std::random_device{}();
  CAPTURE(seed, ref.seconds);
  std::mt19937_64 rng(seed);
  // Kill moments are drawn up to the length of the last run that ended by itself, so they
  // keep spreading over the whole run when the machine is faster or slower than it was
  // for the reference.
  double span = ref.seconds;

  // Rounds of kill-and-resume; each ends with a run left to finish and its weights compared.
  int kills = 0, resumed_kills = 0;
  for (int round = 0; round < 5 && kills < 8; ++round) {
    remove_checkpoint(ckpt);
    std::string delays;
    for (int attempt = 0;; ++attempt) {
      REQUIRE(attempt < 30);
      const bool resume = fs::exists(ckpt);
      const double delay =
          attempt < 6 ? std::uniform_real_distribution<double>(0.005, std::max(0.01, span))(rng)
                      : 1e9;
      test::CliProcess p(run.args(ckpt) + (resume ? " --resume " + ckpt : ""),
                         run.dir + "/killed.log");
      if (!p.wait_for(delay)) {
        p.signal(SIGKILL);
        if (p.wait() == 128 + SIGKILL) {  // else it ended by itself just before the kill
          ++kills;
          resumed_kills += resume;
          delays += fmt::format(" {:.2f}s{}", delay, resume ? " (resumed)" : "");
          continue;
        }
      }
      span = p.seconds();
      // Whatever moment the kill hit, even between the two files of a save, the next run
      // resumes: no kill may leave a checkpoint that --resume refuses.
      INFO("killed after" << delays << "\n" << p.output());
      REQUIRE(p.status() == 0);
      break;
    }
    INFO("round " << round << " killed after" << delays);
    CHECK(test::checkpoint_weights(ckpt) == ref.weights);
    CHECK(read_checkpoint_meta(ckpt).state.step == 64);
  }
  CAPTURE(kills, resumed_kills);
  CHECK(kills >= 4);
}

TEST_CASE(
    "robustness signals: SIGTERM and SIGINT stop after the current step with status 130 "
    "and a checkpoint that resumes to the same weights",
    "[robustness][checkpoint]") {
  REQUIRE_FASHION();
  const SmallRun run;
  const Reference& ref = reference(run);
  for (const int sig : {SIGTERM, SIGINT}) {
    CAPTURE(sig);
    const std::string ckpt = run.dir + fmt::format("/signal{}.safetensors", sig);
    test::CliProcess p(run.args(ckpt), run.dir + "/signal.log");
    // The first checkpoint appears after epoch 1 of 4: the run is inside its training loop.
    REQUIRE(waits_for_file(p, ckpt, 60));
    p.signal(sig);
    REQUIRE(p.wait() == 130);
    CHECK_THAT(p.output(), Contains("stopped by a signal; resume with --resume " + ckpt));
    const CheckpointMeta stopped = read_checkpoint_meta(ckpt);
    CHECK(stopped.state.step < 64);
    CHECK(stopped.state.epoch < 4);

    test::CliProcess resumed(run.args(ckpt) + " --resume " + ckpt, run.dir + "/signal-resumed.log");
    const int status = resumed.wait();
    INFO(resumed.output());
    REQUIRE(status == 0);
    CHECK(test::checkpoint_weights(ckpt) == ref.weights);
  }
}

// Checked before training starts, not after all of it.
TEST_CASE("robustness save: a save into a missing directory fails with one clear line",
          "[robustness][checkpoint]") {
  REQUIRE_FASHION();
  const SmallRun run;
  const std::string ckpt = run.dir + "/no/such/dir/c.safetensors";
  const test::CommandResult r = test::run_cli(run.args(ckpt, 1));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Contains("plinth: error: " + ckpt + ": cannot save there: its directory " +
                                run.dir + "/no/such/dir does not exist"));
}

TEST_CASE("robustness save: a read-only directory fails the save and keeps the previous checkpoint",
          "[robustness][checkpoint]") {
  REQUIRE_FASHION();
  const SmallRun run;
  const std::string ro = run.dir + "/ro", ckpt = ro + "/c.safetensors";
  fs::create_directory(ro);
  const test::CommandResult first = test::run_cli(run.args(ckpt, 1));
  INFO(first.output);
  REQUIRE(first.status == 0);
  const std::string weights = read_file(ckpt, size_t{1} << 24);
  const std::string optim = read_file(optimizer_state_path(ckpt), size_t{1} << 24);

  fs::permissions(ro, fs::perms(0555));
  test::CliProcess p(run.args(ckpt, 2) + " --resume " + ckpt, run.dir + "/ro.log",
                     {.as_nobody = true});
  const int status = p.wait();
  fs::permissions(ro, fs::perms(0755));
  if (status == 125) {
    WARN("SKIPPED: cannot drop root to make a directory read-only");
    return;
  }
  INFO(p.output());
  CHECK(status == 1);
  CHECK_THAT(p.output(), Contains(ckpt + ": cannot save there: its directory " + ro +
                                  " is not writable (Permission denied)"));
  CHECK(read_file(ckpt, size_t{1} << 24) == weights);
  CHECK(read_file(optimizer_state_path(ckpt), size_t{1} << 24) == optim);
  CHECK_FALSE(has_temporaries(ro));
  const test::CommandResult resumed = test::run_cli(run.args(ckpt, 2) + " --resume " + ckpt);
  INFO(resumed.output);
  CHECK(resumed.status == 0);
}

// A checkpoint is two files, optimizer state and weights, written one after the other. If
// the weights' write fails after the optimizer state's succeeded (a full disk, a kill, here
// a directory in the way of its temporary file), the previous checkpoint must still resume.
TEST_CASE(
    "robustness save: a save that fails between its two files keeps the previous checkpoint "
    "resumable",
    "[robustness][checkpoint]") {
  REQUIRE_FASHION();
  const SmallRun run;
  const std::string ckpt = run.dir + "/torn.safetensors";
  const test::CommandResult first = test::run_cli(run.args(ckpt, 1));
  INFO(first.output);
  REQUIRE(first.status == 0);
  const std::string weights = read_file(ckpt, size_t{1} << 24);

  test::CliProcess p(run.args(ckpt, 2) + " --resume " + ckpt, run.dir + "/torn.log",
                     {.paused = true});
  const std::string blocked = fmt::format("{}.tmp.{}", ckpt, p.pid());  // the weights' temporary
  fs::create_directory(blocked);
  p.resume();
  const int status = p.wait();
  fs::remove(blocked);
  INFO(p.output());
  CHECK(status == 1);
  CHECK_THAT(p.output(), Contains("torn.safetensors: cannot save: cannot create") &&
                             Contains("Is a directory"));
  CHECK(read_file(ckpt, size_t{1} << 24) == weights);

  const test::CommandResult resumed = test::run_cli(run.args(ckpt, 2) + " --resume " + ckpt);
  INFO(resumed.output);
  CHECK(resumed.status == 0);
}
