// Seeded shuffles that give the same order on every platform. std::shuffle and
// std::uniform_int_distribution are implementation-defined; std::mt19937_64's output
// sequence is fixed by the standard, so everything here is built on it alone.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace plinth {

// Uniform in [0, bound), bound >= 1, without modulo bias: draws below 2^64 mod bound
// are rejected, so the accepted range is a whole multiple of bound.
inline uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

template <typename T>
void fisher_yates(std::vector<T>& items, std::mt19937_64& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[uniform_below(rng, i)]);
}

}  // namespace plinth
