// What every backend shares: the default for backends that run each op as it is called,
// which cannot record a graph.
#include "engine/backend.h"

#include "engine/error.h"

namespace plinth {

std::string Backend::capture_unavailable() const {
  return "the " + description() + " backend runs each op as it is called";
}

std::unique_ptr<OpGraph> Backend::capture(const std::function<void()>&, std::unique_ptr<OpGraph>) {
  fail("capture: {}", capture_unavailable());
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::tf32:
      return "tf32";
    case Precision::bf16:
      return "bf16";
    default:
      return "fp32";
  }
}

}  // namespace plinth
