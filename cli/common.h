// Pieces shared by the subcommands: device options, data options, loading.
#pragma once

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cli/args.h"
#include "datasets/data_source.h"
#include "datasets/dataset.h"
#include "engine/communicator.h"
#include "engine/device_select.h"
#include "engine/error.h"
#include "engine/model.h"

namespace plinth::cli {

// Library errors about a setting start with its name as the C++ API spells it ("freeze:
// ...", "device cuda: ...", see engine/error.h); the tool names its option instead.
// Each pair is {setting, option}, e.g. {"freeze", "--freeze"}.
using OptionNames = std::initializer_list<std::pair<std::string_view, std::string_view>>;
// The message with its leading setting replaced by the option, or nothing if none leads it.
std::optional<std::string> with_option_name(std::string_view message, OptionNames names);

// Runs call(); an error about one of the settings is rethrown under its option's name.
template <typename Call>
decltype(auto) naming_options(OptionNames names, Call&& call) {
  try {
    return call();
  } catch (const Error& e) {
    if (const auto renamed = with_option_name(e.what(), names)) throw Error(*renamed);
    throw;
  }
}

// --device, --threads, --conv-impl, --precision, --deterministic, --cuda-graph and
// --sync-launches.
void add_device_options(Args& args);
// The device those options ask for; a data-parallel rank takes its share of the host
// (place_rank); log (may be empty) hears the GPU's convolution algorithm choices (train
// --verbose).
DeviceChoice open_device_from(const Args& args, const Communicator* ranks = nullptr,
                              std::function<void(const std::string&)> log = {});
// --cuda-graph on (true) or off.
bool cuda_graphs_from(const Args& args);
// The value of an on|off option, or a one-line error naming it.
bool on_off(const Args& args, const std::string& option);
// --precision's value.
Precision parse_precision(const std::string& name);
// open_device() with its errors under --device.
DeviceChoice open_device_option(const std::string& spec, int threads, const CudaOptions& cuda);

// The largest --threads accepted: far above any real core count, low enough that a typo
// (an extra digit, a negative number) is an error rather than a silent oversubscription.
constexpr int kMaxThreads = 1024;

// --data's default: $PLINTH_DATA when it is set, else the Debian package's folder, so one
// variable points every command at a data set elsewhere (e.g. on a machine without it).
std::string default_data_dir();
// --data's value; a $PLINTH_DATA that is neither a folder nor a file is an error naming it.
std::string data_dir(const Args& args);

// --data, --strict, --data-memory and --classes; train adds --labelled-fraction.
void add_data_options(Args& args);
struct Data {
  Dataset train, val, test;
  Dataset unlabelled;  // train's --unlabelled images (no labels); empty without
};
// --data opened for a model: an image folder's images are fitted to the model's input.
DataSource open_data(const Args& args, const Model& model);
// One part of --data, with its labels checked against the model's classes (naming the
// file and sample of a bad one) and restricted to `classes` (none: all); images an image
// folder had to skip are reported by name (or, with --strict, are errors).
Dataset load_part(const Args& args, const DataSource& source, const Model& model, Split split,
                  const std::vector<int>& classes);
// Loads --data's training and test parts as load_part does, takes its own validation
// part if it has one or else holds out val_split of the training set (of each class for
// image folders and packed files, which are sorted by class), and keeps
// --labelled-fraction of the training part, and --unlabelled: `rest` (the training part's
// images that --labelled-fraction leaves unlabelled) or another data set's training part.
Data load_data(const Args& args, const Model& model, double val_split, uint64_t seed);
std::vector<int> parse_classes(const Args& args);
// --data-memory in bytes.
int64_t data_memory(const Args& args);
// The classes a model's output has.
int model_classes(const Model& model);

// A model file by path, or else by name among the models shipped with plinth (next to the
// build directory or installed under share/plinth/models), so `--model seed_cnn.json`
// works from any directory.
std::string find_model_file(const std::string& path);

// Writes text to path (appends with `append`) and closes it, checking both, so a full
// disk or /dev/full is an error naming the file and `what` it holds, not lost rows.
void write_text_file(const std::string& path, std::string_view text, bool append,
                     std::string_view what);

// "plinth: " prefixed lines on stderr, so stdout stays clean for --json output. status()
// lines are progress reports that --quiet hides; notice() lines (warnings, a fallback to
// the CPU, why a run stopped) are always shown.
void status(const std::string& line);
void notice(const std::string& line);
void set_quiet(bool quiet);
// Hides notice() lines too: the ranks of a data-parallel job other than 0 print only errors.
void set_silent(bool silent);

}  // namespace plinth::cli
