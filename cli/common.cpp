#include "cli/common.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>

#include "cli/distributed.h"
#include "engine/error.h"
#include "engine/user_text.h"

namespace plinth::cli {

namespace {
bool g_quiet = false;
bool g_silent = false;
}  // namespace

void set_quiet(bool quiet) { g_quiet = quiet; }
void set_silent(bool silent) { g_silent = silent; }

void notice(const std::string& line) {
  if (g_silent) return;
  std::fflush(stdout);  // keep the order of stdout and stderr lines when both go to one pipe
  std::fprintf(stderr, "plinth: %s\n", line.c_str());
  std::fflush(stderr);
}

void status(const std::string& line) {
  if (!g_quiet) notice(line);
}

void write_text_file(const std::string& path, std::string_view text, bool append,
                     std::string_view what) {
  std::FILE* f = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (!f) fail("{}: cannot write the {}: {}", path, what, std::strerror(errno));
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int err = errno;
  // fclose flushes: a device or a file system may report the failure only there.
  if (std::fclose(f) != 0 || !written)
    fail("{}: cannot write the {}: {}", path, what, std::strerror(written ? errno : err));
}

std::optional<std::string> with_option_name(std::string_view message, OptionNames names) {
  for (const auto& [setting, option] : names) {
    const std::string_view rest = message.substr(std::min(setting.size(), message.size()));
    if (message.starts_with(setting) && (rest.starts_with(':') || rest.starts_with(' ')))
      return std::string(option) + std::string(rest);
  }
  return std::nullopt;
}

std::string find_model_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // symlink_status: whatever is at the path (a loop, a FIFO) is load_model's to report.
  if (fs::exists(fs::symlink_status(path, ec))) return path;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path name = fs::path(path).filename();
    for (const fs::path& dir : {exe.parent_path().parent_path() / "models",
                                exe.parent_path().parent_path() / "share/plinth/models"})
      if (fs::is_regular_file(dir / name, ec)) return (dir / name).string();
  }
  return path;  // load_model reports it missing
}

void add_device_options(Args& args) {
  args.option("device", "auto|cpu|cuda[:N]", "where to run; auto uses a usable GPU, else the CPU",
              "auto")
      .option("threads", "N", fmt::format("CPU threads, 0 to {} (0: all cores)", kMaxThreads), "0")
      .range(0, kMaxThreads)
      .option("conv-impl", "cudnn|native",
              "GPU convolution: cuDNN or plinth's own kernels (fp32 at any --precision)", "cudnn")
      .option("precision", "fp32|tf32|bf16",
              "GPU math in convolutions and GEMMs: fp32, TF32 or BF16 tensor cores (~1e-3 or "
              "~1e-2 relative error); tensors and weights stay fp32",
              "fp32")
      .flag("deterministic", "GPU: only deterministic cuDNN algorithms")
      .option("cuda-graph", "on|off",
              "GPU: replay training steps and evaluation batches from CUDA graphs", "on")
      .flag("sync-launches",
            "GPU debugging: wait after every kernel launch so that a fault names its kernel "
            "(also PLINTH_SYNC_LAUNCHES=1; turns CUDA graphs off)");
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "tf32") return Precision::tf32;
  if (name == "bf16") return Precision::bf16;
  fail("--precision: expected fp32, tf32 or bf16, got '{}'", name);
}

bool on_off(const Args& args, const std::string& option) {
  const std::string value = args.str(option);
  if (value != "on" && value != "off") fail("--{}: expected on or off, got '{}'", option, value);
  return value == "on";
}

bool cuda_graphs_from(const Args& args) { return on_off(args, "cuda-graph"); }

DeviceChoice open_device_from(const Args& args, const Communicator* ranks,
                              std::function<void(const std::string&)> log) {
  CudaOptions cuda;
  const std::string impl = args.str("conv-impl");
  if (impl != "cudnn" && impl != "native")
    fail("--conv-impl: expected cudnn or native, got '{}'", impl);
  cuda.native_conv = impl == "native";
  cuda.precision = parse_precision(args.str("precision"));
  cuda.deterministic = args.on("deterministic");
  cuda.sync_launches = args.on("sync-launches");
  cuda.log = std::move(log);
  cuda_graphs_from(args);  // a bad value fails before the device is opened
  std::string spec = args.str("device");
  int threads = args.integer("threads");
  if (ranks) place_rank(*ranks, spec, threads);
  DeviceChoice choice = open_device_option(spec, threads, cuda);
  if (!choice.note.empty()) notice(choice.note.substr(choice.note.find(' ') + 1));
  status("device: " + choice.backend->description());
  return choice;
}

DeviceChoice open_device_option(const std::string& spec, int threads, const CudaOptions& cuda) {
  return naming_options({{"device", "--device"}}, [&] { return open_device(spec, threads, cuda); });
}

std::string default_data_dir() {
  const char* env = std::getenv("PLINTH_DATA");
  return env && *env ? env : kDefaultFashionMnistDir;
}

std::string data_dir(const Args& args) {
  const std::string dir = args.str("data");
  const char* env = std::getenv("PLINTH_DATA");
  std::error_code error;
  if (!args.has("data") && env && *env && !std::filesystem::is_directory(dir, error) &&
      !std::filesystem::is_regular_file(dir, error))
    fail(
        "PLINTH_DATA={}: no such directory or file (point it at a data set folder or a packed "
        "file, or give --data PATH)",
        dir);
  return dir;
}

void add_data_options(Args& args) {
  args.option("data", "PATH",
              "data set: an IDX folder (MNIST layout), an image folder (train/<class>/*.png|jpg, "
              "test/, optional val/), CIFAR-10 binary batches or a packed file (plinth data "
              "pack); or $PLINTH_DATA",
              default_data_dir())
      .flag("strict", "an unreadable image in an image folder is an error (default: skipped)")
      .option("data-memory", "MB",
              "device memory for a data set's pixels: a set that fits is uploaded whole, a larger "
              "one streams through chunks of this size (0: always streams, a batch at a time)",
              "4096")
      .range(0, int64_t{1} << 30)
      .option("classes", "LIST",
              "keep only these classes, relabelled 0..k-1 in this order (e.g. 5,6,7,8,9; default: "
              "all)");
}

int64_t data_memory(const Args& args) { return args.integer64("data-memory") << 20; }

int model_classes(const Model& model) {
  return static_cast<int>(model.shapes(1).back().output.per_sample());
}

DataSource open_data(const Args& args, const Model& model) {
  return DataSource(data_dir(args),
                    {model.input[0], model.input[1], model.input[2], args.on("strict")});
}

Dataset load_part(const Args& args, const DataSource& source, const Model& model, Split split,
                  const std::vector<int>& classes) {
  std::vector<std::string> skipped;
  Dataset part = source.load(split, &skipped);
  if (!skipped.empty()) {
    notice(fmt::format("{}: skipped {} unreadable image{} (--strict makes them errors):", part.name,
                       skipped.size(), skipped.size() == 1 ? "" : "s"));
    for (const std::string& problem : skipped) notice("  " + problem);
  }
  // Labels are checked before a class subset renumbers them, so that an error names the
  // file's own index; a subset must not have more classes than the model has outputs.
  if (model.loss == LossKind::categorical_crossentropy) {
    const int outputs = model_classes(model);
    if (classes.empty()) check_labels(part, outputs);
    if (static_cast<int>(classes.size()) > outputs)
      fail("--classes: {} classes, but the model has {} outputs", classes.size(), outputs);
  }
  if (!classes.empty() && part.count > 0) part = restrict_classes(part, classes);
  return part;
}

std::vector<int> parse_classes(const Args& args) {
  std::vector<int> classes;
  for (const std::string& c : args.list("classes"))
    classes.push_back(static_cast<int>(
        parse_integer(c, args.who("classes") + " item", 0, std::numeric_limits<int>::max() - 1)));
  return classes;
}

namespace {

// --unlabelled PATH: the training part of the data set at PATH (any --data format), its
// labels dropped.
Dataset load_unlabelled(const Args& args, const std::string& path, const Model& model) {
  std::error_code error;
  if (!std::filesystem::exists(path, error))
    fail("--unlabelled {}: no such directory or file (give rest or a data set's path)", path);
  const DataSource source(path,
                          {model.input[0], model.input[1], model.input[2], args.on("strict")});
  std::vector<std::string> skipped;
  Dataset images = source.load(Split::train, &skipped);
  if (!skipped.empty())
    notice(fmt::format("--unlabelled {}: skipped {} unreadable images", path, skipped.size()));
  images.labels.clear();
  if (images.count == 0) fail("--unlabelled {}: no training images there", path);
  return images;
}

}  // namespace

Data load_data(const Args& args, const Model& model, double val_split, uint64_t seed) {
  const DataSource source = open_data(args, model);
  const std::vector<int> classes = parse_classes(args);
  status(fmt::format("loading {} ({})", source.path(), data_format_name(source.format())));
  Data d;
  Dataset train = load_part(args, source, model, Split::train, classes);
  d.test = load_part(args, source, model, Split::test, classes);
  if (source.has_validation()) {
    d.train = std::move(train);
    d.val = load_part(args, source, model, Split::val, classes);
    status(
        fmt::format("validation: the data set's own ({} images); the validation split is not used",
                    d.val.count));
  } else if (source.format() == DataFormat::image_folder || source.format() == DataFormat::packed) {
    std::tie(d.train, d.val) = split_validation_by_class(train, val_split);
  } else {
    std::tie(d.train, d.val) = split_validation(train, val_split);
  }
  const double fraction = args.number("labelled-fraction");
  if (!(fraction > 0 && fraction <= 1)) fail("--labelled-fraction: expected a fraction in (0, 1]");
  const std::string unlabelled = args.str("unlabelled");
  if (unlabelled == "rest" && fraction == 1)
    fail("--unlabelled rest: every training image is labelled (give --labelled-fraction < 1)");
  if (unlabelled == "rest") {
    std::tie(d.train, d.unlabelled) = split_labelled(d.train, fraction, seed);
  } else {
    if (fraction < 1) d.train = labelled_fraction(d.train, fraction, seed);
    if (!unlabelled.empty()) d.unlabelled = load_unlabelled(args, unlabelled, model);
  }
  status(fmt::format("data: {} training, {} validation, {} test images of {}x{}x{}, {} classes",
                     d.train.count, d.val.count, d.test.count, d.train.channels, d.train.height,
                     d.train.width, d.train.classes));
  if (d.unlabelled.count > 0)
    status(fmt::format("unlabelled: {} images ({})", d.unlabelled.count, d.unlabelled.name));
  return d;
}

}  // namespace plinth::cli
