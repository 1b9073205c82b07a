// A small command-line parser: options are declared with their help text, so `--help`
// and the parser can never disagree.
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
  Args& positional(const std::string& name, const std::string& help);

  // Returns false (after printing help) for --help; throws plinth::Error on bad input.
  bool parse(int argc, char** argv);
  std::string help() const;

  bool has(const std::string& name) const;  // given on the command line
  std::string str(const std::string& name) const;
  int integer(const std::string& name) const;
  int64_t integer64(const std::string& name) const;
  double number(const std::string& name) const;
  bool on(const std::string& name) const { return has(name); }
  std::vector<std::string> list(const std::string& name) const;  // comma-separated
  const std::vector<std::string>& positionals() const { return positional_values_; }

 private:
  struct Spec {
    std::string name, value_name, help, fallback;
    bool is_flag = false;
    std::optional<std::pair<int64_t, int64_t>> range;
  };
  const Spec& spec(const std::string& name) const;
  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::vector<std::pair<std::string, std::string>> positional_specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_values_;
};

}  // namespace plinth::cli
