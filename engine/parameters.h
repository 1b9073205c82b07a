// Every trainable tensor of a model in one flat device arena (values, gradients and the
// optimizer's two moment buffers, each the same layout), so that one optimizer call can
// update a whole group of layers and checkpoints are one download.
#pragma once

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

  // Glorot-uniform weights and zero biases (Keras' defaults) from a counter-based
  // generator keyed by the seed and the parameter's name: the same seed gives the same
  // weights on every device and thread count, whatever the other layers are.
  void initialize(uint64_t seed, const std::vector<std::string>& only = {});
  // Host copies of one arena, laid out as entries() says.
  std::vector<float> download(const float* arena) const;
  void upload(float* arena, const std::vector<float>& host) const;
  int64_t download_step() const;
  void upload_step(int64_t step) const;
  void zero_optimizer_state();

 private:
  Backend& backend_;
  std::vector<ParamEntry> entries_;
  size_t size_ = 0;
  DeviceBuffer values_, grads_, m_, v_, step_;
};

uint64_t hash_name(const std::string& s);

}  // namespace plinth
