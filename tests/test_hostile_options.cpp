// Command-line values that crashed, hung, or meant something else, round two: every number
// goes through one strict parser whose error names the option and the text, every option
// means what it says, and nothing is loaded or allocated before the values are checked.
#include <catch2/catch.hpp>

#include <filesystem>

#include "engine/checkpoint.h"
#include "robustness_fixtures.h"

using namespace plinth;
using namespace plinth::test;
using Catch::Contains;
namespace fs = std::filesystem;

TEST_CASE("hostile options: bench's repeats and time-to-accuracy batch are checked first",
          "[robustness][hostile][cli]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-bench");
  const std::string bench = "bench --device cpu --data " + d.dir + " --batch-sizes 32 ";
  // --repeats 0 segfaulted (the median of no windows), --tta-batch 0 died of SIGFPE and
  // --tta-batch -8 met a resume error about batches.
  for (const char* repeats : {"0", "-3"})
    expect_clean_error(run_cli(bench + "--repeats " + repeats), "--repeats",
                       fmt::format("expects an integer from 1 to 1000, got {}", repeats));
  for (const char* batch : {"0", "-8"})
    expect_clean_error(run_cli(bench + "--time-to-accuracy --tta-batch " + batch), "--tta-batch",
                       fmt::format("expects an integer from 1 to 2147483647, got {}", batch));
  expect_clean_error(run_cli("bench --device cpu --batch-sizes 32,abc"),
                     "plinth bench: --batch-sizes item", "expects an integer from 1 to");
  expect_clean_error(run_cli("bench --device cpu --batch-sizes 32,,64"), "--batch-sizes",
                     "without empty items, got '32,,64'");
  expect_clean_error(run_cli("bench --device cpu --window nan"), "--window",
                     "expects a finite number");
}

TEST_CASE("hostile options: --lr-multiplier and --augment values are finite numbers in range",
          "[robustness][hostile][cli]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-numbers");
  // conv1=nan trained to NaN weights the NaN check never saw; conv1=-1 trained uphill; the
  // others ended in "internal error: stod".
  for (const char* factor : {"nan", "abc", "1e400", "inf"})
    expect_clean_error(run_cli(d.args(fmt::format("--lr-multiplier conv1={}", factor))),
                       "--lr-multiplier 'conv1'",
                       fmt::format("expects a finite number from 0 to 1000000, got '{}'", factor));
  expect_clean_error(run_cli(d.args("--lr-multiplier conv1=-1")), "--lr-multiplier 'conv1'",
                     "expects a number from 0 to 1000000, got '-1'");
  expect_clean_error(run_cli(d.args("--lr-multiplier conv1")), "--lr-multiplier",
                     "expects LAYER=FACTOR, got 'conv1'");
  expect_clean_error(run_cli(d.args("--lr-multiplier nosuch=0.5")), "--lr-multiplier",
                     "the model has no layer named 'nosuch'");
  for (const char* shift : {"abc", "1e999", "nan"})
    expect_clean_error(run_cli(d.args(fmt::format("--augment shift={}", shift))), "--augment shift",
                       fmt::format("expects a finite number, got '{}'", shift));
  expect_clean_error(run_cli(d.args("--augment flip=maybe")), "--augment",
                     "expects none or shift=PX,rotate=DEG,scale=F,flip[=0|1],contrast=F,"
                     "brightness=F,cutout=PX, got 'flip=maybe'");
  expect_clean_error(run_cli(d.args("--augment contrast=2")), "--augment",
                     "contrast: expected a number from 0 to 1, got 2");
  expect_clean_error(run_cli(d.args("--strong-augment cutout=3")), "--strong-augment",
                     "only makes sense with --unlabelled");
  expect_clean_error(run_cli(d.args("--unlabelled rest")), "--unlabelled rest",
                     "every training image is labelled");
  expect_clean_error(run_cli(d.args("--unlabelled /nonexistent/images")), "--unlabelled",
                     "no such directory or file");
  // The device number too: "cuda:1abc" was device 1.
  expect_clean_error(run_cli(d.args("--device cuda:1abc")), "--device cuda:N",
                     "expects an integer from 0 to 1023, got '1abc'");
}

TEST_CASE("hostile options: options mean what they say or are refused",
          "[robustness][hostile][cli]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-meaning");
  // --max-steps -5 meant no limit, 0 took one step.
  for (const char* steps : {"-5", "0"})
    expect_clean_error(run_cli(d.args(fmt::format("--max-steps {}", steps))), "--max-steps",
                       fmt::format("expects an integer from 1 to 1125899906842624, got {}", steps));
  // --early-stopping-min-delta nan stopped after one epoch.
  expect_clean_error(run_cli(d.args("--early-stopping 2 --early-stopping-min-delta nan")),
                     "--early-stopping-min-delta", "expects a finite number");
  // --classes ,,, meant all classes.
  for (const char* classes : {",,,", "1,,2", "1,", "a"})
    expect_clean_error(run_cli(d.args(fmt::format("--classes {}", classes))), "--classes", "");
  // --reset nosuch was ignored while --freeze nosuch is an error.
  const std::string ckpt = d.dir + "/c.safetensors";
  REQUIRE(run_cli(d.args("--save " + ckpt)).status == 0);
  expect_clean_error(run_cli(d.args("--init-from " + ckpt + " --reset nosuch")),
                     "--reset: the model has no layer named 'nosuch'", "");
  expect_clean_error(run_cli(d.args("--freeze nosuch")),
                     "--freeze: the model has no layer named 'nosuch'", "");
  // predict --images X a.pgm ignored the PGM.
  expect_clean_error(
      run_cli("predict --device cpu --checkpoint " + ckpt + " --images " + d.images() + " a.pgm"),
      "plinth predict", "give --images FILE or image files, not both");
}

TEST_CASE("hostile options: --augment flip=0 turns flipping off, flip and flip=1 on",
          "[robustness][hostile][cli]") {
  REQUIRE_FASHION();
  const SmallData d("hostile-flip");
  const std::string ckpt = d.dir + "/c.safetensors";
  auto flips = [&](const std::string& spec) {
    const CommandResult r = run_cli(d.args("--max-steps 1 --save " + ckpt + " --augment " + spec));
    INFO(r.output);
    REQUIRE(r.status == 0);
    return read_checkpoint_meta(ckpt).model["training"]["augment"]["horizontal_flip"].get<bool>();
  };
  CHECK_FALSE(flips("flip=0"));
  CHECK_FALSE(flips("shift=1,flip=false"));
  CHECK(flips("flip"));
  CHECK(flips("flip=1"));
  CHECK(flips("flip=true"));
}
