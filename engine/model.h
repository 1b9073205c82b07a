// A model definition: a graph of named layers (each consumes one earlier node or the
// input), the loss, the optimizer and the training recipe, read from a JSON model file.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/layer.h"

namespace plinth {

enum class LossKind { categorical_crossentropy, mse, binary_crossentropy };

struct TrainingRecipe {
  int epochs = 10;
  int batch_size = 32;
  double val_split = 0.1;
  AugmentSpec augment;
  Schedule schedule;
  bool normalize = false;  // subtract the training set's mean and divide by its std
};

struct Node {
  std::unique_ptr<Layer> layer;
  int input = -1;  // index of the node it consumes; -1 is the model input
};

// A node's input and output shapes, batch dimension first.
struct NodeShapes {
  Shape input, output;
};

struct Model {
  std::string name;
  std::string source;          // file it came from, for messages
  std::array<int, 3> input{};  // channels, height, width
  std::vector<Node> nodes;
  LossKind loss = LossKind::categorical_crossentropy;
  OptimizerSpec optimizer;
  TrainingRecipe training;

  int find(const std::string& layer_name) const;  // -1 if absent
  // Every node's shapes for a batch size, in node order: the one walk of the graph that
  // the executor, the parameters and the summaries share. Throws plinth::Error naming the
  // layer that cannot take its input or would hold more than 2^31 - 1 values per sample.
  std::vector<NodeShapes> shapes(int batch) const;
  nlohmann::json to_json() const;
  size_t parameter_count() const;
  // Each node resolved, for `plinth layers --model` and scripts/pytorch_interop.py: name,
  // type, input names, per-sample input and output shapes, parameters and the PyTorch
  // module (Layer::torch_module).
  nlohmann::json describe() const;
};

// A model file is at most this large: a 100,000-layer file takes about 8 MB.
inline constexpr size_t kMaxModelFileBytes = size_t{64} << 20;

// Reads a model file: a regular file within kMaxModelFileBytes, JSON nested at most
// kMaxJsonDepth levels (engine/json_fields.h).
Model load_model(const std::string& path);
Model parse_model(const nlohmann::json& j, const std::string& where);

const char* loss_name(LossKind kind);
const char* optimizer_name(OptimizerKind kind);
OptimizerKind parse_optimizer_kind(const std::string& name, const std::string& where);
AugmentSpec parse_augment(const nlohmann::json& j, const std::string& where);
Schedule parse_schedule(const nlohmann::json& j, const std::string& where);
nlohmann::json optimizer_to_json(const OptimizerSpec& s);
nlohmann::json training_to_json(const TrainingRecipe& t);

}  // namespace plinth
