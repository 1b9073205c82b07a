#include "datasets/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "datasets/idx.h"
#include "datasets/sampling.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

std::string find_idx_file(const std::string& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    const fs::path path = fs::path(dir) / name;
    std::error_code error;
    // symlink_status: a dangling link or a loop is there, and read_idx says what is wrong.
    if (fs::exists(fs::symlink_status(path, error))) return path.string();
    if (error && error != std::errc::no_such_file_or_directory)
      fail("{}: cannot look for {}: {}", dir, name, error.message());
  }
  fail("{}: neither {} nor {}.gz found", dir, stem, stem);
}

std::string last_path_component(const std::string& dir) {
  fs::path path = fs::path(dir).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();
  return path.filename().string();
}

// The listed samples of data, in the order listed.
Dataset subset(const Dataset& data, const std::vector<int32_t>& indices, std::string name) {
  Dataset out;
  out.count = static_cast<int>(indices.size());
  out.channels = data.channels;
  out.height = data.height;
  out.width = data.width;
  out.classes = data.classes;
  out.name = std::move(name);
  out.class_names = data.class_names;
  if (data.mapped) {  // a mapped data set's subset is a new index into the same file
    out.mapped = MappedImages{data.mapped->owner, data.mapped->base, {}};
    for (int32_t index : indices) out.mapped->rows.push_back(data.mapped->rows[index]);
  } else {
    const int64_t size = data.image_size();
    out.images.resize(size_t(out.count * size));
    for (int i = 0; i < out.count; ++i)
      std::copy_n(data.images.begin() + indices[i] * size, size, out.images.begin() + i * size);
  }
  if (!data.labels.empty())
    for (int32_t index : indices) out.labels.push_back(data.labels[index]);
  if (!data.files.empty())
    for (int32_t index : indices) out.files.push_back(data.files[index]);
  return out;
}

std::vector<int32_t> range(int begin, int end) {
  std::vector<int32_t> indices(size_t(end - begin));
  std::iota(indices.begin(), indices.end(), begin);
  return indices;
}

void require_labels(const Dataset& data, const char* operation) {
  if (data.labels.empty()) fail("{}: {} needs labelled data", data.name, operation);
}

}  // namespace

Dataset load_idx_dataset(const std::string& dir, Split split) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    if (error && error != std::errc::no_such_file_or_directory)
      fail("{}: cannot open the data directory: {}", dir, error.message());
    fail(
        "{}: no such data directory (for Fashion-MNIST, install it with: apt-get install "
        "dataset-fashion-mnist)",
        dir);
  }
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  if (images.dims.size() != 3 && images.dims.size() != 4)
    fail("{}: images must be [n, h, w] or [n, c, h, w], this file has {} dimensions", images_path,
         images.dims.size());
  if (labels.dims.size() != 1)
    fail("{}: labels must be [n], this file has {} dimensions", labels_path, labels.dims.size());
  if (labels.dims[0] != images.dims[0])
    fail("{}: {} labels, but {} holds {} images", labels_path, labels.dims[0], images_path,
         images.dims[0]);

  Dataset data;
  const bool has_channels = images.dims.size() == 4;
  data.count = images.dims[0];
  data.channels = has_channels ? images.dims[1] : 1;
  data.height = images.dims[has_channels ? 2 : 1];
  data.width = images.dims[has_channels ? 3 : 2];
  data.images = std::move(images.data);
  data.labels.assign(labels.data.begin(), labels.data.end());
  data.classes = *std::max_element(data.labels.begin(), data.labels.end()) + 1;
  data.name =
      fmt::format("{} {}", last_path_component(dir), split == Split::train ? "train" : "test");
  data.labels_file = labels_path;
  return data;
}

std::pair<Dataset, Dataset> split_validation(const Dataset& data, double val_fraction) {
  if (!(val_fraction >= 0 && val_fraction < 1))
    fail("{}: validation fraction {} is outside [0, 1)", data.name, val_fraction);
  const int train_count = static_cast<int>(std::floor(data.count * (1.0 - val_fraction)));
  if (train_count == 0)
    fail("{}: validation fraction {} leaves no training samples out of {}", data.name, val_fraction,
         data.count);
  return {subset(data, range(0, train_count), data.name + " (training part)"),
          subset(data, range(train_count, data.count), data.name + " (validation part)")};
}

std::pair<Dataset, Dataset> split_validation_by_class(const Dataset& data, double val_fraction) {
  require_labels(data, "split_validation_by_class");
  if (!(val_fraction >= 0 && val_fraction < 1))
    fail("{}: validation fraction {} is outside [0, 1)", data.name, val_fraction);
  check_labels(data, data.classes, "the data set's");
  std::vector<std::vector<int32_t>> by_class(size_t(data.classes));
  for (int i = 0; i < data.count; ++i) by_class[data.labels[i]].push_back(i);
  std::vector<int32_t> train, val;
  for (const std::vector<int32_t>& members : by_class) {
    const auto keep = static_cast<size_t>(std::floor(members.size() * (1.0 - val_fraction)));
    train.insert(train.end(), members.begin(), members.begin() + keep);
    val.insert(val.end(), members.begin() + keep, members.end());
  }
  if (train.empty())
    fail("{}: validation fraction {} leaves no training samples out of {}", data.name, val_fraction,
         data.count);
  std::sort(train.begin(), train.end());
  std::sort(val.begin(), val.end());
  return {subset(data, train, data.name + " (training part)"),
          subset(data, val, data.name + " (validation part)")};
}

Dataset restrict_classes(const Dataset& data, const std::vector<int>& classes) {
  require_labels(data, "restrict_classes");
  if (classes.empty()) fail("{}: restrict_classes needs at least one class", data.name);
  std::vector<int> new_label(size_t(data.classes), -1);
  for (size_t i = 0; i < classes.size(); ++i) {
    const int c = classes[i];
    if (c < 0 || c >= data.classes)
      fail("{}: class {} does not exist (classes are 0 to {})", data.name, c, data.classes - 1);
    if (new_label[c] >= 0) fail("{}: class {} is listed twice", data.name, c);
    new_label[c] = static_cast<int>(i);
  }
  std::vector<int32_t> kept;
  for (int i = 0; i < data.count; ++i)
    if (new_label[data.labels[i]] >= 0) kept.push_back(i);
  if (kept.empty()) fail("{}: no samples of classes {}", data.name, fmt::join(classes, ", "));

  Dataset out =
      subset(data, kept, fmt::format("{} (classes {})", data.name, fmt::join(classes, ", ")));
  for (int32_t& label : out.labels) label = new_label[label];
  out.classes = static_cast<int>(classes.size());
  if (!data.class_names.empty()) {
    out.class_names.clear();
    for (int c : classes) out.class_names.push_back(data.class_names[c]);
  }
  return out;
}

namespace {

// The samples labelled_fraction keeps, in data set order.
std::vector<int32_t> labelled_indices(const Dataset& data, double fraction, uint64_t seed) {
  require_labels(data, "labelled_fraction");
  if (!(fraction > 0 && fraction <= 1))
    fail("{}: labelled fraction {} is outside (0, 1]", data.name, fraction);
  std::vector<std::vector<int32_t>> by_class(size_t(data.classes));
  for (int i = 0; i < data.count; ++i) by_class[data.labels[i]].push_back(i);

  std::vector<int32_t> kept;
  for (int c = 0; c < data.classes; ++c) {
    std::vector<int32_t>& members = by_class[c];
    if (members.empty()) continue;
    const auto keep =
        std::clamp<size_t>(size_t(std::llround(fraction * members.size())), 1, members.size());
    std::mt19937_64 rng(hash_combine(seed, uint64_t(c)));
    fisher_yates(members, rng);
    kept.insert(kept.end(), members.begin(), members.begin() + keep);
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

}  // namespace

Dataset labelled_fraction(const Dataset& data, double fraction, uint64_t seed) {
  return subset(data, labelled_indices(data, fraction, seed),
                fmt::format("{} ({} labelled)", data.name, fraction));
}

std::pair<Dataset, Dataset> split_labelled(const Dataset& data, double fraction, uint64_t seed) {
  const std::vector<int32_t> kept = labelled_indices(data, fraction, seed);
  std::vector<int32_t> rest;
  for (int i = 0, k = 0; i < data.count; ++i) {
    if (k < static_cast<int>(kept.size()) && kept[k] == i)
      ++k;
    else
      rest.push_back(i);
  }
  Dataset unlabelled = subset(data, rest, fmt::format("{} (unlabelled rest)", data.name));
  unlabelled.labels.clear();
  return {subset(data, kept, fmt::format("{} ({} labelled)", data.name, fraction)),
          std::move(unlabelled)};
}

std::string Dataset::sample_name(int i) const {
  if (!files.empty()) return files[i];
  return fmt::format("{} sample {}", labels_file.empty() ? name : labels_file, i);
}

void check_labels(const Dataset& data, int classes, const std::string& whose) {
  for (size_t i = 0; i < data.labels.size(); ++i)
    if (data.labels[i] < 0 || data.labels[i] >= classes)
      fail("{}: label {} is outside {} {} classes (0 to {})", data.sample_name(static_cast<int>(i)),
           data.labels[i], whose, classes, classes - 1);
}

namespace {

// A histogram makes the sums exact and independent of summation order.
PixelStats histogram_stats(const std::vector<uint64_t>& histogram) {
  double n = 0;
  for (uint64_t count : histogram) n += double(count);
  double mean = 0;
  for (int v = 0; v < 256; ++v) mean += double(histogram[v]) * (v / 255.0);
  mean /= n;
  double variance = 0;
  for (int v = 0; v < 256; ++v) variance += double(histogram[v]) * std::pow(v / 255.0 - mean, 2);
  return {mean, std::sqrt(variance / n)};
}

}  // namespace

PixelStats dataset_stats(const std::vector<uint8_t>& images) {
  if (images.empty()) fail("dataset_stats: no pixels");
  std::vector<uint64_t> histogram(256, 0);
  for (uint8_t pixel : images) ++histogram[pixel];
  return histogram_stats(histogram);
}

std::vector<PixelStats> channel_stats(const Dataset& data) {
  if (data.count == 0 || data.image_size() == 0) fail("{}: no pixels for statistics", data.name);
  const int64_t plane = int64_t{data.height} * data.width;
  std::vector<std::vector<uint64_t>> histograms(data.channels, std::vector<uint64_t>(256, 0));
  for (int i = 0; i < data.count; ++i) {
    const uint8_t* pixels = data.sample(i);
    for (int c = 0; c < data.channels; ++c)
      for (int64_t p = 0; p < plane; ++p) ++histograms[c][pixels[c * plane + p]];
  }
  std::vector<PixelStats> stats;
  for (const auto& histogram : histograms) stats.push_back(histogram_stats(histogram));
  return stats;
}

Normalization normalization_of(const Dataset& data) {
  Normalization n{{}, {}};
  for (const PixelStats& s : channel_stats(data)) {
    n.mean.push_back(static_cast<float>(s.mean));
    n.std.push_back(s.std > 0 ? static_cast<float>(s.std) : 1.0f);
  }
  return n;
}

std::vector<int32_t> epoch_permutation(int count, uint64_t seed, int epoch) {
  if (count < 0) fail("epoch_permutation: negative sample count {}", count);
  std::vector<int32_t> order = range(0, count);
  std::mt19937_64 rng(hash_combine(seed, static_cast<uint64_t>(epoch)));
  fisher_yates(order, rng);
  return order;
}

}  // namespace plinth
