// plinth export: a checkpoint as an ONNX model.
#include "cli/checkpoint_model.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/onnx_export.h"
#include "engine/device_select.h"
#include "engine/error.h"

namespace plinth::cli {

int export_command(int argc, char** argv) {
  Args a(
      "export",
      "Write a checkpoint as an ONNX model (opset 17): input \"image\" [batch, C, H, W] of pixel "
      "values 0..255, the checkpoint's normalisation, every layer, and outputs \"logits\" and "
      "\"probabilities\" (softmax) for a classifier.");
  add_checkpoint_options(a);
  a.option("onnx", "FILE", "the ONNX file to write; required");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("onnx")) fail("--onnx is required");
  const CheckpointModel l = load_checkpoint_model(a);
  DeviceChoice device = open_device_option("cpu", 1, {});
  Parameters params(l.model, *device.backend);
  load_weights(a.str("checkpoint"), params, true);
  export_onnx(l.model, params, l.meta.normalization, a.str("onnx"));
  status(fmt::format("exported {} ({} parameters) to {}", l.model.name, params.count(),
                     a.str("onnx")));
  return 0;
}

}  // namespace plinth::cli
