#include "datasets/idx.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace plinth {
namespace {

constexpr int kMaxDims = 4;
// Deflate never expands data by more than 1032:1, so no gzip file of n bytes holds more
// than 1032 n bytes: a bound on what a header may claim that needs no decompression.
constexpr uint64_t kMaxDeflateRatio = 1032;
// Data is decompressed in pieces of this size, so a header that lies about a gzip file's
// contents costs memory only for what the file really holds.
constexpr size_t kChunk = size_t{1} << 20;

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

// The file's bytes after any decompression, front to back.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads up to n bytes; fewer only where the data ends.
  virtual size_t read(uint8_t* dst, size_t n) = 0;
};

class RawStream final : public ByteStream {
 public:
  RawStream(FILE* file, const std::string& path) : file_(file), path_(path) {}
  size_t read(uint8_t* dst, size_t n) override {
    size_t got = std::fread(dst, 1, n, file_);
    if (got < n && std::ferror(file_)) fail("{}: read error ({})", path_, std::strerror(errno));
    return got;
  }

 private:
  FILE* file_;
  const std::string& path_;
};

class GzipStream final : public ByteStream {
 public:
  GzipStream(FILE* file, const std::string& path) : file_(file), path_(path) {
    // 16 + MAX_WBITS accepts the gzip wrapper only and makes zlib check the CRC-32 and
    // the length in the trailer when the stream ends.
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) fail("{}: cannot start zlib", path);
  }
  ~GzipStream() override { inflateEnd(&z_); }
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  size_t read(uint8_t* dst, size_t n) override {
    z_.next_out = dst;
    z_.avail_out = static_cast<uInt>(n);
    while (z_.avail_out > 0 && !ended_) {
      if (z_.avail_in == 0 && !refill()) break;
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc == Z_MEM_ERROR) {
        fail("{}: out of memory while decompressing", path_);
      } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && z_.avail_in == 0)) {
        fail("{}: corrupt gzip data ({})", path_, z_.msg ? z_.msg : zError(rc));
      }
    }
    return n - z_.avail_out;
  }

  bool ended() const { return ended_; }

  // After the promised data: the deflate stream must end here, with a good trailer, and
  // the file must end with it.
  void expect_end(uint64_t promised) {
    uint8_t extra;
    if (read(&extra, 1) == 1)
      fail("{}: decompressed data is longer than the {} bytes the header promises", path_,
           promised);
    if (!ended_) fail("{}: truncated: the gzip stream is cut off before its end", path_);
    if (z_.avail_in > 0 || refill())
      fail("{}: unexpected bytes after the end of the gzip stream", path_);
  }

 private:
  bool refill() {
    size_t got = std::fread(in_.data(), 1, in_.size(), file_);
    if (got == 0 && std::ferror(file_)) fail("{}: read error ({})", path_, std::strerror(errno));
    z_.next_in = in_.data();
    z_.avail_in = static_cast<uInt>(got);
    return got > 0;
  }

  FILE* file_;
  const std::string& path_;
  z_stream z_{};
  bool ended_ = false;
  std::vector<uint8_t> in_ = std::vector<uint8_t>(size_t{1} << 16);
};

struct Header {
  std::vector<int> dims;
  uint64_t elements = 1;
  uint64_t bytes = 0;  // size of the header itself
};

const char* idx_type_name(uint8_t type) {
  switch (type) {
    case 0x08:
      return "uint8";
    case 0x09:
      return "int8";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

uint32_t big_endian32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

Header read_header(ByteStream& in, const std::string& path) {
  uint8_t head[4 + 4 * kMaxDims];
  if (in.read(head, 4) < 4) fail("{}: truncated: the file ends inside the IDX header", path);
  if (head[0] != 0 || head[1] != 0)
    fail("{}: not an IDX file (it starts with bytes {:02x} {:02x}, expected 00 00)", path, head[0],
         head[1]);
  if (head[2] != 0x08)
    fail("{}: unsupported IDX element type 0x{:02x} ({}); only 0x08 (uint8) is supported", path,
         head[2], idx_type_name(head[2]));
  int ndims = head[3];
  if (ndims < 1 || ndims > kMaxDims)
    fail("{}: IDX header has {} dimensions; 1 to {} are supported", path, ndims, kMaxDims);
  if (in.read(head + 4, 4 * size_t(ndims)) < 4 * size_t(ndims))
    fail("{}: truncated: the file ends inside the IDX header", path);

  Header header;
  header.bytes = 4 + 4 * uint64_t(ndims);
  for (int i = 0; i < ndims; ++i) {
    uint32_t dim = big_endian32(head + 4 + 4 * i);
    if (dim == 0) fail("{}: IDX dimension {} is 0", path, i);
    if (dim > uint32_t{INT_MAX}) fail("{}: IDX dimension {} is {}, too large", path, i, dim);
    header.dims.push_back(int(dim));
  }
  for (int dim : header.dims) {
    // Both factors are below 2^32, so the product cannot overflow 64 bits before the check.
    header.elements *= uint64_t(dim);
    if (header.elements > uint64_t(kIdxMaxElements))
      fail("{}: IDX header claims {} elements, more than the limit of {}", path,
           fmt::join(header.dims, " x "), kIdxMaxElements);
  }
  return header;
}

IdxArray read_raw(FILE* file, const std::string& path, uint64_t file_size) {
  RawStream in(file, path);
  IdxArray array;
  Header header = read_header(in, path);
  uint64_t held = file_size - header.bytes;
  if (held < header.elements)
    fail("{}: truncated: header promises {} bytes of data, file holds {}", path, header.elements,
         held);
  if (held > header.elements)
    fail("{}: file holds {} bytes of data but its header promises {}", path, held, header.elements);
  array.dims = std::move(header.dims);
  array.data.resize(header.elements);
  if (in.read(array.data.data(), array.data.size()) < array.data.size())
    fail("{}: file shrank while being read", path);
  return array;
}

IdxArray read_gzip(FILE* file, const std::string& path, uint64_t file_size) {
  GzipStream in(file, path);
  Header header = read_header(in, path);
  uint64_t total = header.bytes + header.elements;
  if (total > kMaxDeflateRatio * file_size)
    fail(
        "{}: truncated: header promises {} bytes of data, more than a {}-byte gzip file can "
        "hold",
        path, header.elements, file_size);

  // Memory grows only with what the stream really delivers: neither the header's claim
  // nor the size the gzip trailer states (anyone can write anything there) reserves it.
  IdxArray array;
  array.dims = std::move(header.dims);
  while (array.data.size() < header.elements) {
    size_t done = array.data.size();
    size_t want = std::min<uint64_t>(kChunk, header.elements - done);
    array.data.resize(done + want);
    size_t got = in.read(array.data.data() + done, want);
    if (got < want)
      fail("{}: truncated: header promises {} bytes of data, file holds {}{}", path,
           header.elements, done + got, in.ended() ? "" : " before the gzip stream is cut off");
  }
  in.expect_end(header.elements);
  return array;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  InputFile input(path);
  const uint64_t size = input.size();
  File file(::fdopen(input.fd(), "rb"));
  if (!file) fail("{}: cannot open ({})", path, std::strerror(errno));
  input.release();  // the FILE owns the descriptor now

  uint8_t magic[2] = {};
  bool gzip = std::fread(magic, 1, 2, file.get()) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  std::rewind(file.get());
  return gzip ? read_gzip(file.get(), path, size) : read_raw(file.get(), path, size);
}

}  // namespace plinth
