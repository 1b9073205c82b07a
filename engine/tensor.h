// Tensors are views: a shape and a pointer into memory owned by a DeviceBuffer (usually
// the executor's arena, allocated once when the graph is built). Nothing here copies or
// allocates on its own, so a training step never touches the allocator.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "engine/backend.h"

namespace plinth {

// Up to 4 dimensions, outermost first (NCHW for images, [N, features] for dense).
struct Shape {
  std::array<int, 4> dims{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<int> d) {
    for (int v : d) dims[rank++] = v;
  }
  int operator[](int i) const { return dims[i]; }
  int& operator[](int i) { return dims[i]; }
  size_t numel() const {
    size_t n = 1;
    for (int i = 0; i < rank; ++i) n *= static_cast<size_t>(dims[i]);
    return n;
  }
  // The shape of one sample: everything but the batch dimension.
  size_t per_sample() const { return rank == 0 ? 0 : numel() / static_cast<size_t>(dims[0]); }
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank; ++i) s += fmt::format("{}{}", i ? ", " : "", dims[i]);
    return s + "]";
  }
  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
      if (a.dims[i] != b.dims[i]) return false;
    return true;
  }
};

struct Tensor {
  Shape shape;
  float* data = nullptr;
  size_t numel() const { return shape.numel(); }
};

// Owns one allocation on one backend's device. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend& backend, size_t bytes)
      : backend_(&backend), ptr_(bytes ? backend.allocate(bytes) : nullptr), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    DeviceBuffer(std::move(o)).swap(*this);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) backend_->deallocate(ptr_);
  }

  template <typename T = float>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void swap(DeviceBuffer& o) noexcept {
    std::swap(backend_, o.backend_);
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
  }
  Backend* backend_ = nullptr;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace plinth
