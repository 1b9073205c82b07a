// Image classification data held in host memory as uint8 pixels, plus the pure,
// deterministic helpers that carve training, validation and few-label subsets out of it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace plinth {

struct Dataset {
  int count = 0, channels = 0, height = 0, width = 0;
  std::vector<uint8_t> images;  // [count, channels * height * width], 0..255
  std::vector<int32_t> labels;  // [count] in [0, classes); empty for unlabelled images
  int classes = 0;
  std::string name;
  // The file the labels were read from, where the samples are that file's in its order
  // (load_idx_dataset); empty for subsets. Messages about a label name it and the index.
  std::string labels_file;

  int64_t image_size() const { return int64_t{channels} * height * width; }
};

enum class Split { train, test };

inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Loads the MNIST-style file pair for a split from dir: train-images-idx3-ubyte and
// train-labels-idx1-ubyte (Split::train) or t10k-* (Split::test), each raw or with a .gz
// suffix; where both exist the raw file is used (someone unpacked it on purpose).
// Images are [n, h, w] (one channel) or [n, c, h, w]; labels are [n];
// classes = max label + 1.
Dataset load_idx_dataset(const std::string& dir, Split split);

// Throws Error unless every label lies in [0, classes), naming the file (or the data set)
// and the index: a label the model has no output for would add nothing to the loss yet
// count in every average.
void check_labels(const Dataset& data, int classes);

// Keras validation_split: the end of the data is held out. The training part keeps the
// first floor(count * (1 - val_fraction)) samples, the validation part the rest, both in
// order. val_fraction in [0, 1); 0 gives an empty validation set.
std::pair<Dataset, Dataset> split_validation(const Dataset& data, double val_fraction);

// Keeps only the samples whose label is in classes and relabels classes[i] as i.
// The samples keep their order.
Dataset restrict_classes(const Dataset& data, const std::vector<int>& classes);

// A seeded, class-stratified random subset for few-label fine-tuning: from each class
// that has n samples it keeps max(1, round(fraction * n)) of them, chosen by a
// Fisher-Yates shuffle seeded from (seed, class); the kept samples stay in dataset order.
// fraction in (0, 1]. Identical on every platform for one seed.
Dataset labelled_fraction(const Dataset& data, double fraction, uint64_t seed);

struct PixelStats {
  double mean = 0, std = 0;  // over all pixels scaled to [0, 1]; population std
};
PixelStats dataset_stats(const std::vector<uint8_t>& images);

// The sample order for one epoch: a Fisher-Yates shuffle driven by std::mt19937_64
// seeded with hash_combine(seed, epoch) and an unbiased rejection-sampled bounded draw,
// so the order is identical on every platform and standard library.
std::vector<int32_t> epoch_permutation(int count, uint64_t seed, int epoch);

// Binary 8-bit PGM (P5) images for prediction: each must be exactly w x h.
// Pixels with a maxval below 255 are rescaled to 0..255. One channel; labels empty.
Dataset load_pgm_images(const std::vector<std::string>& paths, int h, int w);

}  // namespace plinth
