// Typed access to JSON objects from user files, with errors that name the file and the
// field ("models/x.json: layers[2].filters: expected a positive integer"). Every number is
// checked for its type's range (integers are read as 64-bit first, so 4294967297 is not
// taken for 1) and every echoed key is cut (engine/user_text.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/user_text.h"

namespace plinth {

// The deepest nesting any JSON plinth reads may have: model files and checkpoint metadata
// nest a few levels; a document nested a million levels deep would overflow the stack
// when it is copied or compared.
inline constexpr int kMaxJsonDepth = 64;

// Parses JSON from a user's file or a checkpoint's metadata, refusing nesting deeper than
// kMaxJsonDepth while it parses (before the deep value exists). Throws Error
// "<where>: not valid JSON (...)" or "<where>: nests deeper than 64 levels".
nlohmann::json parse_json(std::string_view text, const std::string& where);

// Whether v is an integer in [lo, hi]. nlohmann keeps non-negative integers unsigned, so
// the value is compared before it is converted: 4294967297 must not pass as an int's 1,
// nor 2^64 - 1 as -1.
inline bool json_integer_in(const nlohmann::json& v, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned())
    return hi >= 0 && v.get<uint64_t>() <= static_cast<uint64_t>(hi) &&
           (lo <= 0 || v.get<uint64_t>() >= static_cast<uint64_t>(lo));
  return v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
}

// v as an integer in [lo, hi], or Error "<where>: expected an integer from lo to hi".
int64_t json_integer(const nlohmann::json& v, const std::string& where, int64_t lo, int64_t hi);
// v as a number in [lo, hi], or Error "<where>: expected a number from lo to hi".
double json_number(const nlohmann::json& v, const std::string& where, double lo, double hi);

class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string where)
      : j_(object), where_(std::move(where)) {
    if (!j_.is_object()) fail("{}: expected a JSON object", where_);
  }
  const std::string& where() const { return where_; }
  const nlohmann::json& raw() const { return j_; }
  bool has(const char* key) const { return j_.contains(key); }

  std::string str(const char* key) const { return get<std::string>(key, "a string", nullptr); }
  std::string str(const char* key, const std::string& fallback) const {
    return get<std::string>(key, "a string", &fallback);
  }
  int positive_int(const char* key) const { return checked_int(key, nullptr, 1); }
  int positive_int(const char* key, int fallback) const { return checked_int(key, &fallback, 1); }
  int non_negative_int(const char* key, int fallback) const {
    return checked_int(key, &fallback, 0);
  }
  // A finite number in [lo, hi] (C++ callers can put NaN into a json value).
  double number(const char* key, double fallback, double lo = -std::numeric_limits<double>::max(),
                double hi = std::numeric_limits<double>::max()) const {
    if (!j_.contains(key)) return fallback;
    if (!j_[key].is_number()) fail("{}.{}: expected a number", where_, key);
    const double v = j_[key].get<double>();
    if (!(v >= lo && v <= hi))
      fail("{}.{}: expected a number from {} to {}, got {}", where_, key, lo, hi, v);
    return v;
  }
  bool boolean(const char* key, bool fallback) const {
    return get<bool>(key, "true or false", &fallback);
  }
  JsonFields object(const char* key) const {
    if (!j_.contains(key)) fail("{}: missing field '{}'", where_, key);
    return JsonFields(j_[key], where_ + "." + key);
  }
  // Fails on any key not in `known`: a typo in a model file should not pass silently.
  void only(std::initializer_list<const char*> known) const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      bool ok = false;
      for (const char* k : known) ok = ok || it.key() == k;
      if (!ok) fail("{}: unknown field {}", where_, quoted_input(it.key()));
    }
  }

 private:
  template <typename T>
  T get(const char* key, const char* what, const T* fallback) const {
    if (!j_.contains(key)) {
      if (fallback) return *fallback;
      fail("{}: missing field '{}'", where_, key);
    }
    try {
      return j_[key].get<T>();
    } catch (const nlohmann::json::exception&) {
      fail("{}.{}: expected {}", where_, key, what);
    }
  }
  int checked_int(const char* key, const int* fallback, int min) const {
    if (!j_.contains(key)) {
      if (fallback) return *fallback;
      fail("{}: missing field '{}'", where_, key);
    }
    if (!json_integer_in(j_[key], min, 1 << 24))
      fail("{}.{}: expected an integer >= {}", where_, key, min);
    return static_cast<int>(j_[key].get<int64_t>());
  }
  const nlohmann::json& j_;
  std::string where_;
};

}  // namespace plinth
