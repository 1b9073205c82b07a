// The command line as a user meets it: devices, errors, a short real run.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cli/common.h"
#include "engine/device.h"
#include "engine_fixtures.h"
#include "robustness_fixtures.h"

using namespace plinth;

namespace {

// (command, --option) pairs; the command is "" for an option shown without one.
using OptionUses = std::set<std::pair<std::string, std::string>>;

bool is_plinth(const std::string& word) {
  return word == "plinth" || (word.size() > 7 && word.compare(word.size() - 7, 7, "/plinth") == 0);
}

// The --options of each `plinth <command>` in a shell line (build/plinth, plinth, ...).
// A pipe or separator ends the command: what follows belongs to another program.
void add_shell_uses(const std::string& line, OptionUses& out) {
  std::istringstream in(line);
  std::string word, command;
  bool next_is_command = false;
  while (in >> word) {
    if (word == "|" || word == "||" || word == "&&" || word == ";") {
      command.clear();
      next_is_command = false;
    } else if (is_plinth(word)) {
      command.clear();
      next_is_command = true;
    } else if (next_is_command) {
      if (word[0] != '-') command = word;  // `plinth --help` names no command
      next_is_command = false;
    } else if (!command.empty() && word.rfind("--", 0) == 0) {
      out.insert({command, word.substr(0, word.find('='))});
    }
  }
}

std::string without_comment(const std::string& line) {
  for (size_t i = 0; i < line.size(); ++i)
    if (line[i] == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(line[i - 1]))))
      return line.substr(0, i);
  return line;
}

// Every option a Markdown text shows: `plinth <command> ... --option` in ```sh blocks (with
// \ continuations and # comments), on "$ " lines of other blocks and in inline code, and
// inline code that is a bare `--option ...` (recorded under the command "").
OptionUses markdown_option_uses(const std::string& markdown) {
  OptionUses out;
  std::istringstream in(markdown);
  std::string line, prose, fence_language, command_line;
  bool in_fence = false;
  while (std::getline(in, line)) {
    if (line.rfind("```", 0) == 0) {
      in_fence = !in_fence;
      fence_language = in_fence ? line.substr(3) : "";
      continue;
    }
    const bool prompt = line.rfind("$ ", 0) == 0;  // a shell command shown with its output
    if (!in_fence) {
      prose += line + "\n";
    } else if (fence_language == "sh" || fence_language == "bash" || prompt ||
               !command_line.empty()) {
      command_line += without_comment(prompt ? line.substr(2) : line);
      const size_t end = command_line.find_last_not_of(" \t");
      if (end != std::string::npos && command_line[end] == '\\') {
        command_line.erase(end);
        continue;
      }
      add_shell_uses(command_line, out);
      command_line.clear();
    }
  }
  for (size_t open = prose.find('`'); open != std::string::npos; open = prose.find('`', open + 1)) {
    const size_t close = prose.find('`', open + 1);
    if (close == std::string::npos) break;
    const std::string code = prose.substr(open + 1, close - open - 1);
    if (code.rfind("--", 0) == 0)
      out.insert({"", code.substr(0, code.find_first_of(" =|"))});
    else
      add_shell_uses(code, out);
    open = close;
  }
  return out;
}

// The options `plinth <command> --help` lists (lines that start with "  --name").
std::set<std::string> help_options(const std::string& help) {
  std::set<std::string> out;
  std::istringstream in(help);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("  --", 0) == 0) out.insert(line.substr(2, line.find(' ', 2) - 2));
  return out;
}

// "command --option" for each use that command's --help does not list ("--option" alone
// for an option no command lists; "command (unknown command)" if plinth has no such one).
std::vector<std::string> missing_from_help(const OptionUses& uses) {
  std::map<std::string, std::set<std::string>> options;  // by command; "" holds all of them
  std::set<std::string> unknown;
  const auto top = test::run_cli("--help");
  std::istringstream in(top.output.substr(top.output.find("commands:")));
  std::string line;
  std::getline(in, line);  // "commands:"
  while (std::getline(in, line) && line.rfind("  ", 0) == 0) {
    const std::string command = line.substr(2, line.find(' ', 2) - 2);
    const auto help = test::run_cli(command + " --help");
    if (help.status != 0) continue;
    options[command] = help_options(help.output);
    options[""].insert(options[command].begin(), options[command].end());
  }
  std::vector<std::string> missing;
  for (const auto& [command, option] : uses) {
    if (!options.count(command)) {
      if (unknown.insert(command).second) missing.push_back(command + " (unknown command)");
    } else if (!options[command].count(option)) {
      missing.push_back(command.empty() ? option : command + " " + option);
    }
  }
  return missing;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// SGD whose learning rate is multiplied by 1e36 after the first epoch: epoch 1 trains,
// epoch 2 overflows within a few steps.
std::string exploding_cnn_file(const std::string& dir) {
  const std::string path = dir + "/exploding.json";
  std::ofstream(path) << R"({"name": "exploding", "input": [1, 28, 28],
    "layers": [{"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "activation": "relu"},
               {"type": "maxpool2d", "name": "pool1", "size": 2},
               {"type": "flatten", "name": "flatten"},
               {"type": "dense", "name": "fc1", "units": 10, "activation": "softmax"}],
    "optimizer": {"type": "sgd", "lr": 0.01},
    "training": {"schedule": {"type": "step", "step_epochs": 1, "gamma": 1e36}}})";
  return path;
}

}  // namespace

TEST_CASE("cli: help lists the commands and each command's options", "[cli]") {
  const auto top = test::run_cli("--help");
  CHECK(top.status == 0);
  for (const char* c : {"train", "eval", "predict", "bench", "info"})
    CHECK_THAT(top.output, Catch::Contains(c));
  const auto train = test::run_cli("train --help");
  CHECK(train.status == 0);
  for (const char* o :
       {"--model", "--device", "--epochs", "--batch-size", "--lr", "--seed", "--data", "--threads",
        "--max-steps", "--history", "--save", "--resume", "--init-from", "--freeze"})
    CHECK_THAT(train.output, Catch::Contains(o));
  CHECK(test::run_cli("train --no-such-option").status == 1);
  CHECK(test::run_cli("frobnicate").status == 2);
}

TEST_CASE("cli: --device cuda without a usable GPU fails clearly, and auto says it uses the CPU",
          "[cli]") {
  if (!cuda_status().devices.empty()) {
    WARN("SKIPPED: a GPU is usable here; this test is about machines without one");
    return;
  }
  const auto cuda = test::run_cli("train --device cuda --max-steps 1 --model " PLINTH_SOURCE_DIR
                                  "/models/seed_cnn.json");
  CHECK(cuda.status == 1);
  CHECK_THAT(cuda.output, Catch::Contains("--device cuda: no usable GPU"));
  const auto info = test::run_cli("info");
  CHECK(info.status == 0);
  CHECK_THAT(info.output, Catch::Contains("no usable GPU"));
}

TEST_CASE("cli: a missing data set or model file is one clear line and a non-zero exit", "[cli]") {
  const auto data = test::run_cli(
      "train --device cpu --data /nonexistent/dir --max-steps 1 "
      "--model " PLINTH_SOURCE_DIR "/models/seed_cnn.json");
  CHECK(data.status == 1);
  CHECK_THAT(data.output, Catch::Contains("/nonexistent/dir"));
  const auto model = test::run_cli("train --device cpu --model /nonexistent.json");
  CHECK(model.status == 1);
  CHECK_THAT(model.output,
             Catch::Contains("/nonexistent.json: cannot open: No such file or directory"));
}

TEST_CASE("cli: a short run trains, saves, evaluates, predicts and refuses a changed resume",
          "[cli][checkpoint]") {
  if (!test::fashion_available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed");
    return;
  }
  const std::string dir = test::temp_dir("cli");
  const auto train =
      test::run_cli("train --device auto --threads 2 --epochs 1 --max-steps 60 --history " + dir +
                    "/h.json --save " + dir +
                    "/c.safetensors --model " PLINTH_SOURCE_DIR "/models/seed_cnn.json");
  INFO(train.output);
  REQUIRE(train.status == 0);
  if (cuda_status().devices.empty()) CHECK_THAT(train.output, Catch::Contains("using the CPU"));
  const auto eval =
      test::run_cli("eval --device cpu --json --checkpoint " + dir + "/c.safetensors");
  INFO(eval.output);
  REQUIRE(eval.status == 0);
  const auto j = nlohmann::json::parse(eval.output.substr(eval.output.find('{')));
  CHECK(j["accuracy"].get<double>() > 0.5);
  CHECK(j["confusion"].size() == 10);
  CHECK(j["per_class_accuracy"].size() == 10);
  const auto predict = test::run_cli(
      "predict --device cpu --limit 2 --images "
      "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --checkpoint " +
      dir + "/c.safetensors");
  INFO(predict.output);
  CHECK(predict.status == 0);
  CHECK_THAT(predict.output, Catch::Contains("t10k-images-idx3-ubyte.gz[1]:"));
  const auto resume =
      test::run_cli("train --device cpu --lr 0.01 --resume " + dir + "/c.safetensors");
  CHECK(resume.status == 1);
  CHECK_THAT(resume.output, Catch::Contains("changes the run's settings") && Catch::Contains("lr"));
}

TEST_CASE("cli: every option README.md shows is listed by that command's --help", "[cli][docs]") {
  const std::string readme = read_text(PLINTH_SOURCE_DIR "/README.md");
  const OptionUses uses = markdown_option_uses(readme);
  // The extraction works: the tour's continued lines, comments and prose are all seen.
  CHECK(uses.count({"train", "--tensorboard"}));
  CHECK(uses.count({"train", "--labelled-fraction"}));
  CHECK(uses.count({"bench", "--gemm"}));
  CHECK(uses.count({"", "--threads"}));  // a bare option in prose
  CHECK(uses.count({"", "--save-every"}));
  const std::vector<std::string> missing = missing_from_help(uses);
  INFO("in README.md but not in plinth's --help: " << Catch::Detail::stringify(missing));
  CHECK(missing.empty());
  // A copy with one invented option in the tour fails the check with exactly that option.
  std::string copy = readme;
  const std::string tour = "build/plinth eval --checkpoint runs/cnn.safetensors --json\n";
  const size_t at = copy.find(tour);
  REQUIRE(at != std::string::npos);
  copy.insert(at + tour.size() - 1, " --no-such-option");
  CHECK(missing_from_help(markdown_option_uses(copy)) ==
        std::vector<std::string>{"eval --no-such-option"});
}

TEST_CASE("cli: the README check reports options and commands that --help does not list",
          "[cli][docs]") {
  const std::string text =
      "```sh\n"
      "build/plinth train --epochs 3 \\\n"
      "    --no-such-option 1   # not this: --commented-out\n"
      "build/plinth frobnicate --epochs 1\n"
      "```\n"
      "```\n"
      "$ build/plinth predict \\\n"
      "    --limit 3 | tee out.txt\n"
      "plinth: output --not-an-option\n"
      "```\n"
      "Prose with `plinth eval --json --bogus-flag=2 | grep --count x` and `--made-up N`.\n";
  const OptionUses uses = markdown_option_uses(text);
  CHECK(uses == OptionUses{{"train", "--epochs"},
                           {"train", "--no-such-option"},
                           {"frobnicate", "--epochs"},
                           {"predict", "--limit"},
                           {"eval", "--json"},
                           {"eval", "--bogus-flag"},
                           {"", "--made-up"}});
  CHECK(missing_from_help(uses) == std::vector<std::string>{"--made-up", "eval --bogus-flag",
                                                            "frobnicate (unknown command)",
                                                            "train --no-such-option"});
}

TEST_CASE("cli: --threads outside 0..1024 is a one-line error naming the option", "[cli]") {
  for (const char* command :
       {"train --device cpu --threads -1", "train --device cpu --threads=1025",
        "eval --checkpoint none.safetensors --threads -4", "predict --threads 100000",
        "info --threads -1", "train --threads two"}) {
    const auto r = test::run_cli(command);
    INFO(command << "\n" << r.output);
    CHECK(r.status == 1);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    CHECK_THAT(r.output, Catch::StartsWith("plinth: error: plinth ") &&
                             Catch::Contains(" --threads expects an integer"));
  }
  CHECK_THAT(test::run_cli("info --threads 1025").output,
             Catch::Contains("--threads expects an integer from 0 to 1024, got 1025"));
  CHECK(test::run_cli("info --threads 1024").status == 0);
  CHECK(test::run_cli("info --threads 0").status == 0);
}

TEST_CASE("cli: --quiet hides progress and status lines but not warnings or the result",
          "[cli][nan]") {
  if (!test::fashion_available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed");
    return;
  }
  const std::string dir = test::small_fashion_dir("cli-quiet", 600, 200);
  // Epoch 2 overflows: its steps are skipped with warnings, val_loss stops improving, and
  // early stopping (patience 1) ends the run before epoch 3.
  const std::string args = fmt::format(
      "train --device cpu --threads 2 --data {} --model {} --epochs 3 --seed 3 "
      "--on-nan skip-step --early-stopping 1",
      dir, exploding_cnn_file(dir));
  const auto quiet = test::run_cli(args + " --quiet");
  INFO(quiet.output);
  CHECK(quiet.status == 0);
  CHECK_THAT(quiet.output, Catch::Contains("warning: skipped step ") &&
                               Catch::Contains("early stopping: val_loss"));
  CHECK_THAT(quiet.output, Catch::Contains("Test accuracy: "));
  CHECK_THAT(quiet.output, !Catch::Contains("Epoch 1/3") && !Catch::Contains("plinth: loading") &&
                               !Catch::Contains("plinth: device: "));
  const auto normal = test::run_cli(args);
  INFO(normal.output);
  CHECK_THAT(normal.output, Catch::Contains("Epoch 2/3") && Catch::Contains("plinth: device: ") &&
                                Catch::Contains("early stopping: val_loss") &&
                                !Catch::Contains("Epoch 3/3"));
  CHECK(test::run_cli(args + " --quiet --verbose").status == 1);
}

TEST_CASE("cli: train --verbose prints the layer table", "[cli]") {
  if (!test::fashion_available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed");
    return;
  }
  const std::string dir = test::small_fashion_dir("cli-verbose", 600, 200);
  const auto r =
      test::run_cli(fmt::format("train --device cpu --threads 2 --data {} --model {} --max-steps 1 "
                                "--verbose --freeze conv1",
                                dir, test::tiny_cnn_file(dir)));
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains(fmt::format("\n{:<28}{:<18}{:>10} (frozen)\n",
                                                   "conv1 (conv2d)", "[4, 26, 26]", 40)));
  CHECK_THAT(r.output,
             Catch::Contains(fmt::format("\n{:<28}{:<18}{:>10}\n", "fc1 (dense)", "[10]", 6770)));
  CHECK_THAT(r.output, Catch::Contains("\nTotal parameters: 6810\n"));
}

TEST_CASE("cli: library errors about a setting are reported under the option that set it",
          "[cli]") {
  const cli::OptionNames names{
      {"freeze", "--freeze"}, {"lr_multiplier", "--lr-multiplier"}, {"device", "--device"}};
  CHECK(cli::with_option_name("freeze: the model has no layer named 'x'", names) ==
        "--freeze: the model has no layer named 'x'");
  CHECK(cli::with_option_name("lr_multiplier: the model has no layer named 'x'", names) ==
        "--lr-multiplier: the model has no layer named 'x'");
  CHECK(cli::with_option_name("device cuda: no usable GPU: no driver", names) ==
        "--device cuda: no usable GPU: no driver");
  // A longer word is another setting; a setting's name elsewhere in the line is no prefix.
  CHECK(cli::with_option_name("devices: none", names) == std::nullopt);
  CHECK(cli::with_option_name("the model has no layer named 'freeze'", names) == std::nullopt);

  if (!test::fashion_available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed");
    return;
  }
  const std::string dir = test::small_fashion_dir("cli-option-names", 600, 200);
  const std::string args =
      fmt::format("train --device cpu --threads 2 --data {} --model {} --max-steps 1 --quiet", dir,
                  test::tiny_cnn_file(dir));
  const auto freeze = test::run_cli(args + " --freeze conv9");
  CHECK(freeze.status == 1);
  CHECK_THAT(freeze.output,
             Catch::Contains("plinth: error: --freeze: the model has no layer named 'conv9'"));
  const auto multiplier = test::run_cli(args + " --lr-multiplier conv9=2");
  CHECK(multiplier.status == 1);
  CHECK_THAT(multiplier.output, Catch::Contains("plinth: error: --lr-multiplier: the model has no "
                                                "layer named 'conv9'"));
  // A checkpoint of the tiny CNN does not fit the seed CNN: --init-from says how to load it
  // anyway.
  const std::string ckpt = dir + "/tiny.safetensors";
  REQUIRE(test::run_cli(args + " --save " + ckpt).status == 0);
  const auto init = test::run_cli(
      fmt::format("train --device cpu --threads 2 --data {} --model {} --max-steps 1 --quiet "
                  "--init-from {}",
                  dir, PLINTH_SOURCE_DIR "/models/seed_cnn.json", ckpt));
  INFO(init.output);
  CHECK(init.status == 1);
  CHECK_THAT(init.output,
             Catch::Contains(ckpt + ": weights do not match the model: shape mismatch conv1") &&
                 Catch::Contains("use --non-strict to load what matches, or --reset LAYER"));
}
