// The strict readers every number and JSON document from a user goes through
// (engine/user_text.h, engine/json_fields.h), and the quoting of echoed text.
#include <catch2/catch.hpp>

#include <string>

#include "engine/error.h"
#include "engine/json_fields.h"
#include "engine/user_text.h"
#include "engine_fixtures.h"

using namespace plinth;
using Catch::Contains;
using Catch::Equals;

namespace {

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("user text: integers are the whole text, in range, never read by a prefix", "[text]") {
  CHECK(parse_integer("42", "n") == 42);
  CHECK(parse_integer("-7", "n", -10, 10) == -7);
  CHECK(parse_integer("9223372036854775807", "n") == INT64_MAX);
  // std::stoi read each of these as a number: " 1abc" as 1, "1e9" as 1.
  for (const char* text : {" 1abc", "1abc", "1e9", "1.0", "+1", "", "0x10", "１"}) {
    CAPTURE(text);
    CHECK_THAT(error_of([&] { parse_integer(text, "--epochs"); }),
               Contains("--epochs expects an integer, got '"));
  }
  CHECK_THAT(error_of([] { parse_integer("0", "--max-steps", 1, 100); }),
             Equals("--max-steps expects an integer from 1 to 100, got 0"));
  CHECK_THAT(error_of([] { parse_integer("-5", "--max-steps", 1, 100); }),
             Equals("--max-steps expects an integer from 1 to 100, got -5"));
  CHECK_THAT(error_of([] { parse_integer("99999999999999999999", "step"); }),
             Equals("step expects an integer within 64 bits, got '99999999999999999999'"));
}

TEST_CASE("user text: numbers are finite, whole and in range", "[text]") {
  CHECK(parse_real("0.1", "x") == 0.1);
  CHECK(parse_real("-2.5e-3", "x") == -2.5e-3);
  CHECK(parse_real("1e6", "x", 0, 1e6) == 1e6);
  for (const char* text :
       {"nan", "NaN", "inf", "-inf", "1e400", "-1e999", "abc", " 1", "1 ", "0.1x", "", "1,5"}) {
    CAPTURE(text);
    CHECK_THAT(error_of([&] { parse_real(text, "--lr-multiplier 'conv1'"); }),
               Contains("--lr-multiplier 'conv1' expects a finite number, got '"));
  }
  CHECK_THAT(error_of([] { parse_real("-1", "--lr-multiplier 'conv1'", 0, 1e6); }),
             Equals("--lr-multiplier 'conv1' expects a number from 0 to 1000000, got '-1'"));
}

TEST_CASE("user text: echoed text is quoted, escaped and cut to one short line", "[text]") {
  CHECK(quoted_input("conv1") == "'conv1'");
  CHECK(quoted_input("a'b\\c") == "'a\\'b\\\\c'");
  CHECK(quoted_input("line\nbreak\t\x01") == "'line\\nbreak\\t\\x01'");
  CHECK(quoted_input("\xff\xfe ok") == "'\\xff\\xfe ok'");  // not UTF-8: escaped
  CHECK(quoted_input("caf\xc3\xa9") == "'caf\xc3\xa9'");    // UTF-8: kept
  CHECK(quoted_input("x", 80, '"') == "\"x\"");
  const std::string key(10'000'000, 'k');
  const std::string cut = quoted_input(key);
  CHECK(cut.size() < 120);
  CHECK_THAT(cut, Contains("...' (10000000 bytes)"));
  // A cut never splits a UTF-8 character.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";
  const std::string cut_accents = quoted_input(accents);
  CHECK(cut_accents.find("\xc3...") == std::string::npos);
  CHECK_THAT(cut_accents, Contains("\xc3\xa9...' (200 bytes)"));
}

TEST_CASE("json: nesting deeper than the limit is refused while parsing, even 10^6 levels",
          "[text][json]") {
  CHECK(parse_json("[[[[1]]]]", "f.json")[0][0][0][0] == 1);
  std::string ok(kMaxJsonDepth, '[');
  ok += std::string(kMaxJsonDepth, ']');
  CHECK_NOTHROW(parse_json(ok, "f.json"));
  for (const size_t depth : {size_t{kMaxJsonDepth + 1}, size_t{1'000'000}}) {
    CAPTURE(depth);
    const std::string deep = std::string(depth, '[') + std::string(depth, ']');
    CHECK_THAT(error_of([&] { parse_json(deep, "deep.json"); }),
               Equals("deep.json: nests deeper than 64 levels"));
    std::string objects;
    for (size_t i = 0; i < depth; ++i) objects += "{\"a\":";
    objects += "1" + std::string(depth, '}');
    CHECK_THAT(error_of([&] { parse_json(objects, "deep.json"); }),
               Equals("deep.json: nests deeper than 64 levels"));
  }
  CHECK_THAT(error_of([] { parse_json("[1e400]", "big.json"); }),
             Contains("big.json: not valid JSON (") && Contains("number overflow"));
  // nlohmann quotes the input near an error: a hostile file controls it, so it is cut.
  const std::string unterminated = "\"" + std::string(1'000'000, 'x');
  const std::string message = error_of([&] { parse_json(unterminated, "cut.json"); });
  CHECK_THAT(message, Contains("cut.json: not valid JSON (byte "));
  CHECK(message.size() < 400);
}

TEST_CASE("json: integers are read as 64-bit and range-checked, never wrapped", "[text][json]") {
  const auto j = nlohmann::json::parse(
      "[4294967297, 18446744073709551615, -1, 28, 1.5, \"28\", 9223372036854775808]");
  CHECK_THAT(error_of([&] { json_integer(j[0], "m.input[0]", 1, 65536); }),
             Equals("m.input[0]: expected an integer from 1 to 65536, got '4294967297'"));
  CHECK_THAT(error_of([&] { json_integer(j[1], "x", 1, 65536); }), Contains("got '1844674"));
  CHECK_THAT(error_of([&] { json_integer(j[2], "x", 0, 10); }), Contains("got '-1'"));
  CHECK(json_integer(j[3], "x", 1, 65536) == 28);
  CHECK_THAT(error_of([&] { json_integer(j[4], "x", 0, 10); }), Contains("got '1.5'"));
  CHECK_THAT(error_of([&] { json_integer(j[5], "x", 0, 100); }), Contains("got '\"28\"'"));
  CHECK_THAT(error_of([&] { json_integer(j[6], "x", INT64_MIN, INT64_MAX); }),
             Contains("got '9223372036854775808'"));
  CHECK_THAT(error_of([&] { json_number(nlohmann::json(1e300), "norm.std", 1e-12, 1e6); }),
             Contains("norm.std: expected a number from 1e-12 to 1000000"));
}

TEST_CASE("model file: an input of 2^32 + 1 channels is refused, not read as 1", "[model][text]") {
  CHECK_THAT(error_of([] {
               test::model_from(R"({"input": [4294967297, 28, 28], "layers": [
                 {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]})");
             }),
             Equals("test-model.input[0]: expected an integer from 1 to 65536, got '4294967297'"));
}

TEST_CASE("model file: a 10 MB unknown key is cut in the message", "[model][text]") {
  const std::string key(10'000'000, 'k');
  for (const std::string& where : {std::string(""), std::string("layer")}) {
    CAPTURE(where);
    const std::string json =
        where.empty()
            ? R"({"input": [1, 28, 28], ")" + key + R"(": 1, "layers": [{"type": "flatten"}]})"
            : R"({"input": [1, 28, 28], "layers": [{"type": "flatten", ")" + key + R"(": 1}]})";
    const std::string message =
        error_of([&] { parse_model(nlohmann::json::parse(json), "big.json"); });
    CHECK_THAT(message, Contains("unknown field 'kkkk") && Contains("(10000000 bytes)"));
    CHECK(message.size() < 200);
  }
}
