// CPU batch assembly and augmentation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu_fallback/data.h"
#include "engine/augment_math.h"
#include "tests/gradcheck.h"

namespace plinth {
namespace {

TEST_CASE("cpu gather_batch: scales, normalises and gathers labels", "[cpu]") {
  const int sample = 3;  // four images of three pixels
  const std::vector<uint8_t> images = {0, 255, 51, 1, 2, 3, 10, 20, 30, 255, 0, 102};
  const std::vector<int32_t> labels = {7, 8, 9, 6};
  const std::vector<int32_t> indices = {3, 0, 3};
  const float mean = 0.5f, std = 0.25f;
  std::vector<double> out(3 * sample, -1.0);
  std::vector<int32_t> labels_out(3, -1);
  cpu::gather_batch(1, images.data(), labels.data(), indices.data(), nullptr, 3, 1, sample, &mean,
                    &std, out.data(), labels_out.data());
  const std::vector<double> expected = {2, -2, -0.4, -2, 2, -1.2, 2, -2, -0.4};
  for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == Approx(expected[i]).epsilon(1e-15));
  CHECK(labels_out == std::vector<int32_t>{6, 7, 6});

  // labels may be null
  std::vector<float> outf(sample);
  const float zero = 0.0f, one = 1.0f;
  cpu::gather_batch<float>(1, images.data(), nullptr, indices.data(), nullptr, 1, 1, sample, &zero,
                           &one, outf.data(), nullptr);
  CHECK(outf == std::vector<float>{1.0f, 0.0f, 0.4f});

  // batch_index 2 with batches of one reads indices[2]
  const int64_t batch_index = 2;
  cpu::gather_batch<float>(1, images.data(), labels.data(), indices.data(), &batch_index, 1, 1,
                           sample, &zero, &one, outf.data(), labels_out.data());
  CHECK(outf == std::vector<float>{1.0f, 0.0f, 0.4f});
  CHECK(labels_out[0] == 6);
}

TEST_CASE("cpu gather_batch and augment: a batch index reads that batch of the order", "[cpu]") {
  const int count = 6, sample = 4, batch = 2;
  std::vector<uint8_t> images(size_t(count) * sample);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>(i * 10);
  const std::vector<int32_t> labels = {0, 1, 2, 3, 4, 5};
  const std::vector<int32_t> order = {5, 1, 0, 4, 3, 2};
  const float mean = 0.1f, std = 0.5f;
  for (int64_t b = 0; b < 3; ++b) {
    std::vector<float> via_index(size_t(batch) * sample), direct(via_index.size());
    std::vector<int32_t> labels_via_index(batch), labels_direct(batch);
    cpu::gather_batch<float>(2, images.data(), labels.data(), order.data(), &b, batch, 1, sample,
                             &mean, &std, via_index.data(), labels_via_index.data());
    cpu::gather_batch<float>(2, images.data(), labels.data(), order.data() + b * batch, nullptr,
                             batch, 1, sample, &mean, &std, direct.data(), labels_direct.data());
    CHECK(via_index == direct);
    CHECK(labels_via_index == labels_direct);
    CHECK(labels_direct == std::vector<int32_t>{order[b * batch], order[b * batch + 1]});

    const AugmentSpec spec{.max_shift = 1.0f, .max_rotate = 20.0f};
    std::vector<float> aug_index(via_index.size()), aug_direct(via_index.size());
    cpu::augment(2, spec, via_index.data(), aug_index.data(), batch, 1, 2, 2, order.data(), &b, 3);
    cpu::augment(2, spec, via_index.data(), aug_direct.data(), batch, 1, 2, 2,
                 order.data() + b * batch, nullptr, 3);
    CHECK(aug_index == aug_direct);
  }
}

TEST_CASE("cpu gather_batch: each channel has its own mean and std", "[cpu]") {
  // One sample of three channels of two pixels each.
  const std::vector<uint8_t> images = {0, 255, 51, 102, 255, 0};
  const std::vector<int32_t> indices = {0};
  const float mean[3] = {0.0f, 0.2f, 0.5f}, std[3] = {1.0f, 0.2f, 0.5f};
  std::vector<double> out(6);
  cpu::gather_batch(1, images.data(), nullptr, indices.data(), nullptr, 1, 3, 2, mean, std,
                    out.data(), nullptr);
  const std::vector<double> expected = {0, 1, 0, 1, 1, -1};
  for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == Approx(expected[i]).margin(1e-6));
}

TEST_CASE("cpu gather_batch: threaded path matches", "[cpu]") {
  const int count = 50, sample = 784, batch = 40;
  std::vector<uint8_t> images(size_t(count) * sample);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>(i * 31 % 256);
  std::vector<int32_t> indices(batch);
  for (int b = 0; b < batch; ++b) indices[b] = (b * 17) % count;
  std::vector<float> one(size_t(batch) * sample), two(one.size());
  const float mean = 0.2f, std = 0.3f;
  cpu::gather_batch<float>(1, images.data(), nullptr, indices.data(), nullptr, batch, 1, sample,
                           &mean, &std, one.data(), nullptr);
  cpu::gather_batch<float>(2, images.data(), nullptr, indices.data(), nullptr, batch, 1, sample,
                           &mean, &std, two.data(), nullptr);
  CHECK(one == two);
  CHECK(one[5 * sample + 9] == (images[size_t(indices[5]) * sample + 9] / 255.0f - 0.2f) / 0.3f);
}

struct Images {
  int n, c, h, w;
  std::vector<float> data;
  float at(int i, int ch, int y, int x) const {
    return data[((size_t(i) * c + ch) * h + y) * w + x];
  }
};

Images random_images(int n, int c, int h, int w) {
  const std::vector<double> v = test::random_values(size_t(n) * c * h * w, 93, 0, 1);
  return {n, c, h, w, std::vector<float>(v.begin(), v.end())};
}

std::vector<int32_t> sample_ids(int n) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = 1000 + 3 * i;
  return ids;
}

TEST_CASE("cpu augment: the identity spec leaves images unchanged", "[cpu]") {
  const Images in = random_images(3, 2, 5, 6);
  std::vector<float> out(in.data.size());
  cpu::augment(2, AugmentSpec{}, in.data.data(), out.data(), 3, 2, 5, 6, sample_ids(3).data(),
               nullptr, 9);
  CHECK(out == in.data);
}

TEST_CASE("cpu augment: an integer shift moves the image exactly", "[cpu]") {
  const Images in = random_images(1, 1, 5, 6);
  // shift by (+2, -1) pixels, no rotation or scale
  const InverseAffine t{1, 0, 0, 1, 0.5f * (6 - 1), 0.5f * (5 - 1), 2, -1};
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 6; ++x) {
      const int sx = x - 2, sy = y + 1;
      const float expected = (sx >= 0 && sx < 6 && sy >= 0 && sy < 5) ? in.at(0, 0, sy, sx) : 0.0f;
      CHECK(augment_pixel(t, in.data.data(), 5, 6, x, y) == expected);
    }
}

TEST_CASE("cpu augment: cutout zeroes a square, contrast and brightness scale and shift", "[cpu]") {
  const Images in = random_images(1, 1, 5, 6);
  InverseAffine t{1, 0, 0, 1, 0.5f * (6 - 1), 0.5f * (5 - 1), 0, 0};
  t.gain = 1.5f;
  t.offset = -0.25f;
  t.cut_x = 4;  // hangs over the right edge: columns 4 and 5 of rows 1..3
  t.cut_y = 1;
  t.cut_size = 3;
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 6; ++x) {
      const bool cut = x >= 4 && y >= 1 && y <= 3;
      CHECK(augment_pixel(t, in.data.data(), 5, 6, x, y) ==
            (cut ? 0.0f : in.at(0, 0, y, x) * 1.5f - 0.25f));
    }
  // Drawn per sample: a cutout of side 3 zeroes 9 pixels of a 28x28 image when the square
  // lies inside (or fewer at an edge), and the affine draws are unchanged by it.
  AugmentSpec strong;
  strong.cutout = 3;
  const InverseAffine drawn = augment_transform(strong, 5, 17, 28, 28);
  CHECK(drawn.cut_size == 3);
  CHECK((drawn.gain == 1.0f && drawn.offset == 0.0f));
  AugmentSpec shift{.max_shift = 2};
  AugmentSpec shift_cut = shift;
  shift_cut.cutout = 5;
  CHECK(augment_transform(shift, 5, 17, 28, 28).tx ==
        augment_transform(shift_cut, 5, 17, 28, 28).tx);
}

TEST_CASE("cpu augment: random shifts are bilinear translations", "[cpu]") {
  const int n = 4, c = 2, h = 7, w = 9;
  const Images in = random_images(n, c, h, w);
  const std::vector<int32_t> ids = sample_ids(n);
  const AugmentSpec spec{.max_shift = 2.5f};
  std::vector<float> out(in.data.size());
  cpu::augment(2, spec, in.data.data(), out.data(), n, c, h, w, ids.data(), nullptr, 5);
  auto pixel = [&](int i, int ch, int y, int x) {
    return (x >= 0 && x < w && y >= 0 && y < h) ? double(in.at(i, ch, y, x)) : 0.0;
  };
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    const InverseAffine t = augment_transform(spec, 5, ids[i], h, w);
    for (int ch = 0; ch < c; ++ch)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const double sx = x - t.tx, sy = y - t.ty;
          const double fx = std::floor(sx), fy = std::floor(sy), ax = sx - fx, ay = sy - fy;
          const int x0 = int(fx), y0 = int(fy);
          const double expected =
              (1 - ay) * ((1 - ax) * pixel(i, ch, y0, x0) + ax * pixel(i, ch, y0, x0 + 1)) +
              ay * ((1 - ax) * pixel(i, ch, y0 + 1, x0) + ax * pixel(i, ch, y0 + 1, x0 + 1));
          worst = std::max(worst, std::abs(out[((size_t(i) * c + ch) * h + y) * w + x] - expected));
        }
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("cpu augment: a flipped sample is the exact mirror image", "[cpu]") {
  const int n = 32, c = 2, h = 4, w = 5;
  const Images in = random_images(n, c, h, w);
  const std::vector<int32_t> ids = sample_ids(n);
  const AugmentSpec spec{.horizontal_flip = true};
  std::vector<float> out(in.data.size());
  cpu::augment(2, spec, in.data.data(), out.data(), n, c, h, w, ids.data(), nullptr, 11);
  int flipped = 0;
  for (int i = 0; i < n; ++i) {
    const bool flip = augment_transform(spec, 11, ids[i], h, w).a < 0;
    flipped += flip;
    int wrong = 0;
    for (int ch = 0; ch < c; ++ch)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          wrong +=
              out[((size_t(i) * c + ch) * h + y) * w + x] != in.at(i, ch, y, flip ? w - 1 - x : x);
    CAPTURE(i, flip);
    CHECK(wrong == 0);
  }
  CHECK(flipped > 0);
  CHECK(flipped < n);
}

TEST_CASE("cpu augment: each sample uses its own transform on every channel", "[cpu]") {
  const int n = 3, c = 2, h = 6, w = 8;
  const Images in = random_images(n, c, h, w);
  const std::vector<int32_t> ids = sample_ids(n);
  const AugmentSpec spec{
      .max_shift = 1.5f, .max_rotate = 20, .max_scale = 0.1f, .horizontal_flip = true};
  std::vector<float> out(in.data.size());
  cpu::augment(2, spec, in.data.data(), out.data(), n, c, h, w, ids.data(), nullptr, 13);
  // Not bitwise: the library and the tests may be compiled with different FMA contraction.
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    const InverseAffine t = augment_transform(spec, 13, ids[i], h, w);
    for (int ch = 0; ch < c; ++ch) {
      const float* plane = in.data.data() + (size_t(i) * c + ch) * h * w;
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          worst = std::max(worst, double(std::abs(out[((size_t(i) * c + ch) * h + y) * w + x] -
                                                  augment_pixel(t, plane, h, w, x, y))));
    }
  }
  CHECK(worst < 1e-5);
  CHECK(out != in.data);
}

}  // namespace
}  // namespace plinth
