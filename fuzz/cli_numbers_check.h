// What fuzz_cli_numbers checks, shared with the test that replays its corpus: the input,
// split at zero bytes, is a command line for a command with an integer option, a number
// option and a list option (the kinds the plinth tool declares), and each piece is also
// read on its own by the strict parsers and quoted. Parsing must succeed with values that
// keep their promises, or throw plinth::Error; anything else (another exception, a crash,
// a quoted text that is not one short printable line) is a bug.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/args.h"
#include "engine/error.h"
#include "engine/user_text.h"

namespace plinth::fuzz {

inline void expect(bool ok, const char* what) {
  if (!ok) throw std::logic_error(what);
}

inline void check_text(const std::string& text) {
  try {
    const int64_t v = parse_integer(text, "n", -1000, 1000);
    expect(v >= -1000 && v <= 1000, "parse_integer out of its range");
    expect(text.find_first_not_of("-0123456789") == std::string::npos, "an integer with letters");
  } catch (const Error&) {
  }
  try {
    const double v = parse_real(text, "x", 0, 1e6);
    expect(std::isfinite(v) && v >= 0 && v <= 1e6, "parse_real out of its range");
  } catch (const Error&) {
  }
  const std::string q = quoted_input(text);
  expect(q.size() <= 120, "quoted text too long");
  for (const char c : q) expect(static_cast<unsigned char>(c) >= 0x20, "control character");
}

inline void check_cli_numbers(const uint8_t* data, size_t size) {
  std::vector<std::string> words;
  std::string word;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      words.push_back(word);
      word.clear();
    } else {
      word += static_cast<char>(data[i]);
    }
  }
  words.push_back(word);
  for (const std::string& w : words) {
    if (w == "--help" || w == "-h") return;  // prints the help: nothing to check
    check_text(w);
  }
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  cli::Args a("fuzz", "Numbers from the command line.");
  a.option("steps", "N", "an integer option", "1")
      .range(1, int64_t{1} << 50)
      .option("rate", "X", "a number option", "0.5")
      .number_range(0, 1)
      .option("sizes", "LIST", "a list of integers")
      .flag("quiet", "a flag")
      .positional("[FILE ...]", "files");
  try {
    if (!a.parse(static_cast<int>(argv.size()), argv.data())) return;
    const int64_t steps = a.integer64("steps");
    expect(steps >= 1 && steps <= int64_t{1} << 50, "--steps out of its range");
    const double rate = a.number("rate");
    expect(rate >= 0 && rate <= 1, "--rate out of its range");
    for (const std::string& item : a.list("sizes")) {
      expect(!item.empty(), "an empty list item");
      parse_integer(item, "--sizes item", 1, 1 << 30);
    }
  } catch (const Error& e) {
    expect(std::string(e.what()).find('\n') == std::string::npos, "a message of two lines");
  }
}

}  // namespace plinth::fuzz
