// Helpers for the robustness tests: a small real data set on disk, a tiny model file,
// CLI runs as child processes that can be signalled, and checkpoint weights read back.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "datasets/dataset.h"
#include "engine/atomic_file.h"
#include "engine/safetensors.h"
#include "engine_fixtures.h"

namespace plinth::test {

// An uncompressed uint8 IDX file.
inline void write_idx(const std::string& path, const std::vector<int>& dims, const uint8_t* data) {
  std::string bytes = {0, 0, 8, static_cast<char>(dims.size())};
  size_t count = 1;
  for (int d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8)
      bytes += static_cast<char>((uint32_t(d) >> shift) & 0xff);
    count *= static_cast<size_t>(d);
  }
  bytes.append(reinterpret_cast<const char*>(data), count);
  std::ofstream(path, std::ios::binary) << bytes;
}

// A Fashion-MNIST data set in the MNIST layout (raw files) in a new directory: the first
// `train` training samples, and the next `test` ones as its test set (the real test file
// need not be decompressed for a test that only needs some test images).
inline std::string small_fashion_dir(const std::string& name, int train, int test) {
  const std::string dir = temp_dir(name);
  const Dataset& all = fashion_train();
  const size_t image = static_cast<size_t>(all.image_size());
  auto write = [&](const std::string& prefix, int first, int count) {
    write_idx(dir + "/" + prefix + "-images-idx3-ubyte", {count, all.height, all.width},
              all.images.data() + first * image);
    std::vector<uint8_t> labels(all.labels.begin() + first, all.labels.begin() + first + count);
    write_idx(dir + "/" + prefix + "-labels-idx1-ubyte", {count}, labels.data());
  };
  write("train", 0, train);
  write("t10k", train, test);
  return dir;
}

// A small CNN with dropout and on-the-fly augmentation, so a resumed run must also restore
// the random streams, not just the weights; it trains an epoch of 540 images in well
// under a second.
inline std::string tiny_cnn_file(const std::string& dir) {
  const std::string path = dir + "/tiny_cnn.json";
  std::ofstream(path) << R"({
    "name": "tiny_cnn", "input": [1, 28, 28],
    "layers": [
      {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "activation": "relu"},
      {"type": "maxpool2d", "name": "pool1", "size": 2},
      {"type": "flatten", "name": "flatten"},
      {"type": "dropout", "name": "drop1", "rate": 0.2},
      {"type": "dense", "name": "fc1", "units": 10, "activation": "softmax"}],
    "loss": "categorical_crossentropy",
    "optimizer": {"type": "adam", "lr": 0.002},
    "training": {"augment": {"shift": 2}}
  })";
  return path;
}

inline std::map<std::string, std::vector<float>> checkpoint_weights(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  std::map<std::string, std::vector<float>> out;
  for (const std::string& name : f.names()) out[name] = f.float_tensor(name);
  return out;
}

inline std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while ((start = s.find_first_not_of(' ', start)) != std::string::npos) {
    const size_t end = s.find(' ', start);
    out.push_back(s.substr(start, end - start));
    start = end;
  }
  return out;
}

// A copy of the CLI that any user may run: the build tree can sit in a directory only its
// owner may enter (`mktemp -d` makes 0700 ones), which a child that dropped root cannot reach.
inline const std::string& cli_for_any_user() {
  static const std::string path = [] {
    namespace fs = std::filesystem;
    const fs::path dir = temp_dir("cli-any-user");
    const fs::perms open = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec;
    fs::permissions(dir, open);
    fs::copy_file(PLINTH_CLI_PATH, dir / "plinth", fs::copy_options::overwrite_existing);
    fs::permissions(dir / "plinth", open);
    return (dir / "plinth").string();
  }();
  return path;
}

struct CliOptions {
  bool as_nobody = false;  // drop root first (root ignores file permissions)
  bool paused = false;     // stop before exec: the test knows the pid, then calls resume()
  std::string launcher;    // words before the CLI's path, e.g. "/usr/bin/mpirun -np 2"
};

// The CLI as a child process whose output goes to a log file, so the test can signal it.
class CliProcess {
 public:
  CliProcess(const std::string& args, const std::string& log, CliOptions options = {}) : log_(log) {
    std::vector<std::string> words = split_words(args);
    words.insert(words.begin(),
                 options.as_nobody ? cli_for_any_user() : std::string(PLINTH_CLI_PATH));
    const std::vector<std::string> launcher = split_words(options.launcher);
    words.insert(words.begin(), launcher.begin(), launcher.end());
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    start_ = std::chrono::steady_clock::now();
    pid_ = ::fork();
    if (pid_ == 0) {  // only async-signal-safe calls between fork and exec
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(126);
      if (options.as_nobody && ::geteuid() == 0 &&
          (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0))
        ::_exit(125);
      if (options.paused) ::raise(SIGSTOP);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (options.paused) {
      int status = 0;
      ::waitpid(pid_, &status, WUNTRACED);
    }
  }
  ~CliProcess() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !done_; }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  // Waits until the process ends or `seconds` pass; true if it ended.
  bool wait_for(double seconds) {
    while (!done_) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_)
        finish(status);
      else if (this->seconds() >= seconds)
        return false;
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }
  // The exit status, or 128 + the signal that ended it.
  int wait() {
    while (!done_) {
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) finish(status);
    }
    return status_;
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  void resume() const { ::kill(pid_, SIGCONT); }
  int status() const { return status_; }
  std::string output() const { return read_file(log_, size_t{1} << 24); }

 private:
  void finish(int status) {
    done_ = true;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string log_;
  pid_t pid_ = -1;
  bool done_ = false;
  int status_ = -1;
  std::chrono::steady_clock::time_point start_;
};

inline std::string slurp(const std::string& path) { return read_file(path, size_t{1} << 26); }

inline void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::vector<std::string> error_lines(const std::string& output) {
  std::vector<std::string> errors;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);)
    if (line.find("error") != std::string::npos) errors.push_back(line);
  return errors;
}

// Status 1, exactly one error line, naming `file` and saying `problem`; no crash.
inline void expect_clean_error(const CommandResult& r, const std::string& file,
                               const std::string& problem) {
  using Catch::Contains;
  INFO(r.output);
  CHECK(r.status == 1);
  const std::vector<std::string> errors = error_lines(r.output);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind("plinth: error: ", 0) == 0);
  CHECK_THAT(errors[0], Contains(file) && Contains(problem));
  CHECK_THAT(r.output,
             !Contains("internal error") && !Contains("SUMMARY: ") && !Contains("runtime error"));
}

// The CLI with a time limit: a run that hangs (on a FIFO, say) is killed and reported with
// status -1, so the test fails instead of the suite hanging.
inline CommandResult run_cli_within(const std::string& args, double seconds,
                                    const std::string& log) {
  CliProcess p(args, log);
  if (!p.wait_for(seconds)) {
    p.signal(SIGKILL);
    p.wait();
    return {-1, "(timed out after " + std::to_string(seconds) + " s)\n" + p.output()};
  }
  return {p.status(), p.output()};
}

// A small data set and the tiny CNN; args() trains on it for one epoch.
struct SmallData {
  std::string dir, model;
  explicit SmallData(const std::string& name)
      : dir(small_fashion_dir(name, 600, 200)), model(tiny_cnn_file(dir)) {}
  std::string args(const std::string& extra = "") const { return loud_args("--quiet " + extra); }
  // With the progress lines, for tests that check training did not start.
  std::string loud_args(const std::string& extra = "") const {
    return fmt::format("train --device cpu --threads 2 --data {} --model {} --epochs 1 --seed 3 {}",
                       dir, model, extra);
  }
  std::string images() const { return dir + "/train-images-idx3-ubyte"; }
  std::string labels() const { return dir + "/train-labels-idx1-ubyte"; }
};

inline std::string idx_header(std::vector<int> dims) {
  std::string h = {0, 0, 8, static_cast<char>(dims.size())};
  for (int d : dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      h += static_cast<char>((uint32_t(d) >> shift) & 0xff);
  return h;
}

// The checkpoint's file again with some metadata values replaced (the weights, and so the
// tie to the optimizer state, unchanged).
inline void rewrite_metadata(const std::string& path,
                             const std::map<std::string, std::string>& changes) {
  const SafetensorsFile f = load_safetensors(path);
  std::vector<NamedTensorData> tensors;
  for (const std::string& name : f.names())
    tensors.push_back(NamedTensorData::f32(name, f.tensor(name).shape, f.float_tensor(name)));
  std::map<std::string, std::string> metadata = f.metadata();
  for (const auto& [key, value] : changes) metadata[key] = value;
  save_safetensors(path, tensors, metadata);
}

}  // namespace plinth::test
