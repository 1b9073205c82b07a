// libFuzzer target for model files (JSON), which arrive with checkpoints from anywhere.
// For any input, parse_json (with its nesting limit, as load_model reads files) and then
// parse_model must throw plinth::Error or return a model whose to_json() parses again to
// the same model; nlohmann exceptions, crashes and sanitizer reports are bugs.
#include <cstdint>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/json_fields.h"
#include "engine/model.h"

using namespace plinth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Model m;
  try {
    m = parse_model(parse_json({reinterpret_cast<const char*>(data), size}, "fuzz.json"),
                    "fuzz.json");
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
