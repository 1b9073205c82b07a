// Pieces shared by the subcommands: device options, data options, loading.
#pragma once

#include <string>

#include "datasets/dataset.h"
#include "engine/cli/args.h"
#include "engine/device_select.h"

namespace plinth::cli {

void add_device_options(Args& args);
DeviceChoice open_device_from(const Args& args);

void add_data_options(Args& args);
struct Data {
  Dataset train, val, test;
};
// Loads --data, restricts to --classes, holds out val_split of the training set and keeps
// --labelled-fraction of what remains for training.
Data load_data(const Args& args, double val_split, uint64_t seed);
std::vector<int> parse_classes(const Args& args);

// A model file by path, or else by name among the models shipped with plinth (next to the
// build directory or installed under share/plinth/models), so `--model seed_cnn.json`
// works from any directory.
std::string find_model_file(const std::string& path);

// "plinth: " prefixed status lines on stderr, so stdout stays clean for --json output.
void status(const std::string& line);

}  // namespace plinth::cli
