// plinth export: a model and its weights as an ONNX file, for onnxruntime and the other
// runtimes that read ONNX. The protobuf is written with Debian's ONNX library (libonnx-dev),
// whose checker validates the model before it is written.
#pragma once

#include <string>

#include "datasets/dataset.h"
#include "engine/model.h"
#include "engine/parameters.h"

namespace plinth::cli {

// ONNX opset and IR version of the exported files (those of ONNX 1.12, Debian 12's).
inline constexpr int kOnnxOpset = 17;
inline constexpr int kOnnxIrVersion = 8;

// The graph takes "image": float [batch, C, H, W] pixel values in 0..255 and applies the
// model's input normalisation, (image / 255 - mean[c]) / std[c], then every layer's own
// nodes (Layer::onnx_nodes). A classifier ends in "logits" and "probabilities" (a Softmax
// over the classes); any other model in "output".
void export_onnx(const Model& model, const Parameters& params, const Normalization& normalization,
                 const std::string& path);

}  // namespace plinth::cli
