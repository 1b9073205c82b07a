// libFuzzer target for model files (JSON), which arrive with checkpoints from anywhere.
// For any JSON document parse_model must throw plinth::Error or return a model whose
// to_json() parses again to the same model; nlohmann exceptions, crashes and sanitizer
// reports are bugs. Inputs that are not JSON at all are load_model's concern (it turns
// the parse error into an Error) and are skipped.
#include <cstdint>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/model.h"

using namespace plinth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(data, data + size);
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  Model m;
  try {
    m = parse_model(j, "fuzz.json");
  } catch (const Error&) {
    return 0;  // refusing is fine
  }
  (void)m.parameter_count();
  // What a checkpoint stores must load back as the same model; an Error here escapes and
  // is reported as a crash.
  const nlohmann::json saved = m.to_json();
  if (parse_model(saved, "saved").to_json() != saved) std::abort();
  return 0;
}
