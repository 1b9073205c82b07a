// PNG and JPEG decoding, fitting images to a model's input, and hostile image files.
#include <catch2/catch.hpp>

#include <zlib.h>

#include <string>
#include <vector>

#include "datasets/image.h"
#include "engine/error.h"
#include "image_fixtures.h"

namespace plinth {
namespace {

using test::class_image;
using test::encode_jpeg;
using test::encode_png;

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string decode_error(const std::string& bytes) {
  try {
    decode_image(bytes_of(bytes), "x.img");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// A PNG chunk: length, type and data, and their CRC.
std::string png_chunk(const std::string& type_and_data) {
  std::string chunk;
  const uint32_t length = static_cast<uint32_t>(type_and_data.size() - 4);
  const uLong crc =
      crc32(0, reinterpret_cast<const Bytef*>(type_and_data.data()), type_and_data.size());
  for (int shift : {24, 16, 8, 0}) chunk.push_back(static_cast<char>((length >> shift) & 0xff));
  chunk += type_and_data;
  for (int shift : {24, 16, 8, 0}) chunk.push_back(static_cast<char>((crc >> shift) & 0xff));
  return chunk;
}

// A PNG whose IHDR declares width x height, followed by a few bytes of image data: what a
// reader sees before it commits memory to the pixels.
std::string png_header(uint32_t width, uint32_t height) {
  std::string ihdr = "IHDR";
  for (uint32_t v : {width, height})
    for (int shift : {24, 16, 8, 0}) ihdr.push_back(static_cast<char>((v >> shift) & 0xff));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk(ihdr) + png_chunk("IDAT0123456789");
}

TEST_CASE("images: PNG decodes exactly, grey as one channel and RGB as three", "[data][images]") {
  for (int channels : {1, 3}) {
    const Image image = class_image(1, channels, 12, 3);
    const Image back = decode_image(bytes_of(encode_png(image)), "a.png");
    CHECK(back.channels == channels);
    CHECK(back.height == 12);
    CHECK(back.width == 12);
    CHECK(back.pixels == image.pixels);
  }
}

TEST_CASE("images: JPEG decodes grey as one channel and RGB as three, close to the original",
          "[data][images]") {
  for (int channels : {1, 3}) {
    const Image image = class_image(2, channels, 16, 1);
    const Image back = decode_image(bytes_of(encode_jpeg(image, 100)), "a.jpg");
    REQUIRE(back.channels == channels);
    REQUIRE(back.pixels.size() == image.pixels.size());
    double error = 0;
    for (size_t i = 0; i < image.pixels.size(); ++i)
      error += std::abs(int(back.pixels[i]) - int(image.pixels[i]));
    CHECK(error / image.pixels.size() < 4);  // lossy, but close at quality 100
  }
}

TEST_CASE("images: fit_image averages areas down, interpolates up, converts channels",
          "[data][images]") {
  // 4x4 to 2x2: each output pixel is the mean of a 2x2 block.
  Image grey{1, 4, 4, {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150}};
  CHECK(fit_image(grey, 1, 2, 2).pixels == std::vector<uint8_t>{25, 45, 105, 125});
  // 3 to 2 across: output 0 covers source 0 and half of 1, output 1 half of 1 and 2.
  Image row{1, 1, 3, {0, 90, 180}};
  CHECK(fit_image(row, 1, 1, 2).pixels == std::vector<uint8_t>{30, 150});
  // 2 to 4 across, bilinear between pixel centres, clamped at the borders.
  Image two{1, 1, 2, {0, 200}};
  CHECK(fit_image(two, 1, 1, 4).pixels == std::vector<uint8_t>{0, 50, 150, 200});
  // Grey to RGB repeats; RGB to grey is BT.601 luma.
  Image g{1, 1, 1, {77}};
  CHECK(fit_image(g, 3, 1, 1).pixels == std::vector<uint8_t>{77, 77, 77});
  Image rgb{3, 1, 1, {255, 0, 0}};
  CHECK(fit_image(rgb, 1, 1, 1).pixels == std::vector<uint8_t>{76});
  // The same size and channels is a copy.
  CHECK(fit_image(grey, 1, 4, 4).pixels == grey.pixels);
}

TEST_CASE("images: hostile files are one-line errors naming the file, never a crash",
          "[data][images][robustness]") {
  using Catch::Contains;
  using Catch::StartsWith;
  const std::string png = encode_png(class_image(0, 3, 32, 0));
  const std::string jpeg = encode_jpeg(class_image(0, 3, 32, 0));
  // Cut short anywhere up to IEND, whose 12 bytes the image does not need.
  for (size_t cut : {size_t{8}, size_t{30}, png.size() / 2, png.size() - 13})
    CHECK_THAT(decode_error(png.substr(0, cut)), StartsWith("x.img: "));
  for (size_t cut : {size_t{3}, size_t{100}, jpeg.size() / 2, jpeg.size() - 2})
    CHECK_THAT(decode_error(jpeg.substr(0, cut)), StartsWith("x.img: "));
  CHECK_THAT(decode_error(png.substr(0, png.size() / 2)), Contains("corrupt PNG"));
  CHECK_THAT(decode_error(jpeg.substr(0, jpeg.size() - 2)), Contains("corrupt JPEG"));
  // Declared sizes far beyond any image: refused before any pixel memory is committed.
  CHECK_THAT(decode_error(png_header(100000, 100000)), Contains("declared size 100000x100000"));
  CHECK_THAT(decode_error(png_header(0, 5)), StartsWith("x.img: "));
  std::string big_jpeg = jpeg;  // SOF0's height and width: 65000 x 65000
  const size_t sof = big_jpeg.find("\xff\xc0");
  REQUIRE(sof != std::string::npos);
  big_jpeg.replace(sof + 5, 4, std::string("\xfd\xe8\xfd\xe8", 4));
  CHECK_THAT(decode_error(big_jpeg), Contains("declared size 65000x65000"));
  CHECK_THAT(decode_error(""), Contains("neither a PNG nor a JPEG"));
  CHECK_THAT(decode_error("GIF89a......"), Contains("neither a PNG nor a JPEG"));
  CHECK_THAT(decode_error(std::string(300, '\xff')), StartsWith("x.img: "));
  CHECK(decode_error(png) == "no error");
  const std::string dir = test::temp_dir("images-read");
  CHECK_THROWS_WITH(read_image(dir + "/absent.png"), StartsWith(dir + "/absent.png: "));
  CHECK_THROWS_WITH(read_image(dir), StartsWith(dir + ": "));
}

TEST_CASE("images: the file name's extension says PNG or JPEG", "[data][images]") {
  for (const char* yes : {"a.png", "b.JPG", "dir.x/c.jpeg", "d.Png"})
    CHECK(has_image_extension(yes));
  for (const char* no : {"a.pgm", "png", "a.png.txt", "dir.png/x", ".jpgx"})
    CHECK_FALSE(has_image_extension(no));
}

}  // namespace
}  // namespace plinth
