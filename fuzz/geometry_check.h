// What fuzz_geometry checks, shared with the test that replays its corpus. The input's
// bytes are read as the numbers of a convolution and a pooling layer: once as the shape
// structs both backends use (check_conv_shape, check_pool_shape), once as a model file
// (conv2d, maxpool2d, flatten, dense). Whatever is accepted must be runnable: every
// window fits its (padded) input, every output has at least one element, no sample holds
// more than 2^31 - 1 values, and the shapes of any batch agree with batch 1's. Refusing
// is fine; accepting what breaks these, or failing otherwise than by plinth::Error, is a bug.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/model.h"
#include "engine/op_shapes.h"

namespace plinth::fuzz {

inline void require(bool ok, const char* what) {
  if (!ok) throw std::logic_error(what);
}

// Reads the input as little-endian int32s (zero past its end).
class Numbers {
 public:
  Numbers(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  int next() {
    uint8_t bytes[4] = {};
    for (uint8_t& b : bytes) b = at_ < size_ ? data_[at_++] : 0;
    int32_t v;
    std::memcpy(&v, bytes, 4);
    return v;
  }
  // Small numbers more often: the top byte picks how many bits survive.
  int small() {
    const int v = next();
    const int bits = static_cast<uint8_t>(v >> 24) % 32;
    return bits == 31 ? v : v & ((1 << bits) - 1);
  }

 private:
  const uint8_t* data_;
  size_t size_, at_ = 0;
};

inline void check_structs(Numbers& in) {
  ConvShape c{in.small(), in.small(), in.small(), in.small(), in.small(),
              in.small(), in.small(), in.small(), in.small()};
  try {
    check_conv_shape(c, "fuzz");
    require(c.r <= c.h + 2 * int64_t{c.pad} && c.s <= c.w + 2 * int64_t{c.pad}, "kernel too big");
    require(c.out_h() >= 1 && c.out_w() >= 1, "no output");
    require(c.output_elements() / c.n <= INT32_MAX && c.weight_elements() <= INT32_MAX,
            "conv sample over 2^31 - 1 elements");
  } catch (const Error&) {
  }
  PoolShape p{in.small(), in.small(), in.small(), in.small(), in.small(), in.small()};
  try {
    check_pool_shape(p, "fuzz");
    require(p.size <= p.h && p.size <= p.w, "window too big");
    require(p.out_h() >= 1 && p.out_w() >= 1, "no pooled output");
    require(p.input_elements() / p.n <= INT32_MAX, "pool sample over 2^31 - 1 elements");
  } catch (const Error&) {
  }
}

inline void check_model(Numbers& in) {
  const nlohmann::json file{
      {"input", {in.small(), in.small(), in.small()}},
      {"layers",
       {{{"type", "conv2d"},
         {"filters", in.small()},
         {"kernel", in.small()},
         {"stride", in.small()},
         {"padding", in.small()}},
        {{"type", "maxpool2d"}, {"size", in.small()}, {"stride", in.small()}},
        {{"type", "flatten"}},
        {{"type", "dense"}, {"units", 1 + (in.small() & 15)}, {"activation", "softmax"}}}}};
  const int batch = 1 + (in.small() & 1023);
  Model m;
  try {
    m = parse_model(file, "fuzz.json");
  } catch (const Error&) {
    return;
  }
  const std::vector<NodeShapes> one = m.shapes(1), many = m.shapes(batch);
  for (size_t i = 0; i < one.size(); ++i) {
    for (const Shape* s : {&one[i].input, &one[i].output}) {
      for (int d = 0; d < s->rank; ++d) require(s->dims[d] >= 1, "a dimension below 1");
      require(s->per_sample() <= INT32_MAX, "a sample over 2^31 - 1 values");
    }
    require(many[i].output.dims[0] == batch, "the batch dimension is lost");
    require(many[i].output.per_sample() == one[i].output.per_sample(), "shapes vary with batch");
  }
  (void)m.parameter_count();
}

inline void check_geometry(const uint8_t* data, size_t size) {
  Numbers in(data, size);
  check_structs(in);
  check_model(in);
}

}  // namespace plinth::fuzz
