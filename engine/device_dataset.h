// A data set resident on the device for the training loop and evaluation: the images as
// bytes and the labels, uploaded once, plus a buffer of sample indices (one epoch's order,
// padded to whole batches) that gather_batch reads.
#pragma once

#include <cstdint>
#include <vector>

#include "datasets/dataset.h"
#include "engine/backend.h"
#include "engine/tensor.h"

namespace plinth {

struct DeviceDataset {
  DeviceBuffer images, labels, indices;
  int count = 0, padded = 0;

  DeviceDataset(Backend& be, const Dataset& d, int batch) : count(d.count) {
    images = DeviceBuffer(be, d.images.size());
    be.upload(images.as<void>(), d.images.data(), d.images.size());
    if (!d.labels.empty()) {
      labels = DeviceBuffer(be, d.labels.size() * sizeof(int32_t));
      be.upload(labels.as<void>(), d.labels.data(), d.labels.size() * sizeof(int32_t));
    }
    padded = (count + batch - 1) / batch * batch;
    indices = DeviceBuffer(be, padded * sizeof(int32_t));
    std::vector<int32_t> order(padded);
    for (int i = 0; i < padded; ++i) order[i] = i % count;  // padding repeats early samples
    set_order(be, order);
  }
  void set_order(Backend& be, const std::vector<int32_t>& order) {
    be.upload(indices.as<void>(), order.data(), order.size() * sizeof(int32_t));
  }
};

}  // namespace plinth
