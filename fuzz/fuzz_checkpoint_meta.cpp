// libFuzzer target for the metadata of a plinth checkpoint, what `plinth train --resume`
// and `plinth eval --checkpoint` read before anything else. The safetensors container is
// fuzzed by fuzz_safetensors; here the input is the metadata values themselves, split at
// zero bytes in the order of kKeys, wrapped in a valid safetensors file. For any values
// read_checkpoint_meta, then parse_model on the model it holds, must succeed or throw
// plinth::Error.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "memfd_file.h"

using namespace plinth;

namespace {

constexpr const char* kKeys[] = {
    "model",         "config",          "epoch",   "step",          "batch_in_epoch",
    "partial_stats", "partial_seconds", "history", "normalization", "tag"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file("fuzz-checkpoint");
  std::map<std::string, std::string> metadata{{"format", "pt"}};
  const std::string input(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  for (const char* key : kKeys) {
    if (start > input.size()) break;
    const size_t end = std::min(input.find('\0', start), input.size());
    metadata[key] = input.substr(start, end - start);
    start = end + 1;
  }
  const float weight = 1;
  std::string bytes;
  try {
    bytes = encode_safetensors({NamedTensorData::f32("fc.weight", {1}, {&weight, 1})}, metadata);
  } catch (const Error&) {
    return 0;  // metadata the writer refuses (not UTF-8) cannot be in a file it wrote
  }
  try {
    const CheckpointMeta meta = read_checkpoint_meta(
        file.hold(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    (void)parse_model(meta.model, "checkpoint:model");
  } catch (const Error&) {
  }
  return 0;
}
