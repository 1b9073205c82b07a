// One interface for every layer. A layer is device-agnostic: it computes shapes, declares
// its parameters and calls Backend ops. The executor owns all memory and hands each call
// views into it (LayerIO), so layers hold no buffers of their own.
//
// Each layer type is described once, by its LayerType (engine/layers/<type>.cpp): the
// model-file reader, Sequential's automatic names, `plinth layers` (the docs' table and
// the catalogue scripts/pytorch_interop.py reads) and the tests all take it from there.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/tensor.h"

namespace plinth {

class JsonFields;

struct ParamSpec {
  std::string suffix;  // "weight" or "bias": the full name is "<layer>.<suffix>" as in PyTorch
  Shape shape;
  float init_limit;  // Glorot-uniform limit sqrt(6 / (fan_in + fan_out)); 0 means zeros
};

struct LayerIO {
  Backend& backend;
  Tensor x, y;                            // input and output activations
  Tensor dx, dy;                          // their gradients; dx.data is null when no one needs it
  std::span<const Tensor> params, grads;  // in param_specs() order; grads empty when frozen
  void* scratch = nullptr;                // scratch_bytes() of layer-private memory (argmax, masks)
  bool training = false;
  uint64_t seed = 0;              // per-layer seed for dropout
  const int64_t* step = nullptr;  // device step counter
  // Backward fusion, which the executor sets up when a layer that takes its input's ReLU
  // backward (a max pool) alone consumes the output of a layer ending in a ReLU: the first
  // also computes that ReLU's backward and the second's bias gradient (maxpool_relu_backward),
  // and the second's backward skips both. The defaults fuse nothing.
  bool input_relu_backward = false;       // apply the input's ReLU backward,
  float* input_bias_grad = nullptr;       // and the bias gradient of its layer (may be null)
  bool activation_backward_done = false;  // dy already has this layer's ReLU backward and
                                          // its bias gradient is computed
};

// How PyTorch computes a layer: `torch.nn.<module>(*args, **kwargs)` (whose parameters
// have the layer's ParamSpec suffixes), then `torch.nn.<activation>()`. An empty module or
// activation is the identity. Every member has an initialiser, so a layer names only the
// ones it needs ({.activation = "ReLU"}).
struct TorchModule {
  std::string module{};
  nlohmann::json args = nlohmann::json::array();
  nlohmann::json kwargs = nlohmann::json::object();
  std::string activation{};
};

// How ONNX (opset 17) computes a layer: one operator node, e.g. {"Conv", {x, "conv1.weight",
// "conv1.bias"}, {y}, {{"kernel_shape", {3, 3}}}}. Inputs and outputs are tensor names;
// parameters go by their checkpoint names ("<layer>.weight"). Attribute values are an
// integer, a float, a string or a list of integers.
struct OnnxNode {
  std::string op_type;
  std::vector<std::string> inputs, outputs;
  nlohmann::json attributes = nlohmann::json::object();
};

class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;

  const std::string& name() const { return name_; }
  virtual std::string type() const = 0;
  // The layer's model-file object: "type", "name" and every field of its LayerType.
  virtual nlohmann::json to_json() const = 0;

  // Shapes include the batch dimension. Throws plinth::Error for an input it cannot take.
  virtual Shape output_shape(const Shape& input) const = 0;
  virtual std::vector<ParamSpec> param_specs(const Shape& input) const { return {}; }
  virtual size_t scratch_bytes(const Shape& input) const { return 0; }
  // The PyTorch equivalent for this input shape; a softmax output layer describes its
  // logits (softmax_output() says the softmax follows).
  virtual TorchModule torch_module(const Shape& input) const = 0;
  // The ONNX nodes that compute this layer from the tensor named x into the one named y
  // (further tensors are named "<layer>.<what>"); like torch_module, a softmax output layer
  // describes its logits. plinth export writes them (cli/onnx_export.cpp).
  virtual std::vector<OnnxNode> onnx_nodes(const Shape& input, const std::string& x,
                                           const std::string& y) const = 0;
  // Called once when the executor is built for a batch shape.
  virtual void prepare(Backend& backend, const Shape& input) {}

  virtual void forward(LayerIO& io) = 0;
  // Computes io.dx (if non-null) and io.grads (if present) from io.dy, overwriting them.
  // May overwrite dy.
  virtual void backward(LayerIO& io) = 0;
  // True when the layer's declared activation is softmax: its output is then logits and
  // the softmax is fused into the categorical cross-entropy loss (or applied at predict).
  virtual bool softmax_output() const { return false; }
  // True for layers that only reinterpret the shape (flatten): the executor lets the
  // output and its gradient share the input's memory, so they cost no copy.
  virtual bool reshape_only() const { return false; }
  // Backward fusion (see LayerIO): the layer's output is a ReLU's (its bias, if any, being
  // its parameter "bias"), and its backward honours activation_backward_done.
  virtual bool relu_output() const { return false; }
  // The layer's backward can take its input's ReLU backward (see LayerIO).
  virtual bool takes_input_relu_backward() const { return false; }

 private:
  std::string name_;
};

// One field of a layer type's model-file object, as the docs list it.
struct LayerField {
  std::string name;
  std::string default_value;  // as the docs show it ("1", "\"valid\"", "= size"); "": required
  std::string doc;            // one line
  // A valid value other than the default, which to_json() gives back unchanged: the
  // catalogue shows it and the tests build every type from it.
  nlohmann::json example;
};

using LayerFactory = std::unique_ptr<Layer> (*)(const JsonFields& fields, const std::string& name);

// Everything plinth knows about a layer type besides its code.
struct LayerType {
  std::string name;     // the model file's "type"
  std::string summary;  // one line for the docs
  // Sequential names the k-th layer of this type <name_prefix>k (conv1, fc2, ...); with
  // bare_first the first is just <name_prefix> (flatten, then flatten2).
  std::string name_prefix;
  bool bare_first = false;
  std::vector<LayerField> fields{};  // besides "type", "name" and "input", which every layer has
  // Reads the fields; layer_from_json has already refused any field not listed.
  LayerFactory make;
};

// The built-in types in the docs' order (engine/layers/layer_registry.cpp lists them).
const std::vector<const LayerType*>& layer_types();
const LayerType* find_layer_type(const std::string& type);  // null if there is none
// The catalogue `plinth layers --json` prints: every type with its fields.
nlohmann::json layer_catalog();

// Builds a layer from its JSON description; `where` names the file and position for errors.
std::unique_ptr<Layer> layer_from_json(const nlohmann::json& j, const std::string& where,
                                       const std::string& default_name);

Activation parse_activation(const std::string& name, const std::string& where);
const char* activation_name(Activation act);
const char* torch_activation(Activation act);  // torch.nn's class ("ReLU"); "" for none
// `core` writing y, followed by act's ONNX node when there is one (core then writes
// "<layer>.linear").
std::vector<OnnxNode> with_onnx_activation(OnnxNode core, Activation act, const std::string& layer,
                                           const std::string& y);

}  // namespace plinth
