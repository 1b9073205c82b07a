// What eval, predict and export share: a checkpoint's model, normalisation and class names.
#pragma once

#include <string>
#include <vector>

#include "cli/args.h"
#include "engine/checkpoint.h"
#include "engine/model.h"
#include "engine/trainer.h"

namespace plinth::cli {

// --checkpoint (required) and --model.
void add_checkpoint_options(Args& args);

// The model comes from the checkpoint's metadata, or from --model for weights saved
// elsewhere (e.g. by PyTorch) that carry none; then the normalisation is the default.
struct CheckpointModel {
  Model model;
  CheckpointMeta meta;
};
CheckpointModel load_checkpoint_model(const Args& args);

// A class's name for output: the checkpoint's class names, else Fashion-MNIST's for a
// 10-class model of 28x28 grey images without names (the default data set), else "".
std::string class_name(const CheckpointModel& checkpoint, int classes, int c);

// Evaluation and prediction run at the batch size the model was trained with (or less, if
// the device cannot hold it), never a fixed large batch the model did not need.
TrainOptions inference_options(const Model& model);

}  // namespace plinth::cli
