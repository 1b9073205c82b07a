// Checkpoints in the safetensors format. The weights file holds the parameters under
// PyTorch's names and layouts, so `safetensors.torch.load_file` + `load_state_dict` work
// on it, plus metadata (format "pt", the model JSON, epoch, step, training config). What
// only a resume needs (Adam moments, optimizer step, data cursor) goes to a sibling file,
// "<name>.optim.safetensors", tied to the weights by a shared tag: the run's id and a
// digest of the weights saved with it. Every metadata value is checked on reading, with the
// field named in the error.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "datasets/dataset.h"
#include "engine/model.h"
#include "engine/parameters.h"
#include "engine/train_state.h"

namespace plinth {

struct CheckpointMeta {
  nlohmann::json model;                  // the model definition
  nlohmann::json config;                 // the training configuration that produced it
  TrainState state;                      // epoch, step, data cursor, history
  Normalization normalization;           // per input channel, or one value for all
  std::vector<std::string> class_names;  // the output classes' names, empty where unknown
  // Random per training run, kept when it is resumed; save_checkpoint draws one if empty.
  std::string run_id;
};

std::string optimizer_state_path(const std::string& weights_path);

// A fresh random run id: two runs never share one, whatever their settings and steps.
std::string new_run_id();

// Writes both files atomically (optimizer state first, so a crash between the two leaves
// a mismatched pair that load refuses, never a silently inconsistent resume).
void save_checkpoint(const std::string& path, const Parameters& params, const CheckpointMeta& meta);

// Reads the metadata (and validates the file) without touching parameters.
CheckpointMeta read_checkpoint_meta(const std::string& path);

struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected,
      mismatched;  // mismatched: "name: [a] vs [b]"
  // Every tensor matched (names listed in `reset` aside).
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // What did not match, " shape mismatch ...; missing ...; unexpected ...;", for messages.
  std::string mismatches() const;
};

// Copies the tensors whose names and shapes match into params. strict: any missing,
// unexpected or mismatched tensor is an error (except names listed in `reset`, which
// stay freshly initialised). A `reset` name that is no layer with parameters is an error
// ("reset: ..."), as a freeze of an unknown layer is.
LoadReport load_weights(const std::string& path, Parameters& params, bool strict,
                        const std::vector<std::string>& reset = {});

// Restores the optimizer moments and step from the sibling file written with the weights.
void load_optimizer_state(const std::string& path, Parameters& params);

}  // namespace plinth
