#include "engine/device_dataset.h"

#include <algorithm>

namespace plinth {

DeviceDataset::DeviceDataset(Backend& backend, const Dataset& data, int batch, int64_t limit_bytes,
                             int64_t positions)
    : backend_(backend),
      data_(data),
      count_(data.count),
      padded_(positions > 0 ? positions : (int64_t{data.count} + batch - 1) / batch * batch),
      batch_(batch),
      streamed_(data.pixel_bytes() > limit_bytes) {
  const size_t sample = static_cast<size_t>(data.image_size());
  const bool labelled = !data.labels.empty();
  if (streamed_) {
    const int64_t batches =
        std::max<int64_t>(1, limit_bytes / std::max<int64_t>(1, int64_t(sample) * batch));
    chunk_samples_ = std::min<int64_t>(batches * batch, padded_);
    images_ = DeviceBuffer(backend, chunk_samples_ * sample);
    if (labelled) labels_ = DeviceBuffer(backend, chunk_samples_ * sizeof(int32_t));
    std::vector<int32_t> identity(chunk_samples_);
    for (int64_t i = 0; i < chunk_samples_; ++i) identity[i] = static_cast<int32_t>(i);
    indices_ = DeviceBuffer(backend, identity.size() * sizeof(int32_t));
    backend.upload(indices_.as<void>(), identity.data(), identity.size() * sizeof(int32_t));
    order_on_device_ = DeviceBuffer(backend, padded_ * sizeof(int32_t));
    staging_.resize(chunk_samples_ * sample);
    staged_labels_.resize(chunk_samples_);
  } else {
    images_ = DeviceBuffer(backend, data.pixel_bytes());
    if (data.mapped) {  // the host copy lasts only for the upload
      std::vector<uint8_t> pixels(data.pixel_bytes());
      for (int i = 0; i < count_; ++i)
        std::copy_n(data.sample(i), sample, pixels.data() + i * sample);
      backend.upload(images_.as<void>(), pixels.data(), pixels.size());
    } else {
      backend.upload(images_.as<void>(), data.images.data(), data.images.size());
    }
    if (labelled) {
      labels_ = DeviceBuffer(backend, data.labels.size() * sizeof(int32_t));
      backend.upload(labels_.as<void>(), data.labels.data(), data.labels.size() * sizeof(int32_t));
    }
    indices_ = DeviceBuffer(backend, padded_ * sizeof(int32_t));
  }
  std::vector<int32_t> order(padded_);
  for (int64_t i = 0; i < padded_; ++i)  // padding repeats early samples
    order[i] = static_cast<int32_t>(i % count_);
  set_order(order);
}

void DeviceDataset::set_order(const std::vector<int32_t>& order) {
  if (streamed_) {
    order_ = order;
    chunk_start_ = -1;
    backend_.upload(order_on_device_.as<void>(), order.data(), order.size() * sizeof(int32_t));
  } else {
    backend_.upload(indices_.as<void>(), order.data(), order.size() * sizeof(int32_t));
  }
}

DeviceDataset::Batch DeviceDataset::batch(int64_t start) {
  if (!streamed_) {
    const int32_t* indices = indices_.as<int32_t>() + start;
    return {images_.as<uint8_t>(), labels_.as<int32_t>(), indices, indices};
  }
  if (chunk_start_ < 0 || start < chunk_start_ || start + batch_ > chunk_start_ + chunk_samples_)
    fill_chunk(start);
  return {images_.as<uint8_t>(), labels_.as<int32_t>(),
          indices_.as<int32_t>() + (start - chunk_start_), order_on_device_.as<int32_t>() + start};
}

void DeviceDataset::fill_chunk(int64_t start) {
  const size_t sample = static_cast<size_t>(data_.image_size());
  const int64_t n = std::min<int64_t>(chunk_samples_, padded_ - start);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t index = order_[start + i];
    std::copy_n(data_.sample(index), sample, staging_.data() + i * sample);
    if (!data_.labels.empty()) staged_labels_[i] = data_.labels[index];
  }
  backend_.synchronize();  // the previous chunk's batches are read before it is overwritten
  backend_.upload(images_.as<void>(), staging_.data(), n * sample);
  if (!data_.labels.empty())
    backend_.upload(labels_.as<void>(), staged_labels_.data(), n * sizeof(int32_t));
  chunk_start_ = start;
}

}  // namespace plinth
