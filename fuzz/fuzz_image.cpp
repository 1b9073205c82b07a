// libFuzzer target for the PNG and JPEG decoders (libpng, TurboJPEG) behind image folders
// and predict. For any input decode_image must either throw plinth::Error or return 1 or 3
// channels of a positive size within kMaxImagePixels whose pixels fill it exactly; the
// image must then fit any model input. Anything else is a bug.
#include <cstdint>
#include <cstdlib>

#include "datasets/image.h"
#include "engine/error.h"

using namespace plinth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Image image;
  try {
    image = decode_image({data, size}, "fuzz");
  } catch (const Error&) {
    return 0;  // refusing is fine
  }
  if (image.channels != 1 && image.channels != 3) std::abort();
  if (image.height < 1 || image.width < 1) std::abort();
  if (int64_t{image.height} * image.width > kMaxImagePixels) std::abort();
  if (image.pixels.size() != size_t(image.channels) * image.height * image.width) std::abort();
  if (fit_image(image, 3, 7, 9).pixels.size() != 3 * 7 * 9) std::abort();
  if (fit_image(image, 1, 2 * image.height, 1).pixels.size() != size_t(2) * image.height)
    std::abort();
  return 0;
}
