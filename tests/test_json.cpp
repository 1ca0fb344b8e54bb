#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "test_utils.h"

namespace cc = cortex_connectors;

namespace {

cc::Error parse_failure(std::string_view text, const cc::JsonParseOptions& options = {}) {
  auto r = cc::parse_json(text, options);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kParse);
  return r.error();
}

}  // namespace

TEST_CASE("Json builds objects in insertion order with unique keys", "[json]") {
  cc::Json doc;
  doc.set("b", 1);
  doc.set("a", "x");
  doc.set("b", true);
  REQUIRE(doc.is_object());
  REQUIRE(doc.as_object().size() == 2);
  CHECK(doc.as_object()[0].first == "b");
  CHECK(doc.find("b")->as_bool());
  CHECK(doc.find("missing") == nullptr);
  cc::Json arr;
  arr.push_back(1);
  arr.push_back(nullptr);
  CHECK(arr.as_array().size() == 2);
  CHECK(arr.as_array()[1].is_null());
  CHECK(cc::Json(1) == cc::Json(1.0));
  CHECK_FALSE(cc::Json("1") == cc::Json(1));
}

TEST_CASE("parse_json reads every JSON type", "[json]") {
  auto r =
      cc::parse_json(R"({"s":"\u00e9\n","n":-1.5,"i":42,"t":true,"f":false,"z":null,"a":[{}]})");
  REQUIRE_OK(r);
  const cc::Json& doc = *r;
  CHECK(doc.find("s")->as_string() == "\xc3\xa9\n");
  CHECK(doc.find("n")->as_number() == -1.5);
  CHECK(doc.find("i")->as_number() == 42);
  CHECK(doc.find("t")->as_bool());
  CHECK_FALSE(doc.find("f")->as_bool());
  CHECK(doc.find("z")->is_null());
  CHECK(doc.find("a")->as_array()[0].is_object());
  // Scalar roots are documents too.
  CHECK(cc::parse_json("7")->as_number() == 7);
  CHECK(cc::parse_json(R"("x")")->as_string() == "x");
  CHECK(cc::parse_json("null")->is_null());
}

TEST_CASE("duplicate keys are rejected with the offset of the second key", "[json]") {
  auto e = parse_failure(R"({"a":1, "a":2})");
  CHECK(e.message == "[brAInwav] invalid JSON at byte 8: duplicate key \"a\"");
  CHECK(e.offset == 8u);
  // Beyond the linear-search size as well, and nested.
  std::string big = R"({"x":{)";
  for (int i = 0; i < 40; ++i) big += "\"k" + std::to_string(i) + "\":0,";
  big += R"("k7":1}})";
  auto e2 = parse_failure(big);
  CHECK(e2.message.find("duplicate key \"k7\"") != std::string::npos);
  CHECK(e2.offset == big.rfind("\"k7\""));
}

TEST_CASE("invalid UTF-8 is rejected with the offset of the bad byte", "[json]") {
  const std::string text = "{\"a\":\"ok\",\"b\":\"\xc3\x28\"}";
  auto e = parse_failure(text);
  CHECK(e.offset == 15u);
  CHECK(e.message.find("invalid UTF-8") != std::string::npos);
  // Overlong encodings and surrogates encoded directly are ill-formed too.
  CHECK(parse_failure("\"\xc0\xaf\"").offset == 1u);
  CHECK(parse_failure("\"\xed\xa0\x80\"").offset == 1u);
  CHECK(parse_failure("\"\xf4\x90\x80\x80\"").offset == 1u);
}

TEST_CASE("unpaired surrogate escapes are rejected", "[json]") {
  for (const char* text : {R"("\ud800")", R"("\udc00")", R"("\ude02\ud83d")", R"("\ud800x")"}) {
    INFO(text);
    auto e = parse_failure(text);
    CHECK(e.message.find("string") != std::string::npos);
  }
  CHECK(cc::parse_json(R"("\ud83d\ude02")")->as_string() == "\xf0\x9f\x98\x82");
}

TEST_CASE("nesting beyond the limit is rejected, also for depth bombs", "[json]") {
  cc::JsonParseOptions options;
  options.max_depth = 3;
  CHECK(cc::parse_json("[[[1]]]", options));
  auto e = parse_failure("[[[[1]]]]", options);
  CHECK(e.message == "[brAInwav] invalid JSON at byte 3: nesting deeper than 3 levels");
  const std::string bomb = std::string(10000, '[') + std::string(10000, ']');
  auto e2 = parse_failure(bomb);
  CHECK(e2.message.find("nesting deeper than 64 levels") != std::string::npos);
  CHECK(e2.offset == 64u);
  const std::string obj_bomb = [] {
    std::string s;
    for (int i = 0; i < 100000; ++i) s += "{\"a\":";
    return s;
  }();
  CHECK(parse_failure(obj_bomb).offset.has_value());
}

TEST_CASE("truncated input says so", "[json]") {
  for (const char* text : {R"({"a":[1,2)", R"({"a":"abc)", R"({"a")", "[", "{"}) {
    INFO(text);
    auto e = parse_failure(text);
    CHECK(e.offset.has_value());
    CHECK(e.message.rfind("[brAInwav] invalid JSON", 0) == 0);
  }
  auto e = parse_failure("");
  CHECK(e.message == "[brAInwav] invalid JSON at byte 0: empty document");
  auto t = parse_failure(R"({"a":1} x)");
  CHECK(t.message.find("content after the document") != std::string::npos);
}

TEST_CASE("other malformed JSON never crashes", "[json]") {
  for (const char* text : {"{a:1}", "[1,]", "[01]", "tru", "nul", "[1 2]", "{\"a\" 1}", "\"\t\"",
                           "[1e999]", "-", "[\"\\x\"]", "\x80", "{\"a\":1,}"}) {
    INFO(text);
    auto r = cc::parse_json(text);
    CHECK_FALSE(r);
    if (!r) CHECK(r.error().message.rfind("[brAInwav] invalid JSON", 0) == 0);
  }
}

TEST_CASE("string and document size limits", "[json]") {
  cc::JsonParseOptions options;
  options.max_string_bytes = 8;
  CHECK(cc::parse_json(R"(["12345678"])", options));
  auto e = parse_failure(R"(["123456789"])", options);
  CHECK(e.message ==
        "[brAInwav] invalid JSON at byte 1: string of 9 bytes exceeds the limit of 8 bytes");
  CHECK(parse_failure(R"({"123456789":1})", options).offset == 1u);
  options.max_document_bytes = 4;
  CHECK(parse_failure("[1,2]", options).message.find("exceeds the limit of 4 bytes") !=
        std::string::npos);
}

TEST_CASE("integers beyond 2^53 are rejected only when asked", "[json]") {
  cc::JsonParseOptions strict;
  strict.reject_unsafe_integers = true;
  CHECK(cc::parse_json("[9007199254740991, -9007199254740991]", strict));
  auto e = parse_failure("[1, 9007199254740993]", strict);
  CHECK(e.message ==
        "[brAInwav] invalid JSON at byte 4: integer 9007199254740993 is outside the exact range of "
        "a double (+-2^53-1)");
  CHECK(parse_failure("[-9007199254740993]", strict).offset == 1u);
  CHECK(parse_failure("18446744073709551615", strict).offset == 0u);
  // A fraction or exponent says "double" on purpose; JCS rounds, so do we by default.
  CHECK(cc::parse_json("9007199254740993.0", strict));
  CHECK(*cc::canonicalize("9007199254740993") == "9007199254740992");
  // Beyond 64 bits too (simdjson refuses such literals; parse_json reads them as doubles), or
  // the canonical form of 1e20, 100000000000000000000, would not parse back (found by
  // fuzz/fuzz_json): canonical output is always input the library reads.
  CHECK(*cc::canonicalize("123456789012345678901234567890") == "1.2345678901234568e+29");
  CHECK(*cc::canonicalize("[-9223372036854775809,18446744073709551616]") ==
        "[-9223372036854776000,18446744073709552000]");
  for (const char* text : {"1e20", "-1e20", "123e17", "{\"a\":[5e20,\"99999999999999999999\"]}"}) {
    INFO(text);
    const std::string once = *cc::canonicalize(text);
    auto again = cc::canonicalize(once);
    REQUIRE_OK(again);
    CHECK(*again == once);
    CHECK(cc::canonical_json(*cc::parse_json(once)).value() == once);
  }
  // The strict mode still refuses them, and a malformed long number stays an error.
  CHECK(parse_failure("[100000000000000000000]", strict).message.find("outside the exact range") !=
        std::string::npos);
  CHECK(parse_failure("[0100000000000000000000]").message.find("number") != std::string::npos);
}
