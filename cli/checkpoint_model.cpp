#include "cli/checkpoint_model.h"

#include "cli/common.h"
#include "engine/error.h"
#include "engine/safetensors.h"

namespace plinth::cli {

void add_checkpoint_options(Args& a) {
  a.option("checkpoint", "CKPT",
           "safetensors checkpoint (plinth's, or PyTorch's with --model); required")
      .option("model", "FILE",
              "model file to use instead of the checkpoint's own (needed for checkpoints without "
              "plinth metadata)");
}

CheckpointModel load_checkpoint_model(const Args& a) {
  if (!a.has("checkpoint")) fail("--checkpoint is required");
  const std::string path = a.str("checkpoint");
  CheckpointModel l;
  const SafetensorsFile f = load_safetensors(path);
  const bool has_meta = f.metadata().count("model") > 0;
  // The saved input normalisation applies whichever model definition is used.
  if (has_meta) l.meta = read_checkpoint_meta(path);
  if (a.has("model")) {
    l.model = load_model(find_model_file(a.str("model")));
  } else {
    if (!has_meta)
      fail("{}: the checkpoint carries no model definition; name one with --model FILE", path);
    l.model = parse_model(l.meta.model, path + ":model");
  }
  return l;
}

std::string class_name(const CheckpointModel& checkpoint, int classes, int c) {
  static const char* kFashionNames[] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                        "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                        "Bag",         "Ankle boot"};
  const std::vector<std::string>& names = checkpoint.meta.class_names;
  if (static_cast<int>(names.size()) == classes) return names[c];
  const auto& in = checkpoint.model.input;
  if (names.empty() && classes == 10 && in[0] == 1 && in[1] == 28 && in[2] == 28)
    return kFashionNames[c];
  return "";
}

TrainOptions inference_options(const Model& model) {
  TrainOptions options;
  options.batch_size = model.training.batch_size;
  return options;
}

}  // namespace plinth::cli
