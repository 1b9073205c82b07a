// Image classification data held in host memory as uint8 pixels, plus the pure,
// deterministic helpers that carve training, validation and few-label subsets out of it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace plinth {

// Pixels that stay in a memory-mapped file (a packed data set, datasets/packed.h) instead
// of Dataset::images: sample i of the data set is row rows[i] of the file, read on demand,
// so a data set larger than memory costs only its labels and this index.
struct MappedImages {
  std::shared_ptr<const void> owner;  // keeps the mapping alive
  const uint8_t* base = nullptr;      // row 0
  std::vector<int32_t> rows;          // [count]
};

struct Dataset {
  int count = 0, channels = 0, height = 0, width = 0;
  std::vector<uint8_t> images;  // [count, channels * height * width], 0..255; empty if mapped
  std::optional<MappedImages> mapped;  // where the pixels are when images is empty
  std::vector<int32_t> labels;         // [count] in [0, classes); empty for unlabelled images
  int classes = 0;
  std::vector<std::string> class_names;  // [classes] where the source names them, else empty
  std::vector<std::string> files;        // [count]: each sample's file (image folders), else empty
  std::string name;
  // The file the labels were read from, where the samples are that file's in its order
  // (load_idx_dataset); empty for subsets. Messages about a label name it and the index.
  std::string labels_file;

  int64_t image_size() const { return int64_t{channels} * height * width; }
  int64_t pixel_bytes() const { return count * image_size(); }
  const uint8_t* sample(int i) const {
    return mapped ? mapped->base + mapped->rows[i] * image_size()
                  : images.data() + i * image_size();
  }
  // How errors name sample i: its file, or "<name> sample <i>".
  std::string sample_name(int i) const;
};

// The three parts a data set source may hold; val is optional (image folders' val/, or a
// packed file's validation part).
enum class Split { train, test, val };

inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Loads the MNIST-style file pair for a split from dir: train-images-idx3-ubyte and
// train-labels-idx1-ubyte (Split::train) or t10k-* (Split::test), each raw or with a .gz
// suffix; where both exist the raw file is used (someone unpacked it on purpose).
// Images are [n, h, w] (one channel) or [n, c, h, w]; labels are [n];
// classes = max label + 1.
Dataset load_idx_dataset(const std::string& dir, Split split);

// Keras validation_split: the end of the data is held out. The training part keeps the
// first floor(count * (1 - val_fraction)) samples, the validation part the rest, both in
// order. val_fraction in [0, 1); 0 gives an empty validation set.
std::pair<Dataset, Dataset> split_validation(const Dataset& data, double val_fraction);

// The same per class, for data sets sorted by class (image folders, packed files), whose
// tail would hold only the last classes: of each class's n samples the first
// floor(n * (1 - val_fraction)) stay for training and the rest are held out, all in order.
std::pair<Dataset, Dataset> split_validation_by_class(const Dataset& data, double val_fraction);

// Keeps only the samples whose label is in classes and relabels classes[i] as i (class
// names follow). The samples keep their order.
Dataset restrict_classes(const Dataset& data, const std::vector<int>& classes);

// A seeded, class-stratified random subset for few-label fine-tuning: from each class
// that has n samples it keeps max(1, round(fraction * n)) of them, chosen by a
// Fisher-Yates shuffle seeded from (seed, class); the kept samples stay in dataset order.
// fraction in (0, 1]. Identical on every platform for one seed.
Dataset labelled_fraction(const Dataset& data, double fraction, uint64_t seed);
// labelled_fraction's samples, and the others without their labels (the unlabelled images
// of semi-supervised training), both in data set order.
std::pair<Dataset, Dataset> split_labelled(const Dataset& data, double fraction, uint64_t seed);

// Refuses a label outside [0, classes): plinth::Error naming the sample (its file, or the
// labels file or data set and the index), the label and whose classes they are: a label the
// model has no output for would add nothing to the loss yet count in every average. E.g.
// "train/cat/x.png: label 12 is outside the model's 10 classes (0 to 9)". Every reader and the
// trainer share it.
void check_labels(const Dataset& data, int classes, const std::string& whose = "the model's");

struct PixelStats {
  double mean = 0, std = 0;  // over all pixels scaled to [0, 1]; population std
};
PixelStats dataset_stats(const std::vector<uint8_t>& images);
// Per channel, over every sample's pixels of that channel (mapped data sets too).
std::vector<PixelStats> channel_stats(const Dataset& data);

// Input normalisation: the network sees (pixel / 255 - mean[c]) / std[c] for channel c.
// One value stands for every channel; the defaults keep inputs in [0, 1].
struct Normalization {
  std::vector<float> mean{0.0f}, std{1.0f};
  friend bool operator==(const Normalization&, const Normalization&) = default;
};
// The data set's per-channel mean and std; a constant channel (std 0) gets std 1.
Normalization normalization_of(const Dataset& data);

// The sample order for one epoch: a Fisher-Yates shuffle driven by std::mt19937_64
// seeded with hash_combine(seed, epoch) and an unbiased rejection-sampled bounded draw,
// so the order is identical on every platform and standard library.
std::vector<int32_t> epoch_permutation(int count, uint64_t seed, int epoch);

// Binary 8-bit PGM (P5) images for prediction: each must be exactly w x h.
// Pixels with a maxval below 255 are rescaled to 0..255. One channel; labels empty.
Dataset load_pgm_images(const std::vector<std::string>& paths, int h, int w);

}  // namespace plinth
