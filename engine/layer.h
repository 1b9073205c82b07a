// One interface for every layer. A layer is device-agnostic: it computes shapes, declares
// its parameters and calls Backend ops. The executor owns all memory and hands each call
// views into it (LayerIO), so layers hold no buffers of their own.
//
// Each layer type is described once, by its LayerType (engine/layers/<type>.cpp): the
// model-file reader, Sequential's automatic names, `plinth layers` (the docs' table and
// the catalogue scripts/pytorch_interop.py reads) and the tests all take it from there.
#pragma once

#include <memory>
#include <optional>
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
  float init_limit;      // Glorot-uniform limit sqrt(6 / (fan_in + fan_out)); 0: init_value
  float init_value = 0;  // every value's start when init_limit is 0 (BatchNorm's weight: 1)
};

// A layer's state that is not trained (BatchNorm's running statistics): no gradient and no
// optimizer state, but saved in checkpoints as "<layer>.<suffix>", as PyTorch saves a
// module's buffers, and loaded and reset with the layer's parameters.
struct BufferSpec {
  enum class Type { f32, i64 };
  std::string suffix;
  Shape shape;  // rank 0 for a scalar (PyTorch's shape [])
  Type type = Type::f32;
  float init = 0;  // every element's starting value
};

// A layer's input shapes, batch dimension first, one per input in the order the model file
// names them (LayerType says how many a type takes).
using InputShapes = std::span<const Shape>;
// The names of a layer's input tensors in an ONNX graph, in the same order.
using OnnxNames = std::span<const std::string>;

// The max pool a convolution's forward computes under forward fusion (LayerIO): its shape,
// output and argmax (its scratch).
// In training, where the pool also takes the convolution's ReLU backward, the convolution's
// backward does the pool's too (conv2d_maxpool_relu_backward) from the pool's output gradient.
struct PooledOutput {
  PoolShape shape;
  float* y = nullptr;
  int32_t* argmax = nullptr;
  const float* dy = nullptr;  // the pool's output gradient, when its backward is fused as well
};

struct LayerIO {
  Backend& backend;
  std::span<const Tensor> xs;   // the input activations
  Tensor y;                     // the output activation
  std::span<const Tensor> dxs;  // the inputs' gradients; an entry's data is null if none is needed
  Tensor dy;                    // the output's gradient
  std::span<const Tensor> params, grads;  // in param_specs() order; grads empty when frozen
  // In buffer_specs() order; an i64 buffer's data points to int64_t (8-byte aligned).
  std::span<const Tensor> buffers;
  void* scratch = nullptr;  // scratch_bytes() of layer-private memory (argmax, masks)
  bool training = false;    // a training step's forward and backward passes
  bool frozen = false;  // --freeze: no grads, and statistics (BatchNorm's) are used, not updated
  uint64_t seed = 0;    // per-layer seed for dropout
  const int64_t* step = nullptr;  // device step counter

  // Backward fusion, which the executor sets up when a layer that takes its input's ReLU
  // backward (a max pool) is the only consumer of the output of a layer ending in a ReLU:
  // the first also computes that ReLU's backward and the second's bias gradient
  // (maxpool_relu_backward), and the second's backward skips both. The defaults fuse nothing.
  bool input_relu_backward = false;       // apply the input's ReLU backward,
  float* input_bias_grad = nullptr;       // and the bias gradient of its layer (may be null)
  bool activation_backward_done = false;  // dy already has this layer's ReLU backward and
                                          // its bias gradient is computed

  // Forward fusion, which the executor sets up when a max pool is the only consumer of a
  // convolution's output and nothing else reads that output (in training, the pool takes the
  // convolution's ReLU backward, above, or the convolution needs no gradient): the
  // convolution's forward also computes the pool's output and argmax (conv2d_maxpool_forward),
  // leaving its own output unspecified, and the pool's forward does nothing.
  const PooledOutput* pool_output = nullptr;  // where the convolution writes the pool's output
  bool forward_done = false;                  // the pool: its producer computed its output
  bool backward_done = false;                 // the pool: its producer computes its backward

  // The first input and its gradient: all that a layer with one input has.
  const Tensor& x() const { return xs[0]; }
  const Tensor& dx() const { return dxs[0]; }
};

// How PyTorch computes a layer: the inputs combined by `merge` (layers with several
// inputs: "sum", x0 + x1 + ... in order, or "cat", torch.cat(inputs, dim=1)), then
// `torch.nn.<module>(*args, **kwargs)` (whose parameters and buffers have the layer's
// ParamSpec and BufferSpec suffixes), then `torch.nn.<activation>()` (an activation, or
// Flatten). An empty merge, module or activation is the identity. Every member has an
// initialiser, so a layer names only the ones it needs ({.activation = "ReLU"}).
struct TorchModule {
  std::string module{};
  nlohmann::json args = nlohmann::json::array();
  nlohmann::json kwargs = nlohmann::json::object();
  std::string activation{};
  std::string merge{};
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

  // Throws plinth::Error naming the layer for inputs it cannot take.
  virtual Shape output_shape(InputShapes inputs) const = 0;
  virtual std::vector<ParamSpec> param_specs(InputShapes inputs) const { return {}; }
  virtual std::vector<BufferSpec> buffer_specs(InputShapes inputs) const { return {}; }
  virtual size_t scratch_bytes(InputShapes inputs) const { return 0; }
  // The PyTorch equivalent for these inputs; a softmax output layer describes its logits
  // (softmax_output() says the softmax follows).
  virtual TorchModule torch_module(InputShapes inputs) const = 0;
  // The ONNX nodes that compute this layer from the tensors named xs (one per input, in
  // order) into the one named y (further tensors are named "<layer>.<what>"); like
  // torch_module, a softmax output layer describes its logits. plinth export writes them
  // (cli/onnx_export.cpp).
  virtual std::vector<OnnxNode> onnx_nodes(InputShapes inputs, OnnxNames xs,
                                           const std::string& y) const = 0;
  // Called once when the executor is built for a batch shape.
  virtual void prepare(Backend& backend, InputShapes inputs) {}

  virtual void forward(LayerIO& io) = 0;
  // Computes every io.dxs entry whose data is non-null and io.grads (if present) from
  // io.dy, overwriting them. May overwrite dy.
  virtual void backward(LayerIO& io) = 0;
  // True when the layer's declared activation is softmax: its output is then logits and
  // the softmax is fused into the categorical cross-entropy loss (or applied at predict).
  virtual bool softmax_output() const { return false; }
  // True for layers with one input that only reinterpret its shape (flatten): the executor
  // lets the output and its gradient share the input's memory, so they cost no copy.
  virtual bool reshape_only() const { return false; }
  // Backward fusion (see LayerIO): the layer's output is a ReLU's (its bias, if any, being
  // its parameter "bias"), and its backward honours activation_backward_done.
  virtual bool relu_output() const { return false; }
  // The layer's backward can take its input's ReLU backward (see LayerIO).
  virtual bool takes_input_relu_backward() const { return false; }
  // Forward fusion (see LayerIO): the max pool this layer computes for this input (a max
  // pool's own window), and whether the layer's forward can compute the max pool that
  // follows it (a convolution's).
  virtual std::optional<PoolShape> max_pool(InputShapes inputs) const { return std::nullopt; }
  virtual bool computes_output_pool() const { return false; }
  // The training forward computes across the batch's samples (a BatchNorm's statistics):
  // the executor then runs a training batch whole, never slice by slice.
  virtual bool mixes_samples() const { return false; }

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
  // How many inputs a layer of this type takes ("input": one name, or a list of them).
  int min_inputs = 1, max_inputs = 1;
  std::vector<LayerField> fields{};  // besides "type", "name" and "input", which every layer has
  // Reads the fields; layer_from_json has already refused any field not listed.
  LayerFactory make;
};

inline constexpr int kAnyNumberOfInputs = 1 << 20;  // LayerType::max_inputs without a limit

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
