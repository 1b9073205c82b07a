// Image folders, packed files and CIFAR-10 batches: what they read, their hostile inputs,
// label checks, and training from a streamed data set.
#include <catch2/catch.hpp>

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "datasets/cifar.h"
#include "datasets/data_source.h"
#include "datasets/image_folder.h"
#include "datasets/packed.h"
#include "engine/device_dataset.h"
#include "engine/device_select.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/trainer.h"
#include "image_fixtures.h"

namespace plinth {
namespace {

using Catch::Contains;
using Catch::StartsWith;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Rewrites a packed file's checksum after a change, so that a test can reach the checks
// behind it.
void write_with_checksum(const std::string& path, std::string bytes) {
  const uLong crc =
      crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()) + 16, bytes.size() - 16);
  for (int i = 0; i < 4; ++i) bytes[12 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST_CASE("image folder: sorted classes, PNG and JPEG, grey and RGB, corrupt files skipped",
          "[data][folder]") {
  const std::string dir = test::image_folder("folder-read", 6);
  CHECK(is_image_folder(dir));
  std::vector<std::string> skipped;
  const Dataset train = load_image_folder(dir, Split::train, {3, 16, 16, false}, &skipped);
  CHECK(train.class_names == std::vector<std::string>{"a_top", "b_middle", "c_bottom"});
  CHECK(train.classes == 3);
  CHECK(train.count == 18);  // 6 per class; the corrupt PNG left out, the text file ignored
  REQUIRE(skipped.size() == 1);
  CHECK_THAT(skipped[0], StartsWith(dir + "/train/a_top/broken.png: corrupt PNG"));
  CHECK(train.images.size() == size_t(18) * 3 * 16 * 16);
  CHECK(train.labels == std::vector<int32_t>{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2});
  CHECK(train.files[0] == dir + "/train/a_top/0.png");
  CHECK(train.files[1] == dir + "/train/a_top/1.png");
  CHECK(train.files[2] == dir + "/train/a_top/2.jpg");
  CHECK(train.sample_name(3) == dir + "/train/a_top/3.jpg");
  // The band of class 2 is at the bottom: the fitted image is bright there.
  const uint8_t* sample = train.sample(12);
  CHECK(sample[15 * 16 + 8] > 150);
  CHECK(sample[2 * 16 + 8] < 60);

  const Dataset test = load_image_folder(dir, Split::test, {1, 16, 16, false});
  CHECK(test.count == 12);
  CHECK(test.channels == 1);
  CHECK(load_image_folder(dir, Split::val, {1, 16, 16, false}).count == 0);  // no val/

  CHECK_THAT(error_of([&] {
               load_image_folder(dir, Split::train, {3, 16, 16, true});
             }),
             StartsWith(dir + "/train/a_top/broken.png: corrupt PNG"));
  std::filesystem::create_directories(dir + "/test/zebra");
  CHECK_THAT(error_of([&] {
               load_image_folder(dir, Split::test, {3, 16, 16, false});
             }),
             Contains("class folder 'zebra' is not among train/'s classes"));
  const std::string empty = test::temp_dir("folder-empty");
  std::filesystem::create_directories(empty + "/train");
  CHECK_THAT(error_of([&] { load_image_folder(empty, Split::train, {}); }),
             Contains("no class folders"));
  CHECK(first_image_shape(dir).channels == 1);  // train/a_top/0.png: grey, 24x24
  CHECK(first_image_shape(dir).height == 24);
}

TEST_CASE("image folder: the validation part is the tail of each class, not of the folder",
          "[data][folder]") {
  const std::string dir = test::image_folder("folder-split", 5);
  const Dataset train = load_image_folder(dir, Split::train, {1, 8, 8, false});
  const auto [kept, held] = split_validation_by_class(train, 0.4);
  // a_top lost its corrupt file: 5 images, like the others; 3 of each stay, 2 are held out.
  CHECK(kept.labels == std::vector<int32_t>{0, 0, 0, 1, 1, 1, 2, 2, 2});
  CHECK(held.labels == std::vector<int32_t>{0, 0, 1, 1, 2, 2});
  CHECK(held.files[0] == dir + "/train/a_top/3.jpg");
  CHECK(split_validation_by_class(train, 0).second.count == 0);
  CHECK_THROWS_AS(split_validation_by_class(train, 1), Error);
}

TEST_CASE("image folder: a label outside the model's classes names the file", "[data][folder]") {
  const std::string dir = test::image_folder("folder-labels", 2);
  const Dataset train = load_image_folder(dir, Split::train, {3, 16, 16, false});
  CHECK_NOTHROW(check_labels(train, 3));
  CHECK(error_of([&] { check_labels(train, 2); }) ==
        dir + "/train/c_bottom/0.png: label 2 is outside the model's 2 classes (0 to 1)");
}

TEST_CASE("packed: a folder packed and mapped back gives the same samples", "[data][packed]") {
  const std::string dir = test::image_folder("packed-round-trip", 4);
  const DataSource folder(dir, {3, 16, 16, false});
  const Dataset train = folder.load(Split::train), test = folder.load(Split::test);
  const std::string path = dir + "/set.pack";
  write_packed(path, train, Dataset{}, test);
  CHECK(is_packed_file(path));
  CHECK_FALSE(is_packed_file(dir + "/train/a_top/0.png"));

  const DataSource packed(path, {});
  CHECK(packed.format() == DataFormat::packed);
  CHECK_FALSE(packed.has_validation());
  const Dataset mapped = packed.load(Split::train);
  CHECK(mapped.images.empty());
  REQUIRE(mapped.mapped);
  CHECK(mapped.count == train.count);
  CHECK(mapped.labels == train.labels);
  CHECK(mapped.class_names == train.class_names);
  CHECK(mapped.channels == 3);
  for (int i = 0; i < mapped.count; ++i)
    CHECK(std::equal(mapped.sample(i), mapped.sample(i) + mapped.image_size(), train.sample(i)));
  const Dataset mapped_test = packed.load(Split::test);
  CHECK(mapped_test.count == test.count);
  CHECK(std::equal(mapped_test.sample(5), mapped_test.sample(5) + 768, test.sample(5)));
  CHECK(packed.load(Split::val).count == 0);
  // Subsets of a mapped set stay mapped and index the same file.
  const auto [part, rest] = split_validation(mapped, 0.25);
  CHECK(part.mapped);
  CHECK(std::equal(rest.sample(0), rest.sample(0) + 768, train.sample(part.count)));
  CHECK(channel_stats(mapped).size() == 3);
  CHECK(normalization_of(mapped) == normalization_of(train));
}

TEST_CASE("packed: lying headers, damage and bad labels are errors naming the file",
          "[data][packed][robustness]") {
  const std::string dir = test::image_folder("packed-hostile", 2);
  const DataSource folder(dir, {1, 8, 8, false});
  const std::string path = dir + "/set.pack";
  write_packed(path, folder.load(Split::train), Dataset{}, folder.load(Split::test));
  const std::string good = read_all(path);
  const std::string bad = dir + "/bad.pack";
  auto open_error = [&](const std::string& bytes, bool fix_checksum = true) {
    if (fix_checksum)
      write_with_checksum(bad, bytes);
    else
      std::ofstream(bad, std::ios::binary) << bytes;
    return error_of([&] { PackedFile{bad}; });
  };
  auto with_u32 = [&](size_t offset, uint32_t v) {
    std::string b = good;
    for (int i = 0; i < 4; ++i) b[offset + i] = static_cast<char>((v >> (8 * i)) & 0xff);
    return b;
  };
  CHECK(open_error(good) == "no error");
  CHECK_THAT(open_error(good.substr(0, 30), false), Contains("too short"));
  CHECK_THAT(open_error(good.substr(0, good.size() - 1)), Contains("the file has"));
  CHECK_THAT(open_error(good + "x"), Contains("the file has"));
  CHECK_THAT(open_error(with_u32(16, 0)), Contains("outside 1 to"));           // channels 0
  CHECK_THAT(open_error(with_u32(20, 0x7fffffff)), Contains("outside 1 to"));  // huge height
  CHECK_THAT(open_error(with_u32(28, 0)), Contains("0 classes"));
  CHECK_THAT(open_error(with_u32(32, 1000000)), Contains("describes"));     // a lying count
  CHECK_THAT(open_error(with_u32(36, 0xffffffff)), Contains("more than"));  // 2^64 - ... samples
  CHECK_THAT(open_error(with_u32(56, 100000)), Contains("bytes of class names"));
  CHECK_THAT(open_error(with_u32(8, 7)), Contains("version 7"));
  std::string flipped = good;
  flipped[good.size() - 3] ^= 0x40;
  CHECK_THAT(open_error(flipped, false), Contains("checksum mismatch"));
  // A label beyond the file's classes, with a checksum that matches: named by sample.
  const size_t labels_at = 60 + static_cast<uint8_t>(good[56]);  // after the class names
  std::string label = good;
  label[labels_at + 4 * 3] = 9;
  CHECK_THAT(open_error(label), Contains(bad + " train sample 3: label 9 is outside the file's 3 "
                                               "classes (0 to 2)"));
  CHECK_THAT(open_error("PLNTPACK", false), StartsWith(bad + ": "));
  std::ofstream(bad) << "just text";
  CHECK_FALSE(is_packed_file(bad));
  CHECK_THAT(error_of([&] { DataSource(bad, {}); }), Contains("not a packed data set"));
}

// CIFAR-10 records: label c, then 3 planes of 1024 bytes of value c * 20 + plane.
std::string cifar_records(int count, int first_label = 0) {
  std::string bytes;
  for (int i = 0; i < count; ++i) {
    const int label = (first_label + i) % 10;
    bytes.push_back(static_cast<char>(label));
    for (int plane = 0; plane < 3; ++plane) bytes += std::string(1024, char(label * 20 + plane));
  }
  return bytes;
}

TEST_CASE("cifar10: data_batch_* and test_batch read as 3x32x32 in 10 classes", "[data][cifar]") {
  const std::string dir = test::temp_dir("cifar");
  test::write_bytes(dir + "/data_batch_1.bin", cifar_records(7));
  test::write_bytes(dir + "/data_batch_2.bin", cifar_records(5, 7));
  test::write_bytes(dir + "/test_batch.bin", cifar_records(4, 3));
  CHECK(is_cifar10_dir(dir));
  const DataSource source(dir, {});
  CHECK(source.format() == DataFormat::cifar10);
  const Dataset train = source.load(Split::train);
  CHECK(train.count == 12);
  CHECK(train.channels == 3);
  CHECK(train.height == 32);
  CHECK(train.classes == 10);
  CHECK(train.class_names[0] == "airplane");
  CHECK(train.labels[8] == 8);
  CHECK(train.sample(8)[0] == 160);     // red plane of label 8
  CHECK(train.sample(8)[2048] == 162);  // blue plane
  const Dataset test = source.load(Split::test);
  CHECK(test.count == 4);
  CHECK(test.labels[0] == 3);
  CHECK(source.load(Split::val).count == 0);
}

TEST_CASE("cifar10: a file of the wrong size or a bad label is an error naming it",
          "[data][cifar][robustness]") {
  const std::string dir = test::temp_dir("cifar-bad");
  test::write_bytes(dir + "/data_batch_1.bin", cifar_records(3).substr(0, 3 * 3073 - 3));
  CHECK_THAT(error_of([&] { load_cifar10(dir, Split::train); }),
             StartsWith(dir + "/data_batch_1.bin: 9216 bytes is not a whole number of 3073-byte"));
  std::string records = cifar_records(3);
  records[3073] = 10;
  test::write_bytes(dir + "/data_batch_1.bin", records);
  CHECK(error_of([&] { load_cifar10(dir, Split::train); }) ==
        dir + "/data_batch_1.bin: record 1 has label 10, outside CIFAR-10's classes 0 to 9");
  test::write_bytes(dir + "/data_batch_1.bin", "");
  CHECK_THAT(error_of([&] { load_cifar10(dir, Split::train); }), Contains("0 bytes"));
  CHECK_THAT(error_of([&] { load_cifar10(dir, Split::test); }),
             StartsWith(dir + "/test_batch.bin: "));
  test::write_bytes(dir + "/batches.meta.txt", "cat\ndog\n");
  CHECK_THAT(error_of([&] { load_cifar10(dir, Split::train); }),
             Contains("expected 10 class names"));
}

// The weights after training `model` on `train` with data_memory `limit`.
std::vector<float> trained_weights(const Model& model, const Dataset& train, int64_t limit) {
  DeviceChoice device = open_device("cpu", 2, {});
  Parameters params(model, *device.backend);
  params.initialize(3);
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 4;
  options.data_memory = limit;
  Trainer trainer(model, *device.backend, params, options);
  trainer.set_normalization(normalization_of(train));
  trainer.fit(train, Dataset{});
  return params.download(params.values());
}

TEST_CASE("streaming: a data set larger than its memory trains exactly as a resident one",
          "[data][packed][training]") {
  const std::string dir = test::image_folder("streaming", 6);
  const Model model = load_model(test::tiny_rgb_cnn_file(dir));
  const DataSource folder(dir, {3, 16, 16, false});
  const Dataset train = folder.load(Split::train);
  write_packed(dir + "/set.pack", train, Dataset{}, folder.load(Split::test));
  const Dataset mapped = DataSource(dir + "/set.pack", {}).load(Split::train);
  const std::vector<float> resident = trained_weights(model, train, int64_t{1} << 30);
  // 1 byte: one batch a chunk; 3 batches' worth: chunks that end inside the epoch.
  CHECK(trained_weights(model, train, 1) == resident);
  CHECK(trained_weights(model, mapped, 3 * 4 * 768) == resident);
  CHECK(trained_weights(model, mapped, int64_t{1} << 30) == resident);

  DeviceChoice device = open_device("cpu", 1, {});
  CHECK(DeviceDataset(*device.backend, mapped, 4, 1).streamed());
  CHECK_FALSE(DeviceDataset(*device.backend, mapped, 4, mapped.pixel_bytes()).streamed());
}

}  // namespace
}  // namespace plinth
