// libFuzzer target for packed data sets, which training memory-maps from anywhere. For any
// input PackedFile must either throw plinth::Error or give parts whose every sample lies
// inside the mapping (each byte is read here, so ASan sees a read past it) and whose labels
// are within the file's classes. Anything else is a bug. Inputs of even length get a
// correct checksum first, so that the fuzzer reaches the class names and labels behind it.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "datasets/packed.h"
#include "engine/error.h"
#include "memfd_file.h"

using namespace plinth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file("fuzz-packed");
  std::vector<uint8_t> bytes(data, data + size);
  if (size >= 16 && size % 2 == 0) {
    const uLong crc = crc32_z(0, bytes.data() + 16, size - 16);
    for (int i = 0; i < 4; ++i) bytes[12 + i] = static_cast<uint8_t>(crc >> (8 * i));
  }
  try {
    const PackedFile packed(file.hold(bytes.data(), size));
    uint64_t sum = 0;
    for (Split split : {Split::train, Split::val, Split::test}) {
      const Dataset d = packed.part(split);
      if (d.count != packed.count(split) || d.labels.size() != size_t(d.count)) std::abort();
      if (static_cast<int>(d.class_names.size()) != d.classes) std::abort();
      for (int i = 0; i < d.count; ++i) {
        if (d.labels[i] < 0 || d.labels[i] >= d.classes) std::abort();
        for (int64_t b = 0; b < d.image_size(); ++b) sum += d.sample(i)[b];
      }
    }
    if (sum == UINT64_MAX) std::abort();  // keeps the reads
  } catch (const Error&) {
  }
  return 0;
}
