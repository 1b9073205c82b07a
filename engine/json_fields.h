// Typed access to JSON objects from user files, with errors that name the file and the
// field ("models/x.json: layers[2].filters: expected a positive integer").
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"

namespace plinth {

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
  double number(const char* key, double fallback) const {
    if (!j_.contains(key)) return fallback;
    if (!j_[key].is_number()) fail("{}.{}: expected a number", where_, key);
    return j_[key].get<double>();
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
      if (!ok) fail("{}: unknown field '{}'", where_, it.key());
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
    const auto& v = j_[key];
    if (!v.is_number_integer() || v.get<long long>() < min || v.get<long long>() > (1 << 24))
      fail("{}.{}: expected an integer >= {}", where_, key, min);
    return v.get<int>();
  }
  const nlohmann::json& j_;
  std::string where_;
};

}  // namespace plinth
