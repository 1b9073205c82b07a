#include "cpu_fallback/aligned_buffer.h"

#include <unistd.h>

#include <cstdlib>

#include "engine/error.h"

namespace plinth::cpu {

void* aligned_allocate(size_t bytes) {
  // aligned_alloc wants a multiple of the alignment; zero bytes still gets a valid pointer.
  const size_t rounded =
      bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* ptr = rounded < bytes ? nullptr : std::aligned_alloc(kAlignment, rounded);
  if (!ptr) {
    const double free_mib = static_cast<double>(sysconf(_SC_AVPHYS_PAGES)) *
                            static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
    fail("cpu backend: cannot allocate {} bytes ({:.0f} MiB of memory free)", bytes, free_mib);
  }
  return ptr;
}

void aligned_free(void* ptr) noexcept { std::free(ptr); }

void AlignedBuffer::reserve(size_t bytes) {
  if (bytes <= bytes_) return;
  void* grown = aligned_allocate(bytes);
  aligned_free(data_);
  data_ = grown;
  bytes_ = bytes;
}

}  // namespace plinth::cpu
