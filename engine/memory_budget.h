// Memory as a whole: before the executor or the parameters allocate, they add up what
// their plan needs and compare it with what the device has now. A plan that cannot fit is
// refused at once with one line (what it needs, what is available, where the memory goes,
// a batch size that would fit) instead of allocating buffer after buffer until the kernel's
// OOM killer ends the process without a word.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "engine/backend.h"
#include "engine/error.h"

namespace plinth {

struct MemoryNeed {
  std::string what;                        // "model 'x' at batch 32 (training)"
  std::map<std::string, size_t> by_owner;  // bytes per layer (or "input", "labels", ...)
  size_t bytes = 0;                        // the whole plan
  int batch = 0;           // the batch it was planned for; 0: no batch size changes it
  size_t fixed_bytes = 0;  // the part a smaller batch would not shrink (an upper bound)

  void add(const std::string& owner, size_t owner_bytes) {
    by_owner[owner] += owner_bytes;
    bytes += owner_bytes;
  }
};

// What require_memory throws: an Error that also says which batch would have fit.
class MemoryError : public Error {
 public:
  MemoryError(const std::string& message, int fitting_batch)
      : Error(message), fitting_batch_(fitting_batch) {}
  int fitting_batch() const { return fitting_batch_; }  // 0: none

 private:
  int fitting_batch_;
};

// The largest batch below need.batch whose plan stays within `available` bytes, assuming
// (as the executor's plan is) that everything but fixed_bytes grows in proportion to the
// batch; 0 if there is none or the need does not depend on the batch.
int largest_batch_within(const MemoryNeed& need, size_t available);

// "21.3 GiB", "512.0 MiB", "96 bytes" (up to PiB).
std::string memory_size(size_t bytes);

// Throws MemoryError when need.bytes is more than backend.available_memory().
void require_memory(const Backend& backend, const MemoryNeed& need);

}  // namespace plinth
