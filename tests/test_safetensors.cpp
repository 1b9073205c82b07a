// safetensors read/write and atomic saving: the format byte for byte, round trips, interop
// with the Python reference library where present, every kind of corrupt file the reader must
// refuse, and the failure modes of saving (missing or read-only directory, full disk).
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <catch2/catch.hpp>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/safetensors.h"

namespace fs = std::filesystem;
using namespace plinth;
using Catch::Contains;

namespace {

// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "plinth-st-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename());
    return names;
  }
};

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A file with the given header text and data section, built without the writer.
std::string file_with(const std::string& header, const std::string& data = "") {
  return u64_le(header.size()) + header + data;
}

void expect_rejected(const std::string& file, const std::string& problem) {
  CAPTURE(problem);
  try {
    parse_safetensors(file, "bad.safetensors");
    FAIL("parse_safetensors accepted a corrupt file");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Contains("bad.safetensors: safetensors: ") && Contains(problem));
    CHECK(what.find('\n') == std::string::npos);
  }
}

// Runs body in a forked child, so it may change process-wide state (its user, its mount
// namespace) without touching this test process, and returns the text body returned.
std::string run_in_child(const std::function<std::string()>& body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string result;
    try {
      result = body();
    } catch (const std::exception& e) {
      result = std::string("unexpected exception: ") + e.what();
    }
    const ssize_t written = ::write(fds[1], result.data(), result.size());
    ::_exit(written == static_cast<ssize_t>(result.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string result;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) result.append(buffer, n);
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return result;
}

bool python_has_safetensors() {
  return std::system("/usr/bin/python3 -c 'import safetensors.numpy' >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("safetensors: a tiny file is encoded byte for byte as the format specifies", "[io]") {
  const std::vector<float> w{1.0f, -2.0f};
  const std::string header =
      R"({"__metadata__":{"step":"7"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  // 82 header bytes padded with spaces to 88 (0x58), then 1.0f and -2.0f little-endian.
  const std::string expected = std::string("\x58\0\0\0\0\0\0\0", 8) + header + "      " +
                               std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  CHECK(encode_safetensors({NamedTensorData::f32("w", {2}, w)}, {{"step", "7"}}) == expected);

  // No metadata, no tensors: "{}" padded to 8.
  CHECK(encode_safetensors({}, {}) == std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
}

TEST_CASE("safetensors: round trip keeps values bit-exact, shapes, order and metadata", "[io]") {
  const float nan_with_payload = std::bit_cast<float>(0x7fc01234u);
  const std::vector<float> weights{
      0.5f, -0.0f, 1e-45f, std::numeric_limits<float>::infinity(), nan_with_payload, 3.14159274f};
  const std::vector<int64_t> step{-(int64_t{1} << 62)};
  const std::vector<uint8_t> rng_state{0, 1, 127, 128, 255};
  const std::vector<NamedTensorData> tensors{
      NamedTensorData::f32("conv1.weight", {3, 1, 2}, weights),
      NamedTensorData::u8("rng", {5}, rng_state),  // leaves what follows unaligned
      NamedTensorData::i64("step", {}, step),
      NamedTensorData::f32("empty", {0, 3}, {}),
  };
  const std::map<std::string, std::string> metadata{
      {"format", "plinth"}, {"lr", "0.001"}, {"note", "line\nbreak, \"quotes\", é"}};
  TempDir dir;
  save_safetensors(dir / "model.safetensors", tensors, metadata);
  const SafetensorsFile file = load_safetensors(dir / "model.safetensors");

  CHECK(file.names() == std::vector<std::string>{"conv1.weight", "rng", "step", "empty"});
  CHECK(file.metadata() == metadata);
  const std::vector<float> loaded = file.float_tensor("conv1.weight");
  REQUIRE(loaded.size() == weights.size());
  CHECK(std::memcmp(loaded.data(), weights.data(), weights.size() * sizeof(float)) == 0);
  CHECK(file.tensor("conv1.weight").shape == std::vector<int64_t>{3, 1, 2});
  CHECK(file.int64_tensor("step") == step);
  CHECK(file.tensor("step").shape.empty());
  const SafetensorsTensor rng = file.tensor("rng");
  CHECK(rng.dtype == SafetensorsDtype::U8);
  CHECK(std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(rng.bytes.data()),
                             reinterpret_cast<const uint8_t*>(rng.bytes.data()) + 5) == rng_state);
  CHECK(file.float_tensor("empty").empty());
  CHECK(file.tensor("empty").shape == std::vector<int64_t>{0, 3});
  CHECK(file.contains("rng"));
  CHECK_FALSE(file.contains("missing"));

  CHECK_THROWS_WITH(file.float_tensor("step"), Contains("tensor \"step\" is I64, expected F32"));
  CHECK_THROWS_WITH(file.int64_tensor("rng"), Contains("tensor \"rng\" is U8, expected I64"));
  CHECK_THROWS_WITH(file.tensor("fc.bias"),
                    Contains("model.safetensors: safetensors: no tensor named \"fc.bias\""));
}

TEST_CASE("safetensors: the writer refuses tensors it cannot describe", "[io]") {
  const std::vector<float> four(4, 1.0f);
  CHECK_THROWS_WITH(encode_safetensors({NamedTensorData::f32("a", {2, 2}, four),
                                        NamedTensorData::f32("a", {4}, four)}),
                    Contains("two tensors are named \"a\""));
  CHECK_THROWS_WITH(encode_safetensors({NamedTensorData::f32("__metadata__", {4}, four)}),
                    Contains("cannot be named \"__metadata__\""));
  CHECK_THROWS_WITH(encode_safetensors({NamedTensorData::f32("a", {3}, four)}),
                    Contains("tensor \"a\" has 16 bytes, but its shape and dtype F32 need 12"));
  CHECK_THROWS_WITH(encode_safetensors({NamedTensorData::f32("a", {-2, -2}, four)}),
                    Contains("negative dimension"));
  CHECK_THROWS_WITH(
      encode_safetensors({NamedTensorData::f32("a", {1, 1, 1, 1, 1, 1, 1, 1, 4}, four)}),
      Contains("rank 9"));
  CHECK_THROWS_WITH(encode_safetensors({NamedTensorData::f32("bad\xff", {4}, four)}),
                    Contains("not valid UTF-8"));
  TempDir dir;
  CHECK_THROWS_WITH(save_safetensors(dir / "x.safetensors", {NamedTensorData::f32("a", {5}, four)}),
                    Contains("x.safetensors: safetensors: tensor \"a\""));
  CHECK(dir.entries().empty());
}

TEST_CASE("safetensors: the reader refuses corrupt files with one clear line", "[io]") {
  const std::string f32x2 = std::string(8, '\1');
  auto one = [](const std::string& shape, const std::string& offsets,
                const std::string& dtype = "F32") {
    return R"({"a":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" +
           offsets + "}}";
  };
  // The shape of a good file, to be sure the cases below fail for their own reason.
  CHECK_NOTHROW(parse_safetensors(file_with(one("[2]", "[0,8]"), f32x2), "good"));

  expect_rejected("", "file is 0 bytes, too short");
  expect_rejected(std::string(7, '\0'), "file is 7 bytes, too short");
  expect_rejected(u64_le(100) + "{}", "header length 100 runs past the end of the 10-byte file");
  expect_rejected(u64_le(uint64_t{1} << 63) + "{}", "header length 9223372036854775808 is over");
  expect_rejected(file_with("not json"), "header is not valid JSON");
  expect_rejected(file_with(R"({"a":)"), "header is not valid JSON");
  expect_rejected(file_with("[1, 2]"), "header is not a JSON object");
  expect_rejected(file_with("\"text\""), "header is not a JSON object");
  expect_rejected(file_with("{\"\xff\":1}"), "header is not valid JSON");
  expect_rejected(file_with(one("[2]", "[0,8]") + "xx", f32x2), "header is not valid JSON");
  expect_rejected(file_with(one("[2]", "[0,16]"), f32x2), "data_offsets [0, 16] do not lie");
  expect_rejected(file_with(one("[2]", "[8,0]"), f32x2), "data_offsets [8, 0] do not lie");
  expect_rejected(file_with(one("[2]", "[0]"), f32x2), "data_offsets is not a pair");
  expect_rejected(file_with(one("[2]", "[0,-8]"), f32x2), "data_offsets is not a pair");
  expect_rejected(file_with(one("[2]", "[0,8.0]"), f32x2), "data_offsets is not a pair");
  expect_rejected(file_with(one("[3]", "[0,8]"), f32x2),
                  "shape and dtype F32 need 12 bytes, but data_offsets span 8");
  expect_rejected(file_with(one("[1099511627776,1099511627776]", "[0,8]"), f32x2),
                  "shape x dtype size overflows 64 bits");
  expect_rejected(file_with(one("[18446744073709551615]", "[0,8]"), f32x2),
                  "shape holds 18446744073709551615");
  expect_rejected(file_with(one("[-2]", "[0,8]"), f32x2), "shape holds -2");
  expect_rejected(file_with(one("[2.0]", "[0,8]"), f32x2), "shape holds 2.0");
  expect_rejected(file_with(one("[1,1,1,1,1,1,1,1,2]", "[0,8]"), f32x2), "rank 9 is more than 8");
  expect_rejected(file_with(one("[[2]]", "[0,8]"), f32x2), "nests deeper");
  expect_rejected(file_with(one("2", "[0,8]"), f32x2), "shape is missing or not an array");
  expect_rejected(file_with(one("[2]", "[0,8]", "F31"), f32x2), "unknown dtype \"F31\"");
  expect_rejected(file_with(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", f32x2),
                  "dtype is missing");
  expect_rejected(file_with(R"({"a":[]})"), "tensor \"a\": entry is not an object");
  expect_rejected(file_with(R"({"__metadata__":{"epoch":3}})"),
                  "__metadata__ value \"epoch\" is not a string");
  expect_rejected(file_with(R"({"__metadata__":["x"]})"), "__metadata__ is not an object");
  expect_rejected(file_with(R"({"a":{},"a":{}})"), "header has the key \"a\" twice");
  expect_rejected(file_with(R"({"__metadata__":{"k":"1","k":"2"}})"), "key \"k\" twice");

  const std::string two_tensors_overlapping =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_rejected(file_with(two_tensors_overlapping, std::string(12, '\0')),
                  "tensor \"b\" starts at byte 4, but the data before it ends at byte 8 "
                  "(an overlap)");
  const std::string two_tensors_with_gap =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  expect_rejected(file_with(two_tensors_with_gap, std::string(12, '\0')), "(a gap)");
  expect_rejected(file_with(one("[1]", "[4,8]"), f32x2), "starts at byte 4");
  expect_rejected(file_with(one("[2]", "[0,8]"), f32x2 + "junk"),
                  "tensors cover 8 bytes, but the data section is 12 bytes");
  expect_rejected(file_with("{}", "x"), "tensors cover 0 bytes");

  // A valid file cut short: in the data, at the end of the header, inside the header.
  const std::vector<float> values{1, 2, 3};
  const std::string good = encode_safetensors({NamedTensorData::f32("a", {3}, values)});
  expect_rejected(good.substr(0, good.size() - 1),
                  "data_offsets [0, 12] do not lie within the 11-byte data section");
  expect_rejected(good.substr(0, good.size() - 12), "within the 0-byte data section");
  expect_rejected(good.substr(0, 20), "runs past the end of the 20-byte file");
}

TEST_CASE("safetensors: load_safetensors names the file it cannot read", "[io]") {
  TempDir dir;
  CHECK_THROWS_WITH(load_safetensors(dir / "absent.safetensors"),
                    Contains("absent.safetensors: cannot open: No such file or directory"));
  write_file_atomically(dir / "short.safetensors", "1234567");
  CHECK_THROWS_WITH(load_safetensors(dir / "short.safetensors"),
                    Contains("short.safetensors: safetensors: file is 7 bytes"));
}

TEST_CASE("safetensors: files interoperate with the Python safetensors library", "[io]") {
  if (!python_has_safetensors()) {
    WARN("SKIPPED: /usr/bin/python3 cannot import safetensors (pip install safetensors)");
    return;
  }
  TempDir dir;
  const std::vector<float> weights{0.25f, -1.5f, 3.0f, 1e-30f, -0.0f, 65504.0f};
  const std::vector<int64_t> counters{-5, int64_t{1} << 40};
  const std::vector<uint8_t> state{9, 8, 7, 255};
  save_safetensors(
      dir / "ours.safetensors",
      {NamedTensorData::f32("fc.weight", {2, 3}, weights),
       NamedTensorData::i64("counters", {2}, counters), NamedTensorData::u8("state", {4}, state)},
      {{"origin", "plinth"}});
  save_safetensors(dir / "tiny_ours.safetensors",
                   {NamedTensorData::f32("w", {2}, std::vector<float>{1.0f, -2.0f})},
                   {{"step", "7"}});

  std::ofstream(dir / "check.py") << R"(
import sys, numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file, save
d = sys.argv[1]
t = load_file(d + "/ours.safetensors")
assert t["fc.weight"].dtype == np.float32 and t["fc.weight"].shape == (2, 3)
expected = np.array([0.25, -1.5, 3.0, 1e-30, -0.0, 65504.0], np.float32)
assert t["fc.weight"].tobytes() == expected.tobytes()
assert t["counters"].dtype == np.int64 and list(t["counters"]) == [-5, 1 << 40]
assert t["state"].dtype == np.uint8 and list(t["state"]) == [9, 8, 7, 255]
with safe_open(d + "/ours.safetensors", "np") as f:
    assert f.metadata() == {"origin": "plinth"}
tiny = save({"w": np.array([1.0, -2.0], np.float32)}, metadata={"step": "7"})
assert tiny == open(d + "/tiny_ours.safetensors", "rb").read(), "tiny file differs"
save_file({"conv.weight": (np.arange(24, dtype=np.float32) * 0.5 - 3).reshape(2, 3, 2, 2),
           "steps": np.array([[1, -2], [1 << 50, 0]], np.int64),
           "mask": np.array([1, 0, 1], np.uint8),
           "half": np.array([1.5], np.float16)},
          d + "/theirs.safetensors", metadata={"origin": "python", "epoch": "3"})
)";
  const std::string command = "/usr/bin/python3 " + (dir / "check.py") + " " + dir.path.string();
  REQUIRE(std::system(command.c_str()) == 0);

  const SafetensorsFile theirs = load_safetensors(dir / "theirs.safetensors");
  CHECK(theirs.metadata() ==
        std::map<std::string, std::string>{{"origin", "python"}, {"epoch", "3"}});
  std::vector<float> expected(24);
  for (int i = 0; i < 24; ++i) expected[i] = i * 0.5f - 3;
  CHECK(theirs.float_tensor("conv.weight") == expected);
  CHECK(theirs.tensor("conv.weight").shape == std::vector<int64_t>{2, 3, 2, 2});
  CHECK(theirs.int64_tensor("steps") == std::vector<int64_t>{1, -2, int64_t{1} << 50, 0});
  CHECK(theirs.tensor("steps").shape == std::vector<int64_t>{2, 2});
  CHECK(theirs.tensor("mask").dtype == SafetensorsDtype::U8);
  CHECK(theirs.tensor("half").dtype == SafetensorsDtype::F16);
  CHECK(theirs.tensor("half").bytes.size() == 2);
}

TEST_CASE("atomic file: overwriting replaces the whole file and leaves nothing else", "[io]") {
  TempDir dir;
  const std::string path = dir / "ckpt.safetensors";
  write_file_atomically(path, std::string(10000, 'a'));
  write_file_atomically(path, "short");
  CHECK(read_file(path, 100) == "short");
  write_file_atomically(path, "");
  CHECK(read_file(path, 100).empty());
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});

  // A relative path lands in the current directory, whose sync must work too.
  const fs::path previous = fs::current_path();
  fs::current_path(dir.path);
  CHECK_NOTHROW(write_file_atomically("relative.bin", "r"));
  fs::current_path(previous);
  CHECK(read_file(dir / "relative.bin", 10) == "r");
}

TEST_CASE("atomic file: a missing directory or a directory in the way is an error", "[io]") {
  TempDir dir;
  CHECK_THROWS_WITH(write_file_atomically(dir / "no/such/dir/model.safetensors", "x"),
                    Contains("no/such/dir/model.safetensors: cannot save: cannot create") &&
                        Contains("No such file or directory"));
  CHECK(dir.entries().empty());

  fs::create_directory(dir.path / "taken");
  CHECK_THROWS_WITH(write_file_atomically(dir / "taken", "x"),
                    Contains("taken: cannot save: it is a directory"));
  CHECK(dir.entries() == std::vector<std::string>{"taken"});
}

TEST_CASE("atomic file: a read-only directory is an error and keeps the old file", "[io]") {
  TempDir dir;
  fs::permissions(dir.path, fs::perms(0755));
  const fs::path ro = dir.path / "ro";
  fs::create_directory(ro);
  const std::string path = (ro / "model.safetensors").string();
  write_file_atomically(path, "old contents");
  fs::permissions(ro, fs::perms(0555));

  // Root ignores permissions, so the attempt runs in a child that gives root up.
  const std::string outcome = run_in_child([&]() -> std::string {
    if (::geteuid() == 0 &&
        (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0))
      return std::string("SKIP: cannot drop root: ") + std::strerror(errno);
    try {
      write_file_atomically(path, "new contents");
      return "no error";
    } catch (const Error& e) {
      return e.what();
    }
  });
  fs::permissions(ro, fs::perms(0755));
  if (outcome.rfind("SKIP: ", 0) == 0) {
    WARN("SKIPPED: " << outcome.substr(6));
    return;
  }
  CHECK_THAT(outcome, Contains("model.safetensors: cannot save: cannot create") &&
                          Contains("Permission denied"));
  CHECK(read_file(path, 100) == "old contents");
  CHECK(fs::directory_iterator(ro)->path().filename() == "model.safetensors");
  CHECK(std::distance(fs::directory_iterator(ro), fs::directory_iterator()) == 1);
}

TEST_CASE("atomic file: a full disk is an error, removes the temporary and keeps the old file",
          "[io]") {
  TempDir dir;
  const std::string mount_point = dir / "small";
  fs::create_directory(mount_point);
  const std::string path = mount_point + "/model.safetensors";

  // A 64 KiB tmpfs, mounted in a private mount namespace of a child process: nothing
  // outside the child ever sees it, and it vanishes when the child exits.
  const std::string outcome = run_in_child([&]() -> std::string {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=64k") != 0)
      return std::string("SKIP: cannot mount a small tmpfs here: ") + std::strerror(errno);
    write_file_atomically(path, "old contents");
    std::string result;
    try {
      write_file_atomically(path, std::string(256 * 1024, 'x'));
      result = "no error";
    } catch (const Error& e) {
      result = e.what();
    }
    result += read_file(path, 1 << 20) == "old contents" ? " | old file intact" : " | changed";
    const auto files = std::distance(fs::directory_iterator(mount_point), fs::directory_iterator());
    return result + (files == 1 ? " | nothing left behind" : " | temporary left behind");
  });
  if (outcome.rfind("SKIP: ", 0) == 0) {
    WARN("SKIPPED: " << outcome.substr(6));
    return;
  }
  CHECK_THAT(outcome, Contains("model.safetensors: cannot save: writing") &&
                          Contains("No space left on device") && Contains("old file intact") &&
                          Contains("nothing left behind"));
  CHECK(dir.entries() == std::vector<std::string>{"small"});
}

TEST_CASE("atomic file: read_file refuses missing, unreadable and oversized files", "[io]") {
  TempDir dir;
  CHECK_THROWS_WITH(read_file(dir / "absent", 10),
                    Contains("absent: cannot open: No such file or directory"));
  CHECK_THROWS_WITH(read_file(dir.path.string(), 10),
                    Contains(dir.path.string() + ": is a directory, not a regular file"));
  write_file_atomically(dir / "eleven", "hello world");
  CHECK(read_file(dir / "eleven", 11) == "hello world");
  CHECK_THROWS_WITH(read_file(dir / "eleven", 10),
                    Contains("eleven: file is 11 bytes, more than the limit of 10"));
  // Devices and pipes have no size up front and may never end: they are refused unread.
  CHECK_THROWS_WITH(read_file("/dev/zero", 1000),
                    Contains("/dev/zero: is a character device, not a regular file"));
}
