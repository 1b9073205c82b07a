// TensorBoard event files: the CRC against its published check value, then files written by
// TensorBoardWriter read back by an independent decoder here (framing, both CRCs, protobuf
// fields) and by scripts/read_tfevents.py, and the errors a user can meet.
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/tensorboard.h"
#include "engine/error.h"

namespace fs = std::filesystem;
using namespace plinth;
using namespace plinth::cli;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "plinth-tb-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<fs::path> files() const {
    std::vector<fs::path> found;
    for (const auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file()) found.push_back(e.path());
    return found;
  }
};

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// A protobuf reader just big enough for Event, Summary and Summary.Value.
struct Cursor {
  std::string_view bytes;
  size_t at = 0;

  bool done() const { return at == bytes.size(); }
  std::uint64_t little_endian(size_t n) {
    REQUIRE(at + n <= bytes.size());
    std::uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
      v |= std::uint64_t(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
    at += n;
    return v;
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      REQUIRE(at < bytes.size());
      auto b = static_cast<unsigned char>(bytes[at++]);
      v |= std::uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    FAIL("varint longer than 10 bytes");
    return 0;
  }
  std::string_view length_delimited() {
    std::uint64_t n = varint();
    REQUIRE(at + n <= bytes.size());
    std::string_view s = bytes.substr(at, n);
    at += n;
    return s;
  }
};

struct Scalar {
  std::string tag;
  float value;
};

struct Event {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;
  std::vector<Scalar> scalars;
};

Scalar decode_value(std::string_view bytes) {
  Cursor c{bytes};
  Scalar s{};
  std::uint32_t seen = 0;
  while (!c.done()) {
    std::uint64_t key = c.varint();
    if (key == (1 << 3 | 2)) {
      s.tag = c.length_delimited();
      seen |= 1;
    } else if (key == (2 << 3 | 5)) {
      s.value = std::bit_cast<float>(static_cast<std::uint32_t>(c.little_endian(4)));
      seen |= 2;
    } else {
      FAIL("unexpected Summary.Value key " << key);
    }
  }
  REQUIRE(seen == 3);
  return s;
}

Event decode_event(std::string_view bytes) {
  Cursor c{bytes};
  Event e;
  while (!c.done()) {
    std::uint64_t key = c.varint();
    if (key == (1 << 3 | 1)) {
      e.wall_time = std::bit_cast<double>(c.little_endian(8));
    } else if (key == (2 << 3 | 0)) {
      e.step = static_cast<std::int64_t>(c.varint());
    } else if (key == (3 << 3 | 2)) {
      e.file_version = c.length_delimited();
    } else if (key == (5 << 3 | 2)) {
      Cursor summary{c.length_delimited()};
      while (!summary.done()) {
        REQUIRE(summary.varint() == (1 << 3 | 2));
        e.scalars.push_back(decode_value(summary.length_delimited()));
      }
    } else {
      FAIL("unexpected Event key " << key);
    }
  }
  return e;
}

// Splits TFRecord framing, checking both masked CRCs of every record.
std::vector<Event> read_events(const fs::path& path) {
  std::string file = read_all(path);
  Cursor c{file};
  std::vector<Event> events;
  while (!c.done()) {
    std::string_view length_bytes = c.bytes.substr(c.at, 8);
    std::uint64_t length = c.little_endian(8);
    REQUIRE(c.little_endian(4) == masked_crc32c(length_bytes));
    REQUIRE(c.at + length <= file.size());
    std::string_view data = c.bytes.substr(c.at, length);
    c.at += length;
    REQUIRE(c.little_endian(4) == masked_crc32c(data));
    events.push_back(decode_event(data));
  }
  return events;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

TEST_CASE("tensorboard crc32c: check value and masking", "[logs]") {
  CHECK(crc32c("123456789") == 0xE3069283u);  // the CRC-32C catalogue's check value
  CHECK(crc32c("") == 0u);
  std::uint32_t crc = 0xE3069283u;
  CHECK(masked_crc32c("123456789") == ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST_CASE("tensorboard writer: scalars read back with tags, values and steps", "[logs]") {
  TempDir dir;
  double before = now_seconds();
  std::string path;
  {
    TensorBoardWriter writer((dir.path / "run1").string());
    path = writer.path();
    writer.add_scalar("loss/train", 0.6931f, 1);
    writer.add_scalar("accuracy/val", 0.875f, 1);
    writer.add_scalar("loss/train", -1.5e-8f, 2);
    writer.add_scalar("lr", 1e-3f, std::int64_t{1} << 40);  // a multi-byte varint
    writer.add_scalar("neg", 3.0f, -7);                     // negative steps take ten bytes
    writer.flush();
    REQUIRE(fs::file_size(path) > 0);  // flushed while the writer is still open
  }
  double after = now_seconds();

  auto files = dir.files();
  REQUIRE(files.size() == 1);
  CHECK(files[0].string() == path);
  std::string name = files[0].filename().string();
  CHECK(name.starts_with("events.out.tfevents."));
  CHECK(name.ends_with(".plinth"));

  auto events = read_events(path);
  REQUIRE(events.size() == 6);
  CHECK(events[0].file_version == "brain.Event:2");
  CHECK(events[0].scalars.empty());
  for (const auto& e : events) {
    CHECK(e.wall_time >= before - 1);
    CHECK(e.wall_time <= after + 1);
  }
  struct Expected {
    const char* tag;
    float value;
    std::int64_t step;
  };
  const Expected expected[] = {{"loss/train", 0.6931f, 1},
                               {"accuracy/val", 0.875f, 1},
                               {"loss/train", -1.5e-8f, 2},
                               {"lr", 1e-3f, std::int64_t{1} << 40},
                               {"neg", 3.0f, -7}};
  for (size_t i = 0; i < std::size(expected); ++i) {
    const Event& e = events[i + 1];
    INFO("event " << i + 1);
    REQUIRE(e.scalars.size() == 1);
    CHECK(e.scalars[0].tag == expected[i].tag);
    CHECK(e.scalars[0].value == expected[i].value);  // floats travel bit for bit
    CHECK(e.step == expected[i].step);
    CHECK(e.file_version.empty());
  }
}

TEST_CASE("tensorboard writer: two writers in one directory get separate files", "[logs]") {
  TempDir dir;
  TensorBoardWriter a(dir.path.string());
  TensorBoardWriter b(dir.path.string());
  a.add_scalar("x", 1.0f, 1);
  b.add_scalar("x", 2.0f, 1);
  a.flush();
  b.flush();
  CHECK(a.path() != b.path());
  REQUIRE(dir.files().size() == 2);
  CHECK(read_events(a.path())[1].scalars[0].value == 1.0f);
  CHECK(read_events(b.path())[1].scalars[0].value == 2.0f);
}

TEST_CASE("tensorboard writer: a directory that cannot be created is an Error", "[logs]") {
  TempDir dir;
  fs::path blocker = dir.path / "not_a_dir";
  std::ofstream(blocker) << "a file where a directory should be";
  // A regular file in the way fails for root too, unlike missing permissions.
  REQUIRE_THROWS_AS(TensorBoardWriter((blocker / "run").string()), Error);
  REQUIRE_THROWS_WITH(TensorBoardWriter((blocker / "run").string()),
                      Catch::Contains("tensorboard") && Catch::Contains("not_a_dir"));
}

TEST_CASE("tensorboard writer: a write that fails is an Error", "[logs]") {
  TempDir dir;
  // A file size limit makes the kernel refuse writes past 4 KiB, like a full disk. It is
  // set in a child process so no other test is limited.
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG from write() instead of being killed
    rlimit limit{4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(2);
    try {
      TensorBoardWriter writer(dir.path.string());
      for (int step = 0; step < 1000; ++step) writer.add_scalar("loss", 0.5f, step);
      writer.flush();
    } catch (const Error& e) {
      ::_exit(std::string(e.what()).find("cannot write") != std::string::npos ? 0 : 3);
    }
    ::_exit(1);  // 40 KB of records went through a 4 KiB limit without an error
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// The run's last records reach the disk only when the file is closed: a failure there is
// an Error too, not lost in a destructor.
TEST_CASE("tensorboard writer: a close that fails is an Error", "[logs]") {
  TempDir dir;
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{64, 64};  // less than the records, which stay in stdio's buffer until close
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(2);
    try {
      TensorBoardWriter writer(dir.path.string());
      for (int step = 0; step < 3; ++step) writer.add_scalar("loss", 0.5f, step);
      writer.close();
    } catch (const Error& e) {
      ::_exit(std::string(e.what()).find("cannot write") != std::string::npos ? 0 : 3);
    }
    ::_exit(1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("tensorboard writer: scripts/read_tfevents.py reads the same file", "[logs]") {
  if (std::system("python3 -c 'import sys' >/dev/null 2>&1") != 0) {
    WARN("SKIPPED: no python3");
    return;
  }
  TempDir dir;
  std::string path;
  {
    TensorBoardWriter writer(dir.path.string());
    path = writer.path();
    writer.add_scalar("loss", 0.25f, 3);
    writer.add_scalar("accuracy", 0.9010f, 10);
  }
  fs::path out = dir.path / "read.json";
  std::string command = fmt::format("python3 '{}/scripts/read_tfevents.py' --json '{}' > '{}'",
                                    PLINTH_SOURCE_DIR, path, out.string());
  REQUIRE(std::system(command.c_str()) == 0);
  auto rows = nlohmann::json::parse(read_all(out));
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["tag"] == "loss");
  CHECK(rows[0]["step"] == 3);
  CHECK(rows[0]["value"].get<float>() == 0.25f);
  CHECK(rows[1]["tag"] == "accuracy");
  CHECK(rows[1]["step"] == 10);
  CHECK(rows[1]["value"].get<float>() == 0.9010f);
}
