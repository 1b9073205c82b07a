#include "datasets/cifar.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

constexpr int kCifarClasses = 10;
constexpr int kMaxBatches = 1000;  // data_batch_1 to data_batch_1000 are looked for
// A batch of CIFAR-10 holds 10,000 records (30.7 MB); this allows 100 times that.
constexpr size_t kMaxBatchBytes = size_t{kCifarRecordBytes} * 1000000;

std::vector<std::string> class_names(const fs::path& dir) {
  const fs::path meta = dir / "batches.meta.txt";
  std::error_code error;
  if (!fs::is_regular_file(meta, error))
    return {"airplane", "automobile", "bird",  "cat",  "deer",
            "dog",      "frog",       "horse", "ship", "truck"};
  std::istringstream text(read_file(meta.string(), 1 << 16));
  std::vector<std::string> names;
  for (std::string line; std::getline(text, line) && names.size() < kCifarClasses;)
    if (!line.empty()) names.push_back(line);
  if (names.size() != kCifarClasses)
    fail("{}: expected {} class names, one a line, found {}", meta.string(), kCifarClasses,
         names.size());
  return names;
}

void append_batch(const std::string& path, Dataset& data) {
  const std::string bytes = read_file(path, kMaxBatchBytes);
  if (bytes.empty() || bytes.size() % kCifarRecordBytes != 0)
    fail("{}: {} bytes is not a whole number of {}-byte CIFAR-10 records", path, bytes.size(),
         kCifarRecordBytes);
  const size_t records = bytes.size() / kCifarRecordBytes;
  for (size_t r = 0; r < records; ++r) {
    const auto* record = reinterpret_cast<const uint8_t*>(bytes.data()) + r * kCifarRecordBytes;
    if (record[0] >= kCifarClasses)
      fail("{}: record {} has label {}, outside CIFAR-10's classes 0 to 9", path, r, record[0]);
    data.labels.push_back(record[0]);
    data.images.insert(data.images.end(), record + 1, record + kCifarRecordBytes);
  }
}

}  // namespace

bool is_cifar10_dir(const std::string& dir) {
  std::error_code error;
  return fs::exists(fs::path(dir) / "data_batch_1.bin", error) ||
         fs::exists(fs::path(dir) / "test_batch.bin", error);
}

Dataset load_cifar10(const std::string& dir, Split split) {
  Dataset data;
  data.channels = 3;
  data.height = data.width = 32;
  data.classes = kCifarClasses;
  data.class_names = class_names(dir);
  data.name = fmt::format("{} {}", dir, split == Split::train ? "train" : "test");
  std::vector<std::string> files;
  std::error_code error;
  if (split == Split::train) {
    for (int k = 1; k <= kMaxBatches; ++k) {
      const fs::path path = fs::path(dir) / fmt::format("data_batch_{}.bin", k);
      if (!fs::exists(path, error)) break;
      files.push_back(path.string());
    }
    if (files.empty()) fail("{}: no data_batch_1.bin", dir);
  } else if (split == Split::test) {
    files.push_back((fs::path(dir) / "test_batch.bin").string());
  } else {
    return data;
  }
  for (const std::string& file : files) append_batch(file, data);
  data.count = static_cast<int>(data.labels.size());
  return data;
}

}  // namespace plinth
