// libFuzzer target for CIFAR-10 binary batches. The input is the folder's data_batch_1.bin
// (a link to an in-memory file). For any input load_cifar10 must either throw plinth::Error
// or return whole 3x32x32 records with labels 0 to 9. Anything else is a bug.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "datasets/cifar.h"
#include "engine/error.h"
#include "memfd_file.h"

using namespace plinth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file("fuzz-cifar");
  static const std::string dir = [] {
    char name[] = "/tmp/plinth-fuzz-cifar-XXXXXX";
    if (!::mkdtemp(name)) std::abort();
    std::filesystem::create_symlink(file.path(), std::string(name) + "/data_batch_1.bin");
    return std::string(name);
  }();
  file.hold(data, size);
  try {
    const Dataset d = load_cifar10(dir, Split::train);
    if (d.count < 1 || d.count != static_cast<int>(size / kCifarRecordBytes)) std::abort();
    if (d.images.size() != size_t(d.count) * 3 * 32 * 32) std::abort();
    for (int32_t label : d.labels)
      if (label < 0 || label > 9) std::abort();
  } catch (const Error&) {
  }
  return 0;
}
