// Hostile files through the real CLI, round two: files that never end, compressed bombs,
// JSON nested a million levels, labels without an output, symlink loops, huge keys. Each
// is one clear error line (status 1), never a hang, a crash or a silently wrong result.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <zlib.h>

#include <filesystem>
#include <random>

#include "engine/checkpoint.h"
#include "robustness_fixtures.h"

using namespace plinth;
using namespace plinth::test;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// A checkpoint of the tiny CNN after one epoch on d's data.
std::string trained_checkpoint(const SmallData& d) {
  const std::string ckpt = d.dir + "/trained.safetensors";
  const CommandResult r = run_cli(d.args("--save " + ckpt));
  INFO(r.output);
  REQUIRE(r.status == 0);
  return ckpt;
}

std::string fifo(const std::string& path) {
  fs::remove(path);
  REQUIRE(::mkfifo(path.c_str(), 0644) == 0);
  return path;
}

// Bytes as a gzip member.
std::string gzip(const std::string& bytes) {
  uLongf size = compressBound(static_cast<uLong>(bytes.size())) + 64;
  std::string out(size, '\0');
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

TEST_CASE("hostile files: a FIFO, a directory or a device given as a file is refused unread",
          "[robustness][hostile]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-fifo");
  const std::string ckpt = trained_checkpoint(d);
  const std::string pipe = fifo(d.dir + "/pipe");
  // A FIFO blocks its reader until a writer comes: each of these used to wait for ever.
  const std::vector<std::pair<std::string, std::string>> cases{
      {"train --device cpu --epochs 1 --data " + d.dir + " --model " + pipe, pipe},
      {"eval --device cpu --data " + d.dir + " --checkpoint " + pipe, pipe},
      {"train --device cpu --epochs 1 --data " + d.dir + " --resume " + pipe, pipe},
      {"train --device cpu --epochs 1 --data " + d.dir + " --init-from " + pipe, pipe},
      {"predict --device cpu --checkpoint " + ckpt + " --images " + pipe, pipe},
      {"predict --device cpu --checkpoint " + ckpt + " " + pipe, pipe},
  };
  for (const auto& [args, file] : cases) {
    CAPTURE(args);
    expect_clean_error(run_cli_within(args, 30, d.dir + "/fifo.log"), file,
                       "is a FIFO, not a regular file");
  }
  // Data files found in --data: the training images as a FIFO.
  fs::remove(d.images());
  fifo(d.images());
  expect_clean_error(run_cli_within(d.args(), 30, d.dir + "/fifo.log"), d.images(),
                     "is a FIFO, not a regular file");
  // /dev/zero never ends (eval used to read 16 GiB of it); a directory is no file.
  expect_clean_error(run_cli_within("eval --device cpu --data " + d.dir + " --checkpoint /dev/zero",
                                    30, d.dir + "/zero.log"),
                     "/dev/zero", "is a character device, not a regular file");
  expect_clean_error(run_cli_within("train --device cpu --data " + d.dir + " --model /dev/zero", 30,
                                    d.dir + "/zero.log"),
                     "/dev/zero", "is a character device, not a regular file");
  expect_clean_error(run_cli_within("eval --device cpu --data " + d.dir + " --checkpoint " + d.dir,
                                    30, d.dir + "/dir.log"),
                     d.dir, "is a directory, not a regular file");
}

TEST_CASE("hostile files: a gzip file whose header and trailer lie costs only what it holds",
          "[robustness][hostile]") {
#if defined(__SANITIZE_ADDRESS__)
  WARN("SKIPPED: AddressSanitizer reserves more address space than the limit this test sets");
  return;
#endif
  REQUIRE_FASHION();
  const SmallData d("hostile-bomb");
  const std::string ckpt = trained_checkpoint(d);
  // 2.3 MB of random bytes behind a header claiming 8 x 16383 x 16383 images (2.1 GB; a
  // 2.3 MB deflate stream could hold that much), and a trailer whose size field agrees
  // with the header: a reader that trusted either would reserve 2.1 GB up front.
  std::string bytes = idx_header({8, 16383, 16383});
  std::mt19937 rng(7);
  for (int i = 0; i < 2'300'000; ++i) bytes += static_cast<char>(rng());
  std::string bomb = gzip(bytes);
  const uint32_t claimed = 16 + 8u * 16383u * 16383u;
  for (int i = 0; i < 4; ++i) bomb[bomb.size() - 4 + i] = static_cast<char>(claimed >> (8 * i));
  const std::string images = d.images() + ".gz";
  fs::remove(d.images());
  spit(images, bomb);
  // Under a 1.5 GB address-space limit: memory that follows the stream stays far below.
  const std::string limit = "ulimit -v 1500000; " + std::string(PLINTH_CLI_PATH) + " ";
  expect_clean_error(run_shell(limit + d.args()), images, "corrupt gzip data");
  expect_clean_error(run_shell(limit + "predict --device cpu --limit 1 --checkpoint " + ckpt +
                               " --images " + images),
                     images, "corrupt gzip data");
}

TEST_CASE(
    "hostile files: JSON nested 10^6 levels is one clear error, in a model file or a "
    "checkpoint's metadata",
    "[robustness][hostile]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-deep");
  const std::string deep_array = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  // A layer object nested a million levels deep (signal 11 while the model was copied).
  std::string deep_layer;
  for (int i = 0; i < 1'000'000; ++i) deep_layer += "{\"a\":";
  deep_layer += "1" + std::string(1'000'000, '}');
  const std::string model = d.dir + "/deep.json";
  spit(model, R"({"input": [1, 28, 28], "layers": [)" + deep_layer + "]}");
  expect_clean_error(
      run_cli(fmt::format("train --device cpu --data {} --model {} --epochs 1", d.dir, model)),
      model, "nests deeper than 64 levels");

  const std::string ckpt = trained_checkpoint(d), bytes = slurp(ckpt);
  const std::string optim = slurp(optimizer_state_path(ckpt));
  for (const char* field : {"model", "config", "history"}) {
    CAPTURE(field);
    spit(ckpt, bytes);
    rewrite_metadata(ckpt, {{field, deep_array}});
    const std::string problem = fmt::format("malformed plinth metadata: '{}': nests deeper", field);
    expect_clean_error(run_cli(d.args("--epochs 2 --resume " + ckpt)), ckpt, problem);
    expect_clean_error(run_cli("eval --device cpu --data " + d.dir + " --checkpoint " + ckpt), ckpt,
                       problem);
  }
}

TEST_CASE(
    "hostile files: labels outside the model's classes name the file, the index and the "
    "class count",
    "[robustness][hostile]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-labels");
  const std::string ckpt = trained_checkpoint(d);
  const std::string train_labels = slurp(d.labels());
  const std::string test_labels_path = d.dir + "/t10k-labels-idx1-ubyte";
  const std::string test_labels = slurp(test_labels_path);
  // Label 20 in a 10-output model: it used to add no loss but count in every average.
  std::string bad = train_labels;
  bad[8 + 5] = 20;
  spit(d.labels(), bad);
  expect_clean_error(run_cli(d.args()), d.labels(),
                     "sample 5: label 20 is outside the model's 10 classes (0 to 9)");
  spit(d.labels(), train_labels);
  bad = test_labels;
  bad[8 + 3] = 20;
  spit(test_labels_path, bad);
  expect_clean_error(run_cli(d.args()), test_labels_path,
                     "sample 3: label 20 is outside the model's 10 classes (0 to 9)");
  expect_clean_error(run_cli("eval --device cpu --data " + d.dir + " --checkpoint " + ckpt),
                     test_labels_path,
                     "sample 3: label 20 is outside the model's 10 classes (0 to 9)");
  // Validation images come from the training file: its index is the file's.
  spit(test_labels_path, test_labels);
  bad = train_labels;
  bad[8 + 590] = 200;
  spit(d.labels(), bad);
  expect_clean_error(run_cli(d.args()), d.labels(), "sample 590: label 200");
  // With a class subset the labels are renumbered; more classes than outputs is refused.
  spit(d.labels(), train_labels);
  expect_clean_error(run_cli(d.args("--classes 0,1,2,3,4,5,6,7,8,9,10")), "--classes",
                     "11 classes, but the model has 10 outputs");
}

TEST_CASE("hostile files: a symlink loop under --data or as --model is one clear error",
          "[robustness][hostile]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-loop");
  fs::remove(d.images());
  fs::create_symlink(d.images(), d.images());  // a link to itself
  expect_clean_error(run_cli(d.args()), d.images(), "Too many levels of symbolic links");
  const std::string loop = d.dir + "/loop";
  fs::create_symlink(loop, loop);
  expect_clean_error(
      run_cli("train --device cpu --epochs 1 --data " + loop + " --model " + d.model), loop,
      "Too many levels of symbolic links");
  expect_clean_error(run_cli("train --device cpu --epochs 1 --data " + d.dir + " --model " + loop),
                     loop, "Too many levels of symbolic links");
}

TEST_CASE("hostile files: a 10 MB unknown key in a model file is cut in the one-line error",
          "[robustness][hostile]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-key");
  const std::string model = d.dir + "/key.json";
  spit(model, R"({"input": [1, 28, 28], ")" + std::string(10'000'000, 'k') +
                  R"(": 1, "layers": [{"type": "flatten"}]})");
  const CommandResult r =
      run_cli("train --device cpu --epochs 1 --data " + d.dir + " --model " + model);
  expect_clean_error(r, model, "unknown field 'kkkk");
  CHECK(r.output.size() < 400);
}
