#include "cli/tensorboard.h"

#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "engine/error.h"

namespace plinth::cli {
namespace {

constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (crc & 1 ? 0x82f63b78u : 0u);  // reflected
    table[i] = crc;
  }
  return table;
}
constexpr auto crc32c_table = make_crc32c_table();

// Protobuf wire format: each field is a varint key (field number << 3 | wire type) followed by
// a varint (type 0), 8 little-endian bytes (type 1), a varint length and bytes (type 2), or 4
// little-endian bytes (type 5).
enum Wire : std::uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void put_varint(std::string& out, std::uint64_t v) {
  for (; v >= 0x80; v >>= 7) out += static_cast<char>(v | 0x80);
  out += static_cast<char>(v);
}

template <typename Unsigned>
void put_little_endian(std::string& out, Unsigned v) {
  for (size_t i = 0; i < sizeof v; ++i) out += static_cast<char>(v >> (8 * i));
}

void put_key(std::string& out, std::uint32_t field, Wire wire) {
  put_varint(out, field << 3 | wire);
}

void put_double(std::string& out, std::uint32_t field, double v) {
  put_key(out, field, kFixed64);
  put_little_endian(out, std::bit_cast<std::uint64_t>(v));
}

void put_float(std::string& out, std::uint32_t field, float v) {
  put_key(out, field, kFixed32);
  put_little_endian(out, std::bit_cast<std::uint32_t>(v));
}

void put_int64(std::string& out, std::uint32_t field, std::int64_t v) {
  put_key(out, field, kVarint);
  put_varint(out, static_cast<std::uint64_t>(v));  // negative int64: ten bytes, as protobuf does
}

void put_bytes(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_key(out, field, kBytes);
  put_varint(out, bytes.size());
  out += bytes;
}

// tensorflow.Event fields (tensorflow/core/util/event.proto) and its nested Summary.Value.
constexpr std::uint32_t kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3,
                        kEventSummary = 5;
constexpr std::uint32_t kSummaryValue = 1;
constexpr std::uint32_t kValueTag = 1, kValueSimpleValue = 2;

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') return "localhost";
  return name.data();
}

}  // namespace

std::uint32_t crc32c(std::string_view bytes) {
  std::uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) crc = crc32c_table[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

std::uint32_t masked_crc32c(std::string_view bytes) {
  std::uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("tensorboard: cannot create directory '{}': {}", dir, ec.message());

  // Two writers started in the same second in one dir get distinct files; "x" refuses to
  // open an existing one, so they cannot clobber each other.
  std::string base =
      fmt::format("{}/events.out.tfevents.{}.{}", dir, std::time(nullptr), hostname());
  for (int n = 1; !file_; ++n) {
    path_ = n == 1 ? base + ".plinth" : fmt::format("{}.{}.plinth", base, n);
    file_.reset(std::fopen(path_.c_str(), "wbx"));
    if (!file_ && (errno != EEXIST || n == 100))
      fail("tensorboard: cannot create '{}': {}", path_, std::strerror(errno));
  }

  std::string event;
  put_double(event, kEventWallTime, now_seconds());
  put_bytes(event, kEventFileVersion, "brain.Event:2");
  write_record(event);
}

void TensorBoardWriter::add_scalar(std::string_view tag, float value, std::int64_t step) {
  std::string summary_value;
  put_bytes(summary_value, kValueTag, tag);
  put_float(summary_value, kValueSimpleValue, value);
  std::string summary;
  put_bytes(summary, kSummaryValue, summary_value);

  std::string event;
  put_double(event, kEventWallTime, now_seconds());
  put_int64(event, kEventStep, step);
  put_bytes(event, kEventSummary, summary);
  write_record(event);
}

// TFRecord: uint64 length, masked CRC of those 8 bytes, the data, masked CRC of the data.
void TensorBoardWriter::write_record(std::string_view data) {
  std::string length;
  put_little_endian(length, static_cast<std::uint64_t>(data.size()));
  std::string record = length;
  put_little_endian(record, masked_crc32c(length));
  record += data;
  put_little_endian(record, masked_crc32c(data));
  if (std::fwrite(record.data(), 1, record.size(), file_.get()) != record.size())
    fail("tensorboard: cannot write '{}': {}", path_, std::strerror(errno));
}

void TensorBoardWriter::flush() {
  if (std::fflush(file_.get()) != 0)
    fail("tensorboard: cannot write '{}': {}", path_, std::strerror(errno));
}

void TensorBoardWriter::close() {
  if (std::fclose(file_.release()) != 0)
    fail("tensorboard: cannot write '{}': {}", path_, std::strerror(errno));
}

}  // namespace plinth::cli
