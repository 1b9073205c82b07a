// A data set on the device for the training loop and evaluation, placed one of two ways:
//  * resident, when its pixels fit the limit: images and labels uploaded once, and the
//    epoch's order (sample indices, padded to whole batches) that gather_batch reads;
//  * streamed, when they do not (a data set larger than device memory, or a mapped file
//    larger than host memory): a device chunk of whole batches that the host refills with
//    the next samples of the order, read from the data set's memory or its mapped file,
//    before gather_batch reads the chunk in place.
// Both give gather_batch the same bytes in the same order, so the batches are identical.
#pragma once

#include <cstdint>
#include <vector>

#include "datasets/dataset.h"
#include "engine/backend.h"
#include "engine/tensor.h"

namespace plinth {

class DeviceDataset {
 public:
  // limit_bytes: the most device memory the pixels may take (at least one batch streams).
  // positions: the length of an order, a multiple of batch (0: count rounded up to whole
  // batches); an order may visit a sample several times, as an unlabelled stream does.
  DeviceDataset(Backend& backend, const Dataset& data, int batch, int64_t limit_bytes,
                int64_t positions = 0);

  bool streamed() const { return streamed_; }
  // Why steps that read a streamed set are not replayed from a graph (StepGraph::disable).
  static constexpr const char* kNotReplayable =
      "the data set streams from host memory (data_memory smaller than its pixels): a graph "
      "cannot replay the host's copies of each batch";
  int count() const { return count_; }
  int64_t padded() const { return padded_; }  // the positions of an order
  int batch_size() const { return batch_; }
  // The order of one pass, padded() entries (padding repeats samples).
  void set_order(const std::vector<int32_t>& order);

  // What gather_batch reads for the batch starting at position `start` of the order (a
  // multiple of the batch size). Streamed, this may refill the chunk.
  struct Batch {
    const uint8_t* images;
    const int32_t* labels;      // null for unlabelled data
    const int32_t* indices;     // batch entries into images
    const int32_t* sample_ids;  // batch entries: each sample's index in the data set
  };
  Batch batch(int64_t start);

 private:
  void fill_chunk(int64_t start);

  Backend& backend_;
  const Dataset& data_;
  int count_;
  int64_t padded_;
  int batch_;
  bool streamed_;
  int64_t chunk_samples_ = 0;     // streamed: samples per chunk, whole batches
  int64_t chunk_start_ = -1;      // streamed: the order position the chunk holds, -1 for none
  std::vector<int32_t> order_;    // streamed: the host's copy of the order
  std::vector<uint8_t> staging_;  // streamed: the chunk's pixels on the host
  std::vector<int32_t> staged_labels_;
  DeviceBuffer images_, labels_, indices_;
  DeviceBuffer order_on_device_;  // streamed: the order, for the samples' ids
};

}  // namespace plinth
