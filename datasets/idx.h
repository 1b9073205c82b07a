// IDX files (the MNIST family's format), raw or gzip-compressed.
//
// Layout: two zero bytes, a type byte (only 0x08 = uint8 is supported), a byte with the
// number of dimensions, one big-endian uint32 per dimension, then the elements in
// row-major order. Gzip is detected by its magic bytes (1f 8b), not by the file name.
//
// Everything a file claims is checked before memory is committed to it: the header's
// element count must be under kIdxMaxElements and must match the file size (raw) or the
// decompressed stream, which must end exactly where the header says, with a valid CRC and
// nothing after it (gzip). Only regular files are read (a FIFO or a device is an error,
// not a wait or an endless read), and a gzip file's memory grows with the data its stream
// really delivers, never with what its header or its trailer claims. Any problem throws
// plinth::Error "<path>: <problem>".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace plinth {

// At most 2^31 - 1 elements, so any element index fits an int32.
inline constexpr int64_t kIdxMaxElements = (int64_t{1} << 31) - 1;

struct IdxArray {
  std::vector<int> dims;      // 1 to 4 entries, each >= 1
  std::vector<uint8_t> data;  // product(dims) elements, row-major
};

IdxArray read_idx(const std::string& path);

}  // namespace plinth
