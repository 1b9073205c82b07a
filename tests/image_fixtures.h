// Images and data sets the data tests make on disk: PNG and JPEG files written with the
// same Debian libraries plinth reads them with, and a small image folder whose classes a
// tiny network can learn.
#pragma once

#include <png.h>
#include <turbojpeg.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "datasets/image.h"
#include "engine_fixtures.h"

namespace plinth::test {

// The channels-first image as interleaved rows, the layout the encoders take.
inline std::vector<uint8_t> interleaved(const Image& image) {
  const size_t plane = static_cast<size_t>(image.height) * image.width;
  std::vector<uint8_t> hwc(image.pixels.size());
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < image.channels; ++c)
      hwc[p * image.channels + c] = image.pixels[c * plane + p];
  return hwc;
}

inline std::string encode_png(const Image& image) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = image.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  const std::vector<uint8_t> hwc = interleaved(image);
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, hwc.data(), 0, nullptr))
    throw std::runtime_error(png.message);
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&png, bytes.data(), &size, 0, hwc.data(), 0, nullptr))
    throw std::runtime_error(png.message);
  bytes.resize(size);
  return bytes;
}

inline std::string encode_jpeg(const Image& image, int quality = 95) {
  std::unique_ptr<void, int (*)(tjhandle)> jpeg(tjInitCompress(), tjDestroy);
  const std::vector<uint8_t> hwc = interleaved(image);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const bool grey = image.channels == 1;
  if (tjCompress2(jpeg.get(), hwc.data(), image.width, 0, image.height, grey ? TJPF_GRAY : TJPF_RGB,
                  &out, &size, grey ? TJSAMP_GRAY : TJSAMP_444, quality, 0) != 0)
    throw std::runtime_error(tjGetErrorStr2(jpeg.get()));
  std::string bytes(reinterpret_cast<char*>(out), size);
  tjFree(out);
  return bytes;
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// A size x size image of class c: dark, with a bright horizontal band whose place says the
// class (rows [c, c + 1] / 3 of the height); colour images tint it by the class too.
inline Image class_image(int c, int channels, int size, int variant) {
  Image image{channels, size, size, std::vector<uint8_t>(size_t(channels) * size * size)};
  for (int ch = 0; ch < channels; ++ch)
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const bool band = y * 3 / size == c;
        const int value = band ? 200 + (variant * 7 + ch * 10) % 50 : (x + y + variant) % 30;
        image.pixels[(size_t(ch) * size + y) * size + x] = static_cast<uint8_t>(value);
      }
  return image;
}

// DIR/{train,test}/{a_top,b_middle,c_bottom}/: per class `per_class` training and 4 test
// images, alternating PNG and JPEG, grey and RGB, 20x20 and 24x24; plus one corrupt PNG in
// train/a_top/ (a file cut short) and a text file that is not an image.
inline std::string image_folder(const std::string& name, int per_class) {
  const std::string dir = temp_dir(name);
  const char* classes[] = {"a_top", "b_middle", "c_bottom"};
  for (const char* split : {"train", "test"}) {
    const int n = std::string(split) == "train" ? per_class : 4;
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < n; ++i) {
        const Image image = class_image(c, i % 2 ? 3 : 1, i % 3 ? 20 : 24, i);
        const bool png = i % 4 < 2;
        write_bytes(dir + "/" + split + "/" + classes[c] + "/" + std::to_string(i) +
                        (png ? ".png" : ".jpg"),
                    png ? encode_png(image) : encode_jpeg(image));
      }
  }
  const std::string whole = encode_png(class_image(0, 3, 20, 0));
  write_bytes(dir + "/train/a_top/broken.png", whole.substr(0, whole.size() / 2));
  write_bytes(dir + "/train/a_top/notes.txt", "not an image");
  return dir;
}

// A tiny RGB classifier of 16x16 images into 3 classes.
inline std::string tiny_rgb_cnn_file(const std::string& dir) {
  const std::string path = dir + "/tiny_rgb_cnn.json";
  std::ofstream(path) << R"({
    "name": "tiny_rgb_cnn", "input": [3, 16, 16],
    "layers": [
      {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "padding": "same",
       "activation": "relu"},
      {"type": "maxpool2d", "name": "pool1", "size": 2},
      {"type": "activation", "name": "act1", "activation": "tanh"},
      {"type": "flatten", "name": "flatten"},
      {"type": "dropout", "name": "drop1", "rate": 0.1},
      {"type": "dense", "name": "fc1", "units": 8, "activation": "sigmoid"},
      {"type": "dense", "name": "fc2", "units": 3, "activation": "softmax"}],
    "loss": "categorical_crossentropy",
    "optimizer": {"type": "adam", "lr": 0.01},
    "training": {"epochs": 3, "batch_size": 4, "val_split": 0.2, "normalize": true,
                 "augment": {"shift": 1, "horizontal_flip": true}}
  })";
  return path;
}

}  // namespace plinth::test
