// Every trainable tensor of a model in one flat device arena (values, gradients and the
// optimizer's two moment buffers, each the same layout), so that one optimizer call can
// update a whole group of layers and checkpoints are one download. The layers' buffers
// (BatchNorm's running statistics: no gradient, no optimizer state) have an arena of their
// own beside it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/tensor.h"

namespace plinth {

struct ParamEntry {
  std::string name;  // "<layer>.<weight|bias>", PyTorch's name
  int node = 0;      // index of the layer in Model::nodes
  Shape shape;
  size_t offset = 0;  // in floats, into every arena
  float init_limit = 0;
  float init_value = 0;  // the start of every value when init_limit is 0
};

struct BufferEntry {
  std::string name;  // "<layer>.<suffix>", PyTorch's name ("bn1.running_mean")
  int node = 0;
  Shape shape;
  BufferSpec::Type type = BufferSpec::Type::f32;
  size_t offset = 0;  // in bytes, into the buffer arena; a multiple of 64
  float init = 0;
  size_t element_bytes() const { return type == BufferSpec::Type::i64 ? 8 : 4; }
  size_t bytes() const { return shape.numel() * element_bytes(); }
};

class Parameters {
 public:
  Parameters(const Model& model, Backend& backend);

  const std::vector<ParamEntry>& entries() const { return entries_; }
  const ParamEntry* find(const std::string& name) const;
  size_t size() const { return size_; }  // floats per arena, including alignment padding
  size_t count() const;                  // trainable values

  float* values() const { return values_.as<float>(); }
  float* grads() const { return grads_.as<float>(); }
  float* moment1() const { return m_.as<float>(); }
  float* moment2() const { return v_.as<float>(); }
  int64_t* step() const { return step_.as<int64_t>(); }  // device optimizer step counter

  const std::vector<BufferEntry>& buffer_entries() const { return buffer_entries_; }
  const BufferEntry* find_buffer(const std::string& name) const;
  // The buffer arena, buffer_bytes() long; a buffer's view (an i64 buffer's data points to
  // int64_t).
  std::byte* buffers() const { return buffers_.as<std::byte>(); }
  size_t buffer_bytes() const { return buffer_bytes_; }
  Tensor buffer(const BufferEntry& e) const;

  // Glorot-uniform weights, zero biases (Keras' defaults) or a layer's constant, from a
  // counter-based generator keyed by the seed and the parameter's name: the same seed gives
  // the same weights on every device and thread count, whatever the other layers are.
  // Buffers get their starting values. `only` (names) limits it to those tensors.
  void initialize(uint64_t seed, const std::vector<std::string>& only = {});
  // Host copies of one arena, laid out as entries() says.
  std::vector<float> download(const float* arena) const;
  void upload(float* arena, const std::vector<float>& host) const;
  // Host copies of the buffer arena, laid out as buffer_entries() says.
  std::vector<std::byte> download_buffers() const;
  void upload_buffers(const std::vector<std::byte>& host) const;
  int64_t download_step() const;
  void upload_step(int64_t step) const;
  void zero_optimizer_state();

 private:
  Backend& backend_;
  std::vector<ParamEntry> entries_;
  std::vector<BufferEntry> buffer_entries_;
  size_t size_ = 0, buffer_bytes_ = 0;
  DeviceBuffer values_, grads_, m_, v_, step_, buffers_;
};

uint64_t hash_name(const std::string& s);

}  // namespace plinth
