// Binary PGM (P5) reading for single-image prediction.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "datasets/dataset.h"
#include "engine/atomic_file.h"
#include "engine/error.h"

namespace plinth {
namespace {

constexpr size_t kMaxHeaderBytes = 4096;  // comments included; real headers are ~15 bytes

class PgmHeaderParser {
 public:
  PgmHeaderParser(const std::string& head, const std::string& path) : head_(head), path_(path) {}

  // The next decimal field, skipping whitespace and # comments.
  int number(const char* what) {
    for (;;) {
      while (pos_ < head_.size() && std::isspace(static_cast<unsigned char>(head_[pos_]))) ++pos_;
      if (pos_ >= head_.size() || head_[pos_] != '#') break;
      while (pos_ < head_.size() && head_[pos_] != '\n') ++pos_;
    }
    int value = 0, digits = 0;
    for (; pos_ < head_.size() && std::isdigit(static_cast<unsigned char>(head_[pos_])); ++pos_) {
      if (++digits > 6) fail("{}: PGM {} is too large", path_, what);
      value = value * 10 + (head_[pos_] - '0');
    }
    if (digits == 0) fail("{}: bad PGM header: expected the {}", path_, what);
    return value;
  }

  // The header ends with exactly one whitespace byte after maxval.
  size_t end() {
    if (pos_ >= head_.size() || !std::isspace(static_cast<unsigned char>(head_[pos_])))
      fail("{}: bad PGM header: no whitespace after maxval", path_);
    return pos_ + 1;
  }

 private:
  const std::string& head_;
  const std::string& path_;
  size_t pos_ = 2;  // after "P5"
};

// Reads exactly n bytes at offset, or fails naming the file.
void read_at(const InputFile& file, const std::string& path, void* dst, size_t n, uint64_t at) {
  for (size_t done = 0; done < n;) {
    const ssize_t got =
        ::pread(file.fd(), static_cast<char*>(dst) + done, n - done, static_cast<off_t>(at + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) fail("{}: read error ({})", path, got < 0 ? std::strerror(errno) : "file shrank");
    done += static_cast<size_t>(got);
  }
}

// A P5 file holds at most the header and one image of the model's size: both are bounded
// before anything is read, and only regular files are opened.
void append_pgm(const std::string& path, int h, int w, std::vector<uint8_t>& pixels) {
  const InputFile file(path);
  const uint64_t file_size = file.size();
  std::string head(std::min<uint64_t>(file_size, kMaxHeaderBytes), '\0');
  read_at(file, path, head.data(), head.size(), 0);
  if (head.size() < 2 || head[0] != 'P' || head[1] != '5')
    fail("{}: not a binary PGM image (it must start with P5)", path);
  PgmHeaderParser header(head, path);
  const int width = header.number("width");
  const int height = header.number("height");
  const int maxval = header.number("maxval");
  const size_t data_start = header.end();
  if (width != w || height != h)
    fail("{}: image is {}x{} (width x height), expected {}x{}", path, width, height, w, h);
  if (maxval < 1 || maxval > 255)
    fail("{}: PGM maxval {} is not 8-bit (1 to 255 supported)", path, maxval);
  const uint64_t expected = uint64_t(w) * uint64_t(h);
  if (file_size - data_start != expected)
    fail("{}: {} bytes of pixel data, a {}x{} 8-bit image needs {}", path, file_size - data_start,
         w, h, expected);

  const size_t offset = pixels.size();
  pixels.resize(offset + expected);
  read_at(file, path, pixels.data() + offset, expected, data_start);
  if (maxval == 255) return;
  for (size_t i = offset; i < pixels.size(); ++i) {
    if (pixels[i] > maxval) fail("{}: pixel value {} exceeds maxval {}", path, pixels[i], maxval);
    pixels[i] = static_cast<uint8_t>((pixels[i] * 255 + maxval / 2) / maxval);
  }
}

}  // namespace

Dataset load_pgm_images(const std::vector<std::string>& paths, int h, int w) {
  if (h < 1 || w < 1) fail("load_pgm_images: bad image size {}x{}", w, h);
  Dataset data;
  data.count = static_cast<int>(paths.size());
  data.channels = 1;
  data.height = h;
  data.width = w;
  data.name = "pgm images";
  data.images.reserve(paths.size() * size_t(h) * size_t(w));
  for (const std::string& path : paths) append_pgm(path, h, w, data.images);
  return data;
}

}  // namespace plinth
