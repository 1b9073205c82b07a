// Packed data sets: an image folder (or any data set) decoded once into one file of uint8
// pixels that training memory-maps, so epochs never decode images again and a data set
// larger than memory is paged in by the operating system as it is read.
//
// Layout, little-endian:
//   0   "PLNTPACK"                      magic
//   8   u32 version (1)
//   12  u32 CRC-32 (zlib's) of every byte from offset 16 to the end
//   16  u32 channels, height, width, classes
//   32  u64 sample counts of the training, validation and test parts
//   56  u32 bytes of class names, then each name as a u16 length and its bytes
//   ... i32 labels of every sample (training, then validation, then test)
//   ... uint8 pixels of every sample, [channels, height, width] each, in the same order
//
// Opening checks everything the header claims against the file before trusting it: the
// sizes and counts against their limits and the file's length, the checksum, the class
// names and every label. Any problem is a plinth::Error "<path>: <problem>".
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace plinth {

inline constexpr char kPackedMagic[8] = {'P', 'L', 'N', 'T', 'P', 'A', 'C', 'K'};
inline constexpr int kMaxPackedClasses = 65536;
inline constexpr int kMaxClassNameBytes = 255;

// Writes the parts (val may be empty) into one packed file, atomically. They must share
// shape, classes and class names (empty names are stored as the class numbers).
void write_packed(const std::string& path, const Dataset& train, const Dataset& val,
                  const Dataset& test);

// Whether path is a regular file that starts with the packed magic.
bool is_packed_file(const std::string& path);

class PackedFile {
 public:
  // Maps and checks the file.
  explicit PackedFile(const std::string& path);
  // One part as a mapped data set (Dataset::mapped): only its labels are copied.
  Dataset part(Split split) const;
  int64_t count(Split split) const { return counts_[static_cast<int>(split)]; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<const void> mapping_;
  const uint8_t* pixels_ = nullptr;
  int channels_ = 0, height_ = 0, width_ = 0, classes_ = 0;
  std::array<int64_t, 3> counts_{};  // by Split: train, test, val
  std::vector<std::string> class_names_;
  std::vector<int32_t> labels_;  // all parts, in the file's order (train, val, test)
};

}  // namespace plinth
