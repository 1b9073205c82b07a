// 64-byte aligned host memory: the CPU backend's "device" allocations and the grow-only
// scratch buffers of the convolution. Cache-line alignment keeps BLAS packing and the
// vectorised loops on their fast paths and stops threads from sharing lines at buffer starts.
#pragma once

#include <cstddef>

namespace plinth::cpu {

inline constexpr size_t kAlignment = 64;

// Throws plinth::Error naming the byte count (and the memory still free) on failure.
void* aligned_allocate(size_t bytes);
void aligned_free(void* ptr) noexcept;

// Scratch memory that only ever grows, so a step that reuses prepared sizes never allocates.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { aligned_free(data_); }

  // Contents are not preserved when the buffer grows.
  void reserve(size_t bytes);
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as(size_t byte_offset = 0) const {
    return reinterpret_cast<T*>(static_cast<char*>(data_) + byte_offset);
  }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace plinth::cpu
