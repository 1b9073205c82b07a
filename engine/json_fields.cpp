#include "engine/json_fields.h"

namespace plinth {
namespace {

// nlohmann's message without its "[json.exception.parse_error.101] " prefix, printable,
// and cut: it quotes the input near the error, which a hostile file controls.
std::string json_error_text(const nlohmann::json::exception& e) {
  std::string_view text = e.what();
  if (const size_t end = text.find("] "); text.starts_with("[json.exception") && end != text.npos)
    text.remove_prefix(end + 2);
  const std::string cut = quoted_input(text, 200);
  return cut.substr(1, cut.size() - 2);  // without the quotes quoted_input() adds
}

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& where) {
  struct TooDeep {};
  // The callback sees each value start with its depth before anything below it is built.
  auto limit_depth = [](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth)
      throw TooDeep{};
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limit_depth);
  } catch (const TooDeep&) {
    fail("{}: nests deeper than {} levels", where, kMaxJsonDepth);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON (byte {}: {})", where, e.byte, json_error_text(e));
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
    fail("{}: not valid JSON ({})", where, json_error_text(e));
  }
}

int64_t json_integer(const nlohmann::json& v, const std::string& where, int64_t lo, int64_t hi) {
  if (!json_integer_in(v, lo, hi))
    fail("{}: expected an integer from {} to {}, got {}", where, lo, hi,
         quoted_input(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  return v.get<int64_t>();
}

double json_number(const nlohmann::json& v, const std::string& where, double lo, double hi) {
  if (!v.is_number() || !(v.get<double>() >= lo && v.get<double>() <= hi))
    fail("{}: expected a number from {} to {}, got {}", where, lo, hi,
         quoted_input(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  return v.get<double>();
}

}  // namespace plinth
