#include "cli/args.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/error.h"
#include "engine/user_text.h"

namespace plinth::cli {

namespace {

// Stands for a space that wrap() must not break at; wrap() turns it back into a space.
constexpr char kNoBreak = '\x1f';

// Breaks text into lines of at most `width` columns at spaces; lines after the first are
// indented by `indent` (the first continues whatever precedes it).
std::string wrap(const std::string& text, size_t indent, size_t width = 100) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  out += line;
  std::replace(out.begin(), out.end(), kNoBreak, ' ');
  return out;
}

}  // namespace

Args& Args::option(const std::string& name, const std::string& value_name, const std::string& help,
                   const std::string& fallback) {
  specs_.push_back({name, value_name, help, fallback, false});
  return *this;
}

Args& Args::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, "", true});
  return *this;
}

Args& Args::positional(const std::string& name, const std::string& help) {
  positional_specs_.emplace_back(name, help);
  return *this;
}

Args& Args::range(int64_t lo, int64_t hi) {
  if (specs_.empty() || specs_.back().is_flag)
    throw std::logic_error("range() needs a valued option before it");
  specs_.back().range = {lo, hi};
  return *this;
}

Args& Args::number_range(double lo, double hi) {
  if (specs_.empty() || specs_.back().is_flag)
    throw std::logic_error("number_range() needs a valued option before it");
  specs_.back().number_range = {lo, hi};
  return *this;
}

const Args::Spec& Args::spec(const std::string& name) const {
  for (const Spec& s : specs_)
    if (s.name == name) return s;
  throw std::logic_error("undeclared option --" + name);
}

bool Args::parse(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (a.rfind("--", 0) != 0) {
      positional_values_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Spec* s = nullptr;
    for (const Spec& candidate : specs_)
      if (candidate.name == name) s = &candidate;
    if (!s)
      fail("plinth {}: unknown option --{} (see plinth {} --help)", command_,
           quoted_input(name, 40), command_);
    if (s->is_flag) {
      if (eq != std::string::npos) fail("plinth {}: --{} takes no value", command_, name);
      values_[name] = "1";
    } else {
      if (eq == std::string::npos) {
        if (i + 1 >= argc)
          fail("plinth {}: --{} needs a value ({})", command_, name, s->value_name);
        value = argv[++i];
      }
      values_[name] = value;
    }
  }
  // Every number given is checked now, before the command reads or allocates anything.
  for (const Spec& s : specs_) {
    if (!values_.count(s.name)) continue;
    if (s.range) integer64(s.name);
    if (s.number_range) number(s.name);
  }
  if (positional_values_.size() > positional_specs_.size() && !positional_specs_.empty() &&
      positional_specs_.back().first.find("...") == std::string::npos)
    fail("plinth {}: unexpected argument {}", command_, quoted_input(positional_values_.back()));
  if (positional_specs_.empty() && !positional_values_.empty())
    fail("plinth {}: unexpected argument {}", command_, quoted_input(positional_values_.front()));
  return true;
}

std::string Args::help() const {
  std::string usage = fmt::format("usage: plinth {} [options]", command_);
  for (const auto& [name, h] : positional_specs_) usage += " " + name;
  std::string out = usage + "\n\n" + wrap(summary_, 0) + "\n\noptions:\n";
  for (const Spec& s : specs_) {
    std::string left = "  --" + s.name + (s.is_flag ? "" : " " + s.value_name);
    if (left.size() < 28)
      left.resize(28, ' ');
    else
      left += "\n" + std::string(28, ' ');
    const std::string fallback =
        s.fallback.empty() ? "" : " (default:" + std::string(1, kNoBreak) + s.fallback + ")";
    out += left + wrap(s.help + fallback, 28) + "\n";
  }
  for (const auto& [name, h] : positional_specs_) {
    std::string left = "  " + name;
    if (left.size() < 28)
      left.resize(28, ' ');
    else
      left += "\n" + std::string(28, ' ');
    out += left + wrap(h, 28) + "\n";
  }
  return out + "  --help                    show this help\n";
}

bool Args::has(const std::string& name) const {
  spec(name);
  return values_.count(name) > 0;
}

std::string Args::str(const std::string& name) const {
  const Spec& s = spec(name);
  const auto it = values_.find(name);
  return it == values_.end() ? s.fallback : it->second;
}

std::string Args::who(const std::string& name) const {
  return fmt::format("plinth {}: --{}", command_, name);
}

int64_t Args::integer64(const std::string& name) const {
  const Spec& s = spec(name);
  const auto [lo, hi] = s.range.value_or(
      std::pair{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()});
  return parse_integer(str(name), who(name), lo, hi);
}

int Args::integer(const std::string& name) const {
  const Spec& s = spec(name);
  const auto [lo, hi] = s.range.value_or(std::pair<int64_t, int64_t>{
      std::numeric_limits<int>::min(), std::numeric_limits<int>::max()});
  return static_cast<int>(parse_integer(str(name), who(name),
                                        std::max<int64_t>(lo, std::numeric_limits<int>::min()),
                                        std::min<int64_t>(hi, std::numeric_limits<int>::max())));
}

double Args::number(const std::string& name) const {
  const Spec& s = spec(name);
  const auto [lo, hi] = s.number_range.value_or(
      std::pair{-std::numeric_limits<double>::max(), std::numeric_limits<double>::max()});
  return parse_real(str(name), who(name), lo, hi);
}

std::vector<std::string> Args::list(const std::string& name) const {
  std::vector<std::string> out;
  const std::string v = str(name);
  if (v.empty() && !has(name)) return out;
  size_t start = 0;
  for (;;) {
    const size_t comma = v.find(',', start);
    const std::string item =
        v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty())
      fail("{} expects a comma-separated list without empty items, got {}", who(name),
           quoted_input(v));
    out.push_back(item);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

}  // namespace plinth::cli
