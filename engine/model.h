// A model definition: a graph of named layers, the loss, the optimizer and the training
// recipe, read from a JSON model file. Each layer consumes one or more earlier layers (or
// the model's input) and may feed several later ones; the file's order is a topological
// order, and the last layer's output is the model's.
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

// Semi-supervised training (FixMatch: Sohn et al. 2020), used when a run has unlabelled
// images. Each step also takes ratio x batch_size unlabelled images: a weakly augmented view
// (the recipe's `augment`) predicts each one's class without gradient, and where that
// prediction's probability reaches threshold, the strongly augmented view of the same image
// is trained towards it (cross-entropy, averaged over all ratio x batch_size images, added
// to the labelled loss with weight 1).
struct SemiSupervisedRecipe {
  int ratio = 7;            // unlabelled images per labelled one in a step (FixMatch's mu)
  float threshold = 0.95f;  // the weak view's top probability a pseudo-label needs
  int warmup_epochs = 0;    // epochs on the labelled images alone before the unlabelled join
  // Chosen on a validation split (docs/finetune.md): a stronger view (shift 3, scale 0.1,
  // contrast 0.4, brightness 0.2, cutout 10) was worse than no unlabelled images at all.
  AugmentSpec strong = {
      .max_shift = 2.0f, .max_rotate = 10.0f, .horizontal_flip = true, .cutout = 6.0f};
};

struct TrainingRecipe {
  int epochs = 10;
  int batch_size = 32;
  double val_split = 0.1;
  AugmentSpec augment;
  Schedule schedule;
  bool normalize = false;  // subtract the training set's mean and divide by its std
  SemiSupervisedRecipe semi_supervised;
};

struct Node {
  std::unique_ptr<Layer> layer;
  // The nodes it consumes, in the order its layer takes them: indices of earlier nodes, or
  // kModelInput.
  std::vector<int> inputs;
};
inline constexpr int kModelInput = -1;

// A node's input and output shapes, batch dimension first.
struct NodeShapes {
  std::vector<Shape> inputs;  // one per input
  Shape output;
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
  // "input" for kModelInput, else the node's layer name.
  std::string input_name(int node) const;
  // Every node's shapes for a batch size, in node order: the one walk of the graph that
  // the executor, the parameters and the summaries share. Throws plinth::Error naming the
  // layer that cannot take its inputs (and, for several, naming them) or would hold more
  // than 2^31 - 1 values per sample.
  std::vector<NodeShapes> shapes(int batch) const;
  nlohmann::json to_json() const;
  size_t parameter_count() const;
  // The table Keras' model.summary() prints, a line per layer: name (type), output shape,
  // parameters (marked "(frozen)" for the layers named in frozen) and the nodes it consumes.
  std::string layer_table(const std::vector<std::string>& frozen = {}) const;
  // Each node resolved, for `plinth layers --model` and scripts/pytorch_interop.py: name,
  // type, input names, per-sample input and output shapes, parameters, buffers and the
  // PyTorch module (Layer::torch_module).
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
// Reads onto `into` the fields j has (ratio, threshold, warmup_epochs, strong_augment).
void parse_semi_supervised(const nlohmann::json& j, const std::string& where,
                           SemiSupervisedRecipe& into);
nlohmann::json augment_to_json(const AugmentSpec& a);
nlohmann::json optimizer_to_json(const OptimizerSpec& s);
nlohmann::json training_to_json(const TrainingRecipe& t);

}  // namespace plinth
