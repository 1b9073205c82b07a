// PyTorch interop: a plinth checkpoint gives PyTorch's logits, and a PyTorch state_dict
// gives plinth PyTorch's accuracy (scripts/pytorch_interop.py does the comparing).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

#include "engine_fixtures.h"

namespace {

using namespace plinth::test;

bool pytorch_available() {
  return std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("interop: plinth checkpoints and PyTorch state_dicts give the same outputs", "[interop]") {
  if (!pytorch_available()) {
    WARN("SKIPPED: PyTorch is not installed (apt-get install python3-torch)");
    return;
  }
  if (!fashion_available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  const std::string dir = temp_dir("interop");
  // The seed CNN with input normalisation on, so the checkpoint's mean/std (which PyTorch
  // must apply too) are not the identity.
  auto model = nlohmann::json::parse(std::ifstream(PLINTH_SOURCE_DIR "/models/seed_cnn.json"));
  model["training"]["normalize"] = true;
  std::ofstream(dir + "/model.json") << model.dump();

  const std::string ckpt = dir + "/tiny.safetensors";
  const CommandResult train = run_cli("train --model " + dir + "/model.json --device cpu --quiet --epochs 1 "
                                      "--max-steps 30 --val-split 0 --classes 0,1 --save " + ckpt);
  INFO(train.output);
  REQUIRE(train.status == 0);

  const CommandResult interop =
      run_shell("/usr/bin/python3 " PLINTH_SOURCE_DIR "/scripts/pytorch_interop.py --plinth " PLINTH_CLI_PATH
                " --device cpu --limit 20 --steps 40 --workdir " + dir + " " + ckpt);
  INFO(interop.output);
  CHECK(interop.status == 0);
  CHECK(interop.output.find("pytorch_interop: OK") != std::string::npos);
  std::filesystem::remove_all(dir);
}
