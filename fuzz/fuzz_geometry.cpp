// libFuzzer target for the geometry checks of convolutions and pooling, on the shape structs
// both backends use and through model files (fuzz/geometry_check.h says what must hold).
#include <cstdint>

#include "geometry_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  plinth::fuzz::check_geometry(data, size);
  return 0;
}
