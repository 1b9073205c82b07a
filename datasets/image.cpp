#include "datasets/image.h"

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace plinth {
namespace {

void check_declared_size(int64_t width, int64_t height, const std::string& path) {
  if (width < 1 || height < 1 || width * height > kMaxImagePixels)
    fail("{}: declared size {}x{} is outside 1 to {} pixels", path, width, height, kMaxImagePixels);
}

// Interleaved [height, width, channels] rows into the channels-first layout.
Image from_interleaved(const std::vector<uint8_t>& hwc, int channels, int height, int width) {
  Image image{channels, height, width, std::vector<uint8_t>(hwc.size())};
  const size_t plane = static_cast<size_t>(height) * width;
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < channels; ++c) image.pixels[c * plane + p] = hwc[p * channels + c];
  return image;
}

Image decode_png(std::span<const uint8_t> bytes, const std::string& path) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()))
    fail("{}: not a readable PNG ({})", path, png.message);
  // Frees libpng's state however this function ends (a no-op once it is freed).
  std::unique_ptr<png_image, void (*)(png_image*)> guard(&png, png_image_free);
  check_declared_size(png.width, png.height, path);
  const int channels = (png.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
  png.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  std::vector<uint8_t> hwc(PNG_IMAGE_SIZE(png));
  const png_color black{0, 0, 0};
  if (!png_image_finish_read(&png, &black, hwc.data(), 0, nullptr))
    fail("{}: corrupt PNG ({})", path, png.message);
  return from_interleaved(hwc, channels, static_cast<int>(png.height), static_cast<int>(png.width));
}

Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& path) {
  std::unique_ptr<void, int (*)(tjhandle)> jpeg(tjInitDecompress(), tjDestroy);
  if (!jpeg) fail("{}: cannot start the JPEG decoder", path);
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(jpeg.get(), bytes.data(), bytes.size(), &width, &height, &subsampling,
                          &colorspace) != 0)
    fail("{}: not a readable JPEG ({})", path, tjGetErrorStr2(jpeg.get()));
  check_declared_size(width, height, path);
  const int channels = colorspace == TJCS_GRAY ? 1 : 3;
  std::vector<uint8_t> hwc(static_cast<size_t>(width) * height * channels);
  // A warning (e.g. a truncated file, whose missing rows libjpeg would paint grey) is an
  // error here: a half-decoded image must not reach training.
  if (tjDecompress2(jpeg.get(), bytes.data(), bytes.size(), hwc.data(), width, 0, height,
                    channels == 3 ? TJPF_RGB : TJPF_GRAY,
                    TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0)
    fail("{}: corrupt JPEG ({})", path, tjGetErrorStr2(jpeg.get()));
  return from_interleaved(hwc, channels, height, width);
}

Image convert_channels(const Image& image, int channels) {
  if (image.channels == channels) return image;
  const size_t plane = static_cast<size_t>(image.height) * image.width;
  Image out{channels, image.height, image.width, std::vector<uint8_t>(plane * channels)};
  if (image.channels == 1 && channels == 3) {
    for (int c = 0; c < 3; ++c)
      std::copy(image.pixels.begin(), image.pixels.end(), out.pixels.begin() + c * plane);
  } else if (image.channels == 3 && channels == 1) {
    const uint8_t *r = image.pixels.data(), *g = r + plane, *b = g + plane;
    for (size_t p = 0; p < plane; ++p)
      out.pixels[p] = static_cast<uint8_t>(std::lround(0.299 * r[p] + 0.587 * g[p] + 0.114 * b[p]));
  } else {
    fail("fit_image: cannot convert {} channels to {}", image.channels, channels);
  }
  return out;
}

// How one axis of length `in` maps to length `out`: output i is the weighted sum of
// inputs first[i], first[i] + 1, ... with weights[i].
struct AxisWeights {
  std::vector<int> first;
  std::vector<std::vector<float>> weights;
};

AxisWeights axis_weights(int in, int out) {
  AxisWeights a{std::vector<int>(out), std::vector<std::vector<float>>(out)};
  const double scale = static_cast<double>(in) / out;
  for (int i = 0; i < out; ++i) {
    if (out < in) {  // area: the source interval [i * scale, (i + 1) * scale)
      const double lo = i * scale, hi = (i + 1) * scale;
      a.first[i] = static_cast<int>(std::floor(lo));
      for (int j = a.first[i]; j < in && j < hi; ++j)
        a.weights[i].push_back(
            static_cast<float>((std::min<double>(hi, j + 1) - std::max<double>(lo, j)) / scale));
    } else {  // bilinear between the centres around (i + 0.5) * scale - 0.5
      const double src = std::clamp((i + 0.5) * scale - 0.5, 0.0, in - 1.0);
      a.first[i] = std::min(static_cast<int>(std::floor(src)), in - 1);
      const float t = static_cast<float>(src - a.first[i]);
      a.weights[i] = a.first[i] + 1 < in ? std::vector<float>{1 - t, t} : std::vector<float>{1};
    }
  }
  return a;
}

}  // namespace

Image decode_image(std::span<const uint8_t> bytes, const std::string& path) {
  static constexpr uint8_t kPng[] = {0x89, 'P', 'N', 'G'};
  static constexpr uint8_t kJpeg[] = {0xff, 0xd8, 0xff};
  if (bytes.size() >= 4 && std::equal(kPng, kPng + 4, bytes.begin()))
    return decode_png(bytes, path);
  if (bytes.size() >= 3 && std::equal(kJpeg, kJpeg + 3, bytes.begin()))
    return decode_jpeg(bytes, path);
  fail("{}: neither a PNG nor a JPEG image (unknown signature)", path);
}

Image read_image(const std::string& path) {
  const std::string bytes = read_file(path, kMaxImageFileBytes);
  return decode_image({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, path);
}

bool has_image_extension(const std::string& path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}

Image fit_image(const Image& image, int channels, int height, int width) {
  if (height < 1 || width < 1) fail("fit_image: bad target size {}x{}", width, height);
  Image converted = convert_channels(image, channels);
  if (converted.height == height && converted.width == width) return converted;
  const AxisWeights across = axis_weights(converted.width, width);
  const AxisWeights down = axis_weights(converted.height, height);
  Image out{channels, height, width,
            std::vector<uint8_t>(static_cast<size_t>(channels) * height * width)};
  std::vector<float> rows(static_cast<size_t>(converted.height) * width);
  for (int c = 0; c < channels; ++c) {
    const uint8_t* src =
        converted.pixels.data() + static_cast<size_t>(c) * converted.height * converted.width;
    for (int y = 0; y < converted.height; ++y)
      for (int x = 0; x < width; ++x) {
        float sum = 0;
        for (size_t k = 0; k < across.weights[x].size(); ++k)
          sum += across.weights[x][k] *
                 src[static_cast<size_t>(y) * converted.width + across.first[x] + k];
        rows[static_cast<size_t>(y) * width + x] = sum;
      }
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(c) * height * width;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        float sum = 0;
        for (size_t k = 0; k < down.weights[y].size(); ++k)
          sum += down.weights[y][k] * rows[(down.first[y] + k) * width + x];
        dst[static_cast<size_t>(y) * width + x] =
            static_cast<uint8_t>(std::clamp(std::lround(sum), 0L, 255L));
      }
  }
  return out;
}

}  // namespace plinth
