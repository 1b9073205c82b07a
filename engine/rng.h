// Counter-based random numbers: a value depends only on (key, counter), never on which
// thread or device asks or in what order, so CPU and GPU runs with one seed agree and a
// run is reproducible for any thread count.
#pragma once

#include <cstdint>

#include "engine/hd.h"

namespace plinth {

// SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.
PLINTH_HD uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

PLINTH_HD uint64_t hash_combine(uint64_t key, uint64_t counter) {
  return mix64(key ^ mix64(counter));
}

// Uniform in [0, 1) with 24 random bits (exactly representable in float).
PLINTH_HD float uniform01(uint64_t key, uint64_t counter) {
  return static_cast<float>(hash_combine(key, counter) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace plinth
