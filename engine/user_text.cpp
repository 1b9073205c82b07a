#include "engine/user_text.h"

#include <charconv>
#include <cmath>
#include <system_error>

#include <fmt/format.h>

#include "engine/error.h"

namespace plinth {
namespace {

// " from lo to hi" where the range is narrower than the type's, else nothing.
template <typename T>
std::string range_text(T lo, T hi) {
  if (lo == std::numeric_limits<T>::lowest() && hi == std::numeric_limits<T>::max()) return "";
  return fmt::format(" from {} to {}", lo, hi);
}

// from_chars on the whole text: false if it spells no number or leaves characters over.
template <typename T>
bool whole_number(std::string_view text, T& value, bool& out_of_range) {
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, value);
  out_of_range = ec == std::errc::result_out_of_range;
  return stop == end && (ec == std::errc() || out_of_range);
}

// The length of the UTF-8 sequence text starts with, 0 if it is not a valid one.
size_t utf8_length(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  const size_t length = lead >= 0xf0 && lead <= 0xf4  ? 4
                        : lead >= 0xe0                ? 3
                        : lead >= 0xc2 && lead < 0xe0 ? 2
                                                      : 0;
  if (length == 0 || text.size() < length) return 0;
  for (size_t k = 1; k < length; ++k)
    if ((static_cast<unsigned char>(text[k]) & 0xc0) != 0x80) return 0;
  return length;
}

}  // namespace

std::string quoted_input(std::string_view text, size_t max_bytes, char quote) {
  std::string out(1, quote);
  size_t i = 0;
  while (i < text.size() && out.size() <= max_bytes) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t length = c < 0x80 ? 1 : utf8_length(text.substr(i));
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f || length == 0) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.append(text.substr(i, length));
      i += length;
      continue;
    }
    ++i;
  }
  out += quote;
  if (i == text.size()) return out;
  out.insert(out.size() - 1, "...");
  return fmt::format("{} ({} bytes)", out, text.size());
}

int64_t parse_integer(std::string_view text, std::string_view what, int64_t lo, int64_t hi) {
  int64_t value = 0;
  bool out_of_range = false;
  if (!whole_number(text, value, out_of_range))
    fail("{} expects an integer{}, got {}", what, range_text(lo, hi), quoted_input(text));
  if (out_of_range || value < lo || value > hi)
    fail("{} expects an integer{}, got {}", what,
         range_text(lo, hi).empty() ? " within 64 bits" : range_text(lo, hi),
         out_of_range ? quoted_input(text) : std::to_string(value));
  return value;
}

double parse_real(std::string_view text, std::string_view what, double lo, double hi) {
  double value = 0;
  bool out_of_range = false;
  // from_chars also reads "nan" and "inf"; they are numbers of no use to plinth.
  if (!whole_number(text, value, out_of_range) || out_of_range || !std::isfinite(value))
    fail("{} expects a finite number{}, got {}", what, range_text(lo, hi), quoted_input(text));
  if (value < lo || value > hi)
    fail("{} expects a number{}, got {}", what, range_text(lo, hi), quoted_input(text));
  return value;
}

}  // namespace plinth
