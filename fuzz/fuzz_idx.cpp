// libFuzzer target for the IDX reader (raw and gzip), which reads data sets from anywhere.
// For any input read_idx must either throw plinth::Error or return 1 to 4 positive
// dimensions whose product is the number of bytes it holds. Anything else (a crash, a
// sanitizer report, another exception, an allocation the file cannot back) is a bug.
#include <cstdint>
#include <cstdlib>

#include "datasets/idx.h"
#include "engine/error.h"
#include "memfd_file.h"

using namespace plinth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file("fuzz-idx");
  IdxArray array;
  try {
    array = read_idx(file.hold(data, size));
  } catch (const Error&) {
    return 0;  // refusing is fine
  }
  if (array.dims.empty() || array.dims.size() > 4) std::abort();
  uint64_t elements = 1;
  for (int d : array.dims) {
    if (d < 1) std::abort();
    elements *= static_cast<uint64_t>(d);
  }
  if (elements != array.data.size()) std::abort();
  return 0;
}
