// PNG and JPEG images for image-folder data sets and prediction: decoding through Debian's
// libpng and libjpeg-turbo (TurboJPEG), and fitting an image to a model's input.
//
// Decoding is defensive: the declared size is checked against kMaxImagePixels before any
// pixel memory is committed, and a truncated or corrupt file is a plinth::Error
// "<path>: <problem>", never a crash or a partly decoded image.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace plinth {

// An 8-bit image, channels first: [channels, height, width] with 1 (grey) or 3 (RGB)
// channels.
struct Image {
  int channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;
};

// 8192 x 8192: far above any training image, low enough that a lying header cannot make
// a reader commit gigabytes.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;
// Files larger than this are refused before they are read.
inline constexpr int64_t kMaxImageFileBytes = int64_t{1} << 28;

// PNG or JPEG by their signature bytes. Grey images (with or without alpha) decode to one
// channel, colour ones (palette, RGB, RGBA, YCbCr) to three; alpha is dropped after
// compositing onto black, 16-bit samples are reduced to 8. `path` names the source in errors.
Image decode_image(std::span<const uint8_t> bytes, const std::string& path);
Image read_image(const std::string& path);

// Whether a file name has a PNG or JPEG extension (.png, .jpg, .jpeg; any case).
bool has_image_extension(const std::string& path);

// The image as the model takes it: converted to `channels` (grey to RGB repeats the grey
// value; RGB to grey is the ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B) and resized to
// height x width, each axis on its own: area averaging where it shrinks (every source
// pixel counts by the fraction of it that an output pixel covers) and bilinear
// interpolation between pixel centres where it grows, rounded to the nearest integer.
Image fit_image(const Image& image, int channels, int height, int width);

}  // namespace plinth
