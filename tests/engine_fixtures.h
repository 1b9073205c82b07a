// Shared helpers for engine-level tests: small real data, small models, CLI runs.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/dataset.h"
#include "engine/model.h"

namespace plinth::test {

inline bool fashion_available() {
  return std::filesystem::exists(std::string(kDefaultFashionMnistDir) +
                                 "/train-images-idx3-ubyte.gz");
}

// Ends a test that needs the real data set with a visible skip (ctest's SKIP_REGULAR_EXPRESSION
// matches "SKIPPED:") where the dataset-fashion-mnist package is not installed.
#define REQUIRE_FASHION()                                                                    \
  if (!::plinth::test::fashion_available()) {                                                \
    WARN("SKIPPED: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"); \
    return;                                                                                  \
  }

// The first `count` samples of a data set.
inline Dataset head(const Dataset& d, int count) {
  Dataset out = d;
  out.count = count;
  out.images.resize(static_cast<size_t>(count) * d.image_size());
  out.labels.resize(count);
  return out;
}

inline const Dataset& fashion_train() {
  static const Dataset d = load_idx_dataset(kDefaultFashionMnistDir, Split::train);
  return d;
}

inline Model seed_cnn() { return load_model(PLINTH_SOURCE_DIR "/models/seed_cnn.json"); }

inline Model model_from(const char* json) {
  return parse_model(nlohmann::json::parse(json), "test-model");
}

struct CommandResult {
  int status = 0;
  std::string output;  // stdout and stderr
};

// Runs a shell command line, capturing stdout and stderr together.
inline CommandResult run_shell(const std::string& command) {
  CommandResult r;
  const std::string cmd = command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

inline CommandResult run_cli(const std::string& args) {
  return run_shell(std::string(PLINTH_CLI_PATH) + " " + args);
}

// The directories temp_dir() made, removed when the test process exits (children exit with
// _exit and never run this). PLINTH_KEEP_TEST_DIRS=1 keeps them for a look after a failure.
struct TempDirs {
  std::vector<std::filesystem::path> dirs;
  ~TempDirs() {
    if (std::getenv("PLINTH_KEEP_TEST_DIRS")) return;
    std::error_code ignored;
    for (const auto& d : dirs) std::filesystem::remove_all(d, ignored);
  }
};

inline std::string temp_dir(const std::string& name) {
  static TempDirs made;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("plinth-test-" + name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  made.dirs.push_back(dir);
  return dir.string();
}

}  // namespace plinth::test
