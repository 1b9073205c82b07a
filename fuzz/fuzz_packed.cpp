// libFuzzer target for packed data sets, which training memory-maps from anywhere. For any
// input PackedFile must either throw plinth::Error or give parts whose every sample lies
// inside the mapping (each byte is read here, so ASan sees a read past it) and whose labels
// are within the file's classes. Anything else is a bug.
#include <cstdint>
#include <cstdlib>

#include "datasets/packed.h"
#include "engine/error.h"
#include "memfd_file.h"

using namespace plinth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file("fuzz-packed");
  try {
    const PackedFile packed(file.hold(data, size));
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
