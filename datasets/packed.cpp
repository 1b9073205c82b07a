#include "datasets/packed.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace plinth {
namespace {

constexpr uint32_t kVersion = 1;
constexpr size_t kFixedHeaderBytes = 60;
constexpr int64_t kMaxSampleBytes = int64_t{1} << 28;
constexpr int64_t kMaxPackedSamples = (int64_t{1} << 31) - 1;

// The file's order of the parts, and Split's index into counts.
constexpr Split kFileOrder[3] = {Split::train, Split::val, Split::test};

template <typename T>
void put(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xff));
}

template <typename T>
T get(const uint8_t* p) {
  uint64_t value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value |= static_cast<uint64_t>(p[i]) << (8 * i);
  return static_cast<T>(value);
}

uint32_t crc_of(const uint8_t* data, size_t size) {
  uLong crc = crc32_z(0, Z_NULL, 0);
  return static_cast<uint32_t>(crc32_z(crc, data, size));
}

void check_compatible(const Dataset& a, const Dataset& b) {
  if (b.count == 0) return;
  if (a.channels != b.channels || a.height != b.height || a.width != b.width ||
      a.classes != b.classes || a.class_names != b.class_names)
    fail("pack: '{}' and '{}' differ in shape or classes", a.name, b.name);
}

}  // namespace

void write_packed(const std::string& path, const Dataset& train, const Dataset& val,
                  const Dataset& test) {
  check_compatible(train, val);
  check_compatible(train, test);
  if (train.classes < 1 || train.classes > kMaxPackedClasses)
    fail("{}: {} classes, a packed file holds 1 to {}", path, train.classes, kMaxPackedClasses);
  std::string names;
  for (int c = 0; c < train.classes; ++c) {
    const std::string name = train.class_names.empty() ? std::to_string(c) : train.class_names[c];
    if (name.empty() || name.size() > kMaxClassNameBytes)
      fail("{}: class name '{}' must have 1 to {} bytes", path, name, kMaxClassNameBytes);
    put<uint16_t>(names, static_cast<uint16_t>(name.size()));
    names += name;
  }
  std::string out(kPackedMagic, sizeof(kPackedMagic));
  put<uint32_t>(out, kVersion);
  put<uint32_t>(out, 0);  // the checksum, filled in below
  for (int v : {train.channels, train.height, train.width, train.classes}) put<uint32_t>(out, v);
  const Dataset* parts[3] = {&train, &val, &test};
  for (const Dataset* d : parts) put<uint64_t>(out, d->count);
  put<uint32_t>(out, static_cast<uint32_t>(names.size()));
  out += names;
  for (const Dataset* d : parts) {
    check_labels(*d, train.classes, "the data set's");
    for (int i = 0; i < d->count; ++i) put<int32_t>(out, d->labels.empty() ? 0 : d->labels[i]);
  }
  for (const Dataset* d : parts)
    for (int i = 0; i < d->count; ++i)
      out.append(reinterpret_cast<const char*>(d->sample(i)), d->image_size());
  const uint32_t crc = crc_of(reinterpret_cast<const uint8_t*>(out.data()) + 16, out.size() - 16);
  for (int i = 0; i < 4; ++i) out[12 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  write_file_atomically(path, out);
}

bool is_packed_file(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return false;
  std::ifstream file(path, std::ios::binary);
  char magic[sizeof(kPackedMagic)] = {};
  return file.read(magic, sizeof(magic)) && std::memcmp(magic, kPackedMagic, sizeof(magic)) == 0;
}

PackedFile::PackedFile(const std::string& path) : path_(path) {
  const InputFile file(path);  // a FIFO or a device is refused without blocking on it
  const uint64_t size = file.size();
  if (size < kFixedHeaderBytes)
    fail("{}: {} bytes, too short for a packed data set's header", path, size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, file.fd(), 0);  // outlives the fd
  if (map == MAP_FAILED) fail("{}: cannot map ({})", path, std::strerror(errno));
  mapping_ = std::shared_ptr<const void>(
      map, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  const auto* bytes = static_cast<const uint8_t*>(map);

  if (std::memcmp(bytes, kPackedMagic, sizeof(kPackedMagic)) != 0)
    fail("{}: not a packed data set (no PLNTPACK magic)", path);
  if (get<uint32_t>(bytes + 8) != kVersion)
    fail("{}: packed format version {}, this plinth reads {}", path, get<uint32_t>(bytes + 8),
         kVersion);
  const uint32_t channels = get<uint32_t>(bytes + 16), height = get<uint32_t>(bytes + 20),
                 width = get<uint32_t>(bytes + 24), classes = get<uint32_t>(bytes + 28);
  if (channels < 1 || height < 1 || width < 1 ||
      uint64_t{channels} * height * width > kMaxSampleBytes)
    fail("{}: header claims {}x{}x{} samples, outside 1 to {} bytes each", path, channels, height,
         width, kMaxSampleBytes);
  if (classes < 1 || classes > kMaxPackedClasses)
    fail("{}: header claims {} classes, outside 1 to {}", path, classes, kMaxPackedClasses);
  uint64_t total = 0;
  uint64_t file_counts[3];
  for (int p = 0; p < 3; ++p) {
    file_counts[p] = get<uint64_t>(bytes + 32 + 8 * p);
    if (file_counts[p] > uint64_t(kMaxPackedSamples) ||
        (total += file_counts[p]) > uint64_t(kMaxPackedSamples))
      fail("{}: header claims more than {} samples", path, kMaxPackedSamples);
  }
  const uint64_t names_bytes = get<uint32_t>(bytes + 56);
  if (names_bytes > uint64_t{classes} * (2 + kMaxClassNameBytes))
    fail("{}: header claims {} bytes of class names for {} classes", path, names_bytes, classes);
  const uint64_t sample_bytes = uint64_t{channels} * height * width;
  const uint64_t expected = kFixedHeaderBytes + names_bytes + total * (4 + sample_bytes);
  if (expected != size)
    fail("{}: the header describes {} bytes ({} samples of {}x{}x{}), the file has {}", path,
         expected, total, channels, height, width, size);
  if (crc_of(bytes + 16, size - 16) != get<uint32_t>(bytes + 12))
    fail("{}: checksum mismatch (the file is damaged or was changed after packing)", path);

  const uint8_t* p = bytes + kFixedHeaderBytes;
  const uint8_t* names_end = p + names_bytes;
  for (uint32_t c = 0; c < classes; ++c) {
    if (names_end - p < 2) fail("{}: class names end before class {}", path, c);
    const uint16_t length = get<uint16_t>(p);
    if (length == 0 || length > names_end - p - 2)
      fail("{}: class {}'s name has a bad length {}", path, c, length);
    class_names_.emplace_back(reinterpret_cast<const char*>(p + 2), length);
    p += 2 + length;
  }
  if (p != names_end) fail("{}: {} bytes after the class names", path, names_end - p);
  labels_.resize(total);
  for (uint64_t i = 0; i < total; ++i) labels_[i] = get<int32_t>(p + 4 * i);
  pixels_ = p + 4 * total;
  channels_ = static_cast<int>(channels);
  height_ = static_cast<int>(height);
  width_ = static_cast<int>(width);
  classes_ = static_cast<int>(classes);
  for (int part = 0; part < 3; ++part)
    counts_[static_cast<int>(kFileOrder[part])] = static_cast<int64_t>(file_counts[part]);
  for (Split split : kFileOrder) check_labels(this->part(split), classes_, "the file's");
}

Dataset PackedFile::part(Split split) const {
  int64_t first = 0;
  for (Split s : kFileOrder) {
    if (s == split) break;
    first += count(s);
  }
  Dataset d;
  d.count = static_cast<int>(count(split));
  d.channels = channels_;
  d.height = height_;
  d.width = width_;
  d.classes = classes_;
  d.class_names = class_names_;
  d.name = fmt::format("{} {}", path_,
                       split == Split::train ? "train"
                       : split == Split::val ? "val"
                                             : "test");
  d.labels.assign(labels_.begin() + first, labels_.begin() + first + d.count);
  d.mapped = MappedImages{mapping_, pixels_, {}};
  d.mapped->rows.resize(d.count);
  for (int i = 0; i < d.count; ++i) d.mapped->rows[i] = static_cast<int32_t>(first + i);
  return d;
}

}  // namespace plinth
