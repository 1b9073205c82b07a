// Scalars for TensorBoard without TensorFlow: an event file is a sequence of TFRecords, each
// holding one serialized tensorflow.Event protobuf. The few protobuf fields a scalar needs are
// encoded by hand, so there is no dependency beyond the standard library.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace plinth::cli {

// CRC-32C (Castagnoli polynomial), the checksum TFRecord framing uses.
std::uint32_t crc32c(std::string_view bytes);

// TFRecord stores CRCs masked (rotated and offset), because a CRC computed over data that
// itself holds CRCs is weak.
std::uint32_t masked_crc32c(std::string_view bytes);

// Writes events.out.tfevents.<unix_time>.<hostname>.plinth in dir (created if missing).
// Point TensorBoard at dir, or at a parent of several runs' dirs. Records are buffered until
// flush() or destruction.
class TensorBoardWriter {
 public:
  // Throws Error if dir cannot be created or the event file cannot be opened.
  explicit TensorBoardWriter(const std::string& dir);

  // Throws Error if writing fails.
  void add_scalar(std::string_view tag, float value, std::int64_t step);
  // Throws Error if the buffered records cannot be written (disk full, I/O error).
  void flush();
  // Flushes and closes the file, throwing Error if either fails; nothing may be added after.
  void close();

  const std::string& path() const { return path_; }

 private:
  void write_record(std::string_view data);

  std::string path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};
};

}  // namespace plinth::cli
