// Files plinth writes, round two: a save never replaces what is not a regular file, its
// target is checked before training, every output's write and close are checked, a killed
// save's leftovers are cleaned, and two runs cannot save to one path.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>

#include "engine/checkpoint.h"
#include "robustness_fixtures.h"

using namespace plinth;
using namespace plinth::test;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// A process id that no process has now, so that files named after it are a dead save's.
pid_t dead_pid() {
  for (pid_t pid = 4'000'000;; --pid)
    if (::kill(pid, 0) != 0 && errno == ESRCH) return pid;
}

}  // namespace

TEST_CASE("hostile outputs: --save refuses a device node, a symlink or a directory, at the start",
          "[robustness][hostile][outputs]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-save-target");
  // The device node is this test's own (the same device as /dev/null), not /dev/null itself.
  const std::string node = d.dir + "/node";
  if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    WARN("SKIPPED: cannot make a device node here: " << std::strerror(errno));
    return;
  }
  const std::string target = d.dir + "/target.safetensors", link = d.dir + "/link.safetensors";
  fs::create_symlink(target, link);
  const std::string dir = d.dir + "/a-directory";
  fs::create_directory(dir);
  for (const auto& [path, kind] : std::vector<std::pair<std::string, std::string>>{
           {node, "a character device"}, {link, "a symbolic link"}, {dir, "a directory"}}) {
    CAPTURE(path);
    const CommandResult r = run_cli(d.loud_args("--save " + path));
    expect_clean_error(r, path, "cannot save there: it is " + kind);
    CHECK_THAT(r.output, !Contains("Epoch 1/"));  // refused before training, not after
  }
  struct stat st {};
  REQUIRE(::lstat(node.c_str(), &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  REQUIRE(::lstat(link.c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode));
  CHECK_FALSE(fs::exists(target));
  // The same refusal at the moment of saving, for callers of the library.
  CHECK_THROWS_WITH(write_file_atomically(link, "x"),
                    Contains(link + ": cannot save: it is a symbolic link"));
  CHECK_THROWS_WITH(check_save_target(d.dir + "/no/such/c.safetensors"),
                    Contains("its directory " + d.dir + "/no/such does not exist"));
}

TEST_CASE("hostile outputs: two outputs may not be one file", "[robustness][hostile][outputs]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-same-file");
  const std::string ckpt = d.dir + "/c.safetensors";
  expect_clean_error(run_cli(d.args("--save " + ckpt + " --history " + ckpt)), "--history",
                     "--save and --history name the same file");
  expect_clean_error(run_cli(d.args("--save " + ckpt + " --csv " + d.dir + "/./c.safetensors")),
                     "--csv", "--save and --csv name the same file");
  expect_clean_error(run_cli(d.args("--save " + ckpt + " --csv " + optimizer_state_path(ckpt))),
                     "--csv", "--save's optimizer state and --csv name the same file");
  CHECK_FALSE(fs::exists(ckpt));
}

TEST_CASE("hostile outputs: a failed write or close of any output is an error naming the file",
          "[robustness][hostile][outputs]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-full");
  // /dev/full accepts the open and fails the writes: the CSV rows used to be lost silently.
  expect_clean_error(run_cli(d.args("--csv /dev/full")), "/dev/full",
                     "cannot write the CSV log: No space left on device");
  // History is replaced atomically: a device is refused rather than replaced (this test's
  // own node, the same device as /dev/full, so that a regression replaces only it).
  const std::string full = d.dir + "/full";
  if (::mknod(full.c_str(), S_IFCHR | 0666, makedev(1, 7)) == 0) {
    expect_clean_error(run_cli(d.args("--history " + full)), full, "it is a character device");
    struct stat st {};
    CHECK((::lstat(full.c_str(), &st) == 0 && S_ISCHR(st.st_mode)));
  } else {
    WARN("SKIPPED: cannot make a device node here: " << std::strerror(errno));
  }
  const std::string ckpt = d.dir + "/c.safetensors";
  REQUIRE(run_cli(d.args("--save " + ckpt)).status == 0);
  const std::string cli = std::string(PLINTH_CLI_PATH) + " ";
  // Only stdout to /dev/full: run_shell sends the group's stderr to the test.
  expect_clean_error(run_shell("{ " + cli + "eval --device cpu --json --data " + d.dir +
                               " --checkpoint " + ckpt + " > /dev/full; }"),
                     "standard output", "No space left on device");
  expect_clean_error(run_shell("{ " + cli + "predict --device cpu --json --checkpoint " + ckpt +
                               " --images " + d.images() + " > /dev/full; }"),
                     "standard output", "No space left on device");
  expect_clean_error(run_cli("bench --device cpu --modes none --gemm 32 --repeats 1 --json "
                             "/dev/full"),
                     "/dev/full", "cannot write the JSON rows: No space left on device");
}

TEST_CASE("hostile outputs: a killed save's temporaries are removed by the next save to the path",
          "[robustness][hostile][outputs]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-leftovers");
  const std::string ckpt = d.dir + "/c.safetensors";
  const pid_t dead = dead_pid();
  const std::vector<std::string> leftovers{
      fmt::format("{}.tmp.{}", ckpt, dead),
      fmt::format("{}.pending.tmp.{}", optimizer_state_path(ckpt), dead)};
  for (const std::string& f : leftovers) spit(f, std::string(1000, 'x'));
  // A live process's temporary is not a leftover: it may be writing it now.
  const std::string live = fmt::format("{}.tmp.{}", ckpt, ::getpid());
  spit(live, "x");
  const CommandResult r = run_cli(d.args("--save " + ckpt));
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const std::string& f : leftovers) CHECK_FALSE(fs::exists(f));
  CHECK(fs::exists(live));
}

TEST_CASE("hostile outputs: a second run saving to the same path is refused at its start",
          "[robustness][hostile][outputs]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-lock");
  const std::string ckpt = d.dir + "/c.safetensors";
  // The first run is stopped before it ends: it holds the path until it exits.
  CliProcess first(d.args("--epochs 50 --save " + ckpt), d.dir + "/first.log");
  const auto started = std::chrono::steady_clock::now();
  while (!fs::exists(ckpt + ".lock") &&
         std::chrono::steady_clock::now() - started < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(first.running());
  const CommandResult second = run_cli(d.loud_args("--save " + ckpt));
  expect_clean_error(second, ckpt,
                     fmt::format("another run (process {}) is saving to this path", first.pid()));
  CHECK_THAT(second.output, !Contains("Epoch 1/"));
  first.signal(SIGKILL);
  first.wait();
  // Its lock ends with it.
  const CommandResult third = run_cli(d.args("--save " + ckpt));
  INFO(third.output);
  CHECK(third.status == 0);
}
