// A small command-line parser: options are declared with their help text, so `--help`
// and the parser can never disagree. Numeric options declare their range too: parse()
// checks every one given before the command does anything, and every number is read by
// the strict parser of engine/user_text.h (no "1e9" as an integer, no NaN, no " 1abc").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace plinth::cli {

class Args {
 public:
  Args(std::string command, std::string summary)
      : command_(std::move(command)), summary_(std::move(summary)) {}

  // A valued option (--name VALUE) or a flag (--name) with its help line.
  Args& option(const std::string& name, const std::string& value_name, const std::string& help,
               const std::string& fallback = "");
  Args& flag(const std::string& name, const std::string& help);
  // Limits the option declared last to integers in [lo, hi], checked by parse().
  Args& range(int64_t lo, int64_t hi);
  // Limits the option declared last to finite numbers in [lo, hi], checked by parse().
  Args& number_range(double lo, double hi);
  Args& positional(const std::string& name, const std::string& help);

  // Returns false (after printing help) for --help; throws plinth::Error on bad input.
  bool parse(int argc, char** argv);
  std::string help() const;

  bool has(const std::string& name) const;  // given on the command line
  std::string str(const std::string& name) const;
  // Numbers within the option's declared range (integer: also within int; number: finite).
  int integer(const std::string& name) const;
  int64_t integer64(const std::string& name) const;
  double number(const std::string& name) const;
  bool on(const std::string& name) const { return has(name); }
  // Comma-separated; an empty item ("a,,b", ",,,", "") is an error naming the option.
  std::vector<std::string> list(const std::string& name) const;
  // "plinth <command>: --<name>", how errors about the option start.
  std::string who(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positional_values_; }

 private:
  struct Spec {
    std::string name, value_name, help, fallback;
    bool is_flag = false;
    std::optional<std::pair<int64_t, int64_t>> range;
    std::optional<std::pair<double, double>> number_range;
  };
  const Spec& spec(const std::string& name) const;
  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::vector<std::pair<std::string, std::string>> positional_specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_values_;
};

}  // namespace plinth::cli
