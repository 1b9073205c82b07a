#include "cli/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace plinth::cli {
namespace {

void set_attribute(onnx::AttributeProto& a, const std::string& name, const nlohmann::json& value) {
  a.set_name(name);
  if (value.is_number_integer()) {
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(value.get<int64_t>());
  } else if (value.is_number()) {
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(value.get<float>());
  } else if (value.is_string()) {
    a.set_type(onnx::AttributeProto::STRING);
    a.set_s(value.get<std::string>());
  } else if (value.is_array()) {
    a.set_type(onnx::AttributeProto::INTS);
    for (const nlohmann::json& v : value) a.add_ints(v.get<int64_t>());
  } else {
    fail("export: attribute '{}' has an unsupported value {}", name, value.dump());
  }
}

void add_node(onnx::GraphProto& graph, const OnnxNode& node, const std::string& name) {
  onnx::NodeProto* n = graph.add_node();
  n->set_name(name);
  n->set_op_type(node.op_type);
  for (const std::string& input : node.inputs) n->add_input(input);
  for (const std::string& output : node.outputs) n->add_output(output);
  for (const auto& [key, value] : node.attributes.items())
    set_attribute(*n->add_attribute(), key, value);
}

void add_initializer(onnx::GraphProto& graph, const std::string& name,
                     const std::vector<int64_t>& dims, const float* values, size_t count) {
  onnx::TensorProto* t = graph.add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (size_t i = 0; i < count; ++i) t->add_float_data(values[i]);
}

// A float tensor [batch, dims of one sample...] with a symbolic batch dimension.
void set_type(onnx::ValueInfoProto& v, const std::string& name, const Shape& sample) {
  v.set_name(name);
  onnx::TypeProto_Tensor* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int d = 1; d < sample.rank; ++d) shape->add_dim()->set_dim_value(sample.dims[d]);
}

// (image / 255 - mean) / std, each per channel, as the engine's gather_batch computes it.
std::string add_normalization(onnx::GraphProto& graph, const Normalization& n, int channels) {
  std::vector<float> mean(channels), std(channels);
  for (int c = 0; c < channels; ++c) {
    mean[c] = n.mean[n.mean.size() == 1 ? 0 : c];
    std[c] = n.std[n.std.size() == 1 ? 0 : c];
  }
  const float scale = 255.0f;
  add_initializer(graph, "normalization.scale", {}, &scale, 1);
  add_initializer(graph, "normalization.mean", {1, channels, 1, 1}, mean.data(), mean.size());
  add_initializer(graph, "normalization.std", {1, channels, 1, 1}, std.data(), std.size());
  add_node(graph, {"Div", {"image", "normalization.scale"}, {"normalization.unit"}}, "scale");
  add_node(graph, {"Sub", {"normalization.unit", "normalization.mean"}, {"normalization.centred"}},
           "subtract_mean");
  add_node(graph, {"Div", {"normalization.centred", "normalization.std"}, {"input"}},
           "divide_by_std");
  return "input";
}

}  // namespace

void export_onnx(const Model& model, const Parameters& params, const Normalization& normalization,
                 const std::string& path) {
  onnx::ModelProto proto;
  proto.set_ir_version(kOnnxIrVersion);
  proto.set_producer_name("plinth");
  proto.set_producer_version(PLINTH_VERSION);
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  onnx::GraphProto& graph = *proto.mutable_graph();
  graph.set_name(model.name);

  const std::vector<NodeShapes> shapes = model.shapes(1);
  set_type(*graph.add_input(), "image", shapes.front().inputs.front());
  const std::string input = add_normalization(graph, normalization, model.input[0]);

  const std::vector<float> values = params.download(params.values());
  for (const ParamEntry& e : params.entries())
    add_initializer(graph, e.name,
                    std::vector<int64_t>(e.shape.dims.begin(), e.shape.dims.begin() + e.shape.rank),
                    values.data() + e.offset, e.shape.numel());
  // Float buffers are BatchNorm's running statistics; its count of batches (int64) only
  // matters in training.
  const std::vector<std::byte> buffers = params.download_buffers();
  for (const BufferEntry& e : params.buffer_entries())
    if (e.type == BufferSpec::Type::f32)
      add_initializer(
          graph, e.name,
          std::vector<int64_t>(e.shape.dims.begin(), e.shape.dims.begin() + e.shape.rank),
          reinterpret_cast<const float*>(buffers.data() + e.offset), e.shape.numel());

  const bool classifier = model.nodes.back().layer->softmax_output();
  for (size_t i = 0; i < model.nodes.size(); ++i) {
    const Layer& layer = *model.nodes[i].layer;
    std::vector<std::string> xs;
    for (int from : model.nodes[i].inputs)
      xs.push_back(from == kModelInput ? input : model.nodes[from].layer->name());
    const bool last = i + 1 == model.nodes.size();
    const std::string y = !last ? layer.name() : classifier ? "logits" : "output";
    int k = 0;
    for (const OnnxNode& node : layer.onnx_nodes(shapes[i].inputs, xs, y))
      add_node(graph, node, fmt::format("{}.{}", layer.name(), k++));
  }
  const Shape& out = shapes.back().output;
  if (classifier) {
    add_node(graph, {"Softmax", {"logits"}, {"probabilities"}, {{"axis", 1}}}, "softmax");
    set_type(*graph.add_output(), "logits", out);
    set_type(*graph.add_output(), "probabilities", out);
  } else {
    set_type(*graph.add_output(), "output", out);
  }
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    fail("{}: ONNX's checker refuses the exported model: {}", path, e.what());
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) fail("{}: cannot serialise the ONNX model", path);
  write_file_atomically(path, bytes);
}

}  // namespace plinth::cli
