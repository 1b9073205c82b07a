#include "engine/layers/batchnorm.h"

namespace plinth {

namespace {
std::unique_ptr<Layer> make_batchnorm1d(const JsonFields& f, const std::string& name) {
  return make_batchnorm(f, name, 2);
}
}  // namespace

const LayerType& batchnorm1d_layer_type() {
  static const LayerType type{
      .name = "batchnorm1d",
      .summary =
          "batch normalisation of each feature of [N, features], as PyTorch's "
          "BatchNorm1d (statistics as batchnorm2d's), activation fused",
      .name_prefix = "norm",
      .fields = batchnorm_fields(),
      .make = make_batchnorm1d,
  };
  return type;
}

}  // namespace plinth
