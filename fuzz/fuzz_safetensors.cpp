// libFuzzer target for the safetensors reader, which loads files from anywhere. For any input
// parse_safetensors must either throw plinth::Error or return a file whose every tensor can
// be read, and which the writer encodes back into a file that parses to the same tensors.
// Anything else (a crash, a sanitizer report, another exception) is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "engine/error.h"
#include "engine/safetensors.h"

using namespace plinth;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

bool same_tensor(const SafetensorsTensor& a, const SafetensorsTensor& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.bytes.size() == b.bytes.size() &&
         (a.bytes.empty() || std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<SafetensorsFile> file;
  try {
    file = parse_safetensors(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const Error&) {
    return 0;  // refusing is fine
  }

  std::vector<NamedTensorData> tensors;
  for (const std::string& name : file->names()) {
    const SafetensorsTensor t = file->tensor(name);
    if (t.dtype == SafetensorsDtype::F32)
      require(file->float_tensor(name).size() * 4 == t.bytes.size());
    if (t.dtype == SafetensorsDtype::I64)
      require(file->int64_tensor(name).size() * 8 == t.bytes.size());
    tensors.push_back({name, t.dtype, t.shape, {t.bytes.begin(), t.bytes.end()}});
  }
  // Whatever the reader accepts, the writer must describe; an Error here escapes and is
  // reported as a crash.
  const SafetensorsFile again =
      parse_safetensors(encode_safetensors(tensors, file->metadata()), "re-encoded");
  require(again.names() == file->names() && again.metadata() == file->metadata());
  for (const std::string& name : file->names())
    require(same_tensor(again.tensor(name), file->tensor(name)));
  return 0;
}
