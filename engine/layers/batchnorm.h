// What batchnorm2d.cpp and batchnorm1d.cpp share: PyTorch's BatchNorm2d and BatchNorm1d,
// over the channels of [N, C, H, W] or the features of [N, F], with an activation fused.
// In training, each batch is normalised by its own statistics, which move the running
// estimates; in evaluation, and when frozen, by the running estimates. Parameters weight
// (starting at one) and bias; buffers running_mean, running_var and num_batches_tracked,
// PyTorch's names, so checkpoints load there unchanged.
#pragma once

#include <string>

#include "engine/layers/layers.h"

namespace plinth {

class BatchNorm final : public Layer {
 public:
  // rank: 4 (batchnorm2d) or 2 (batchnorm1d).
  BatchNorm(std::string name, int rank, Activation act, double momentum, double eps);

  std::string type() const override { return rank_ == 4 ? "batchnorm2d" : "batchnorm1d"; }
  nlohmann::json to_json() const override;
  Shape output_shape(InputShapes in) const override;
  std::vector<ParamSpec> param_specs(InputShapes in) const override;
  std::vector<BufferSpec> buffer_specs(InputShapes in) const override;
  size_t scratch_bytes(InputShapes in) const override;
  TorchModule torch_module(InputShapes in) const override;
  std::vector<OnnxNode> onnx_nodes(InputShapes in, OnnxNames xs,
                                   const std::string& y) const override;

  void forward(LayerIO& io) override;
  void backward(LayerIO& io) override;
  bool mixes_samples() const override { return true; }

 private:
  BatchNormShape norm_shape(const Shape& in) const;
  static bool batch_statistics(const LayerIO& io) { return io.training && !io.frozen; }

  int rank_;
  Activation act_;
  double momentum_, eps_;
};

// Reads the fields both types share (activation, momentum, eps).
std::unique_ptr<Layer> make_batchnorm(const JsonFields& f, const std::string& name, int rank);
// Their documentation.
std::vector<LayerField> batchnorm_fields();

}  // namespace plinth
