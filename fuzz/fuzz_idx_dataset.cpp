// libFuzzer target for a whole IDX data set as `plinth train --data DIR` reads it: an image
// file and a label file (each raw or gzip) that must agree with each other, then the
// carving the CLI does (class subset, validation split, labelled fraction, statistics).
// The input is split in two: its first byte b gives the image file's share of the rest,
// b/255. For any input each step must throw plinth::Error or return a consistent Dataset.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "datasets/dataset.h"
#include "engine/error.h"
#include "memfd_file.h"

using namespace plinth;
namespace fs = std::filesystem;

namespace {

// A directory whose two entries link to the two in-memory files.
struct DataDir {
  fuzz::MemFile images{"fuzz-images"}, labels{"fuzz-labels"};
  fs::path dir;
  DataDir() {
    std::string pattern = (fs::temp_directory_path() / "plinth-fuzz-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) std::abort();
    dir = pattern;
    fs::create_symlink(images.path(), dir / "train-images-idx3-ubyte");
    fs::create_symlink(labels.path(), dir / "train-labels-idx1-ubyte");
  }
  ~DataDir() { fs::remove_all(dir); }
};

void require(bool ok) {
  if (!ok) std::abort();
}

void check(const Dataset& d) {
  require(d.count >= 0 && d.channels > 0 && d.height > 0 && d.width > 0);
  require(d.images.size() == static_cast<size_t>(d.count) * static_cast<size_t>(d.image_size()));
  require(d.labels.size() == static_cast<size_t>(d.count));
  for (int32_t label : d.labels) require(label >= 0 && label < d.classes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static DataDir files;
  if (size < 1) return 0;
  const size_t rest = size - 1, image_bytes = rest * data[0] / 255;
  files.images.hold(data + 1, image_bytes);
  files.labels.hold(data + 1 + image_bytes, rest - image_bytes);
  try {
    const Dataset d = load_idx_dataset(files.dir.string(), Split::train);
    check(d);
    check(restrict_classes(d, {d.classes - 1, 0}));
    check(labelled_fraction(d, 0.5, 7));
    const PixelStats s = dataset_stats(d.images);
    require(s.mean >= 0 && s.mean <= 1 && s.std >= 0 && s.std <= 1);
    const auto [train, val] = split_validation(d, 0.1);
    check(train);
    check(val);
    require(train.count + val.count == d.count);
  } catch (const Error&) {
  }
  return 0;
}
