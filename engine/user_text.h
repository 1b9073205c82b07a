// Text a user wrote (a command-line value, a field of a checkpoint's metadata, a key of a
// model file), read strictly and echoed safely. Every number plinth reads from text goes
// through parse_integer or parse_real: the whole text must be the number, with no
// leading space, no trailing characters, no exponent in an integer, and it must lie in
// the stated range (so NaN and infinities never pass). Every message that repeats such
// text quotes it with quoted_input(), so a 10 MB argument or a control character cannot break
// the one-line error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace plinth {

// text between two `quote` characters, with control characters, bytes that are not UTF-8,
// the quote and backslashes escaped (\n, \x01, \'), cut at a character boundary after
// about max_bytes with "..." and the full length: "'abc...' (10485760 bytes)".
std::string quoted_input(std::string_view text, size_t max_bytes = 80, char quote = '\'');

// The integer text spells (decimal digits, an optional leading '-'), in [lo, hi]. Throws
// plinth::Error "<what> expects an integer[ from lo to hi], got <text>", where `what`
// names the setting ("plinth train: --max-steps", "c.safetensors: metadata 'step'").
int64_t parse_integer(std::string_view text, std::string_view what,
                      int64_t lo = std::numeric_limits<int64_t>::min(),
                      int64_t hi = std::numeric_limits<int64_t>::max());

// The finite number text spells (decimal or scientific notation), in [lo, hi]. Throws
// plinth::Error "<what> expects a number[ from lo to hi], got <text>".
double parse_real(std::string_view text, std::string_view what,
                  double lo = -std::numeric_limits<double>::max(),
                  double hi = std::numeric_limits<double>::max());

}  // namespace plinth
