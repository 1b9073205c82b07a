// One interface for every layer. A layer is device-agnostic: it computes shapes, declares
// its parameters and calls Backend ops. The executor owns all memory and hands each call
// views into it (LayerIO), so layers hold no buffers of their own.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/tensor.h"

namespace plinth {

struct ParamSpec {
  std::string suffix;  // "weight" or "bias": the full name is "<layer>.<suffix>" as in PyTorch
  Shape shape;
  float init_limit;  // Glorot-uniform limit sqrt(6 / (fan_in + fan_out)); 0 means zeros
};

struct LayerIO {
  Backend& backend;
  Tensor x, y;    // input and output activations
  Tensor dx, dy;  // their gradients; dx.data is null when no one needs it
  std::span<const Tensor> params, grads;  // in param_specs() order; grads empty when frozen
  void* scratch = nullptr;  // scratch_bytes() of layer-private memory (argmax, masks)
  bool training = false;
  uint64_t seed = 0;              // per-layer seed for dropout
  const int64_t* step = nullptr;  // device step counter
};

class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;

  const std::string& name() const { return name_; }
  virtual std::string type() const = 0;
  virtual nlohmann::json to_json() const = 0;

  // Shapes include the batch dimension. Throws plinth::Error for an input it cannot take.
  virtual Shape output_shape(const Shape& input) const = 0;
  virtual std::vector<ParamSpec> param_specs(const Shape& input) const { return {}; }
  virtual size_t scratch_bytes(const Shape& input) const { return 0; }
  // Called once when the executor is built for a batch shape.
  virtual void prepare(Backend& backend, const Shape& input) {}

  virtual void forward(LayerIO& io) = 0;
  // Computes io.dx (if non-null) and io.grads (if present) from io.dy. May overwrite dy.
  virtual void backward(LayerIO& io) = 0;
  // True when the layer's declared activation is softmax: its output is then logits and
  // the softmax is fused into the categorical cross-entropy loss (or applied at predict).
  virtual bool softmax_output() const { return false; }
  // True for layers that only reinterpret the shape (flatten): the executor lets the
  // output and its gradient share the input's memory, so they cost no copy.
  virtual bool reshape_only() const { return false; }

 private:
  std::string name_;
};

// Builds a layer from its JSON description; `where` names the file and position for errors.
std::unique_ptr<Layer> layer_from_json(const nlohmann::json& j, const std::string& where,
                                       const std::string& default_name);

Activation parse_activation(const std::string& name, const std::string& where);
const char* activation_name(Activation act);

}  // namespace plinth
