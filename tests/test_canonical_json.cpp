#include <bit>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>

#include "cortex_connectors/canonical_json.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::read_data;

TEST_CASE("every RFC 8785 vector canonicalizes byte for byte", "[canonical_json]") {
  for (const char* name : {"arrays", "french", "structures", "unicode", "values", "weird"}) {
    INFO(name);
    const std::string input = read_data(std::string("jcs/input/") + name + ".json");
    const std::string expected = read_data(std::string("jcs/output/") + name + ".json");
    auto out = cc::canonicalize(input);
    REQUIRE_OK(out);
    CHECK(*out == expected);

    // outhex holds the same bytes as hex pairs.
    std::istringstream hex(read_data(std::string("jcs/outhex/") + name + ".txt"));
    std::string from_hex;
    std::string pair;
    while (hex >> pair) from_hex.push_back(static_cast<char>(std::stoi(pair, nullptr, 16)));
    CHECK(from_hex == expected);
  }
}

TEST_CASE("canonicalizing canonical output is the identity", "[canonical_json]") {
  for (const char* name : {"arrays", "french", "structures", "unicode", "values", "weird"}) {
    const std::string expected = read_data(std::string("jcs/output/") + name + ".json");
    auto again = cc::canonicalize(expected);
    REQUIRE_OK(again);
    CHECK(*again == expected);
  }
}

TEST_CASE("numbers follow ECMAScript Number.prototype.toString", "[canonical_json]") {
  std::istringstream lines(read_data("jcs/numbers.txt"));
  std::string line;
  int count = 0;
  int failures = 0;
  while (std::getline(lines, line)) {
    const auto comma = line.find(',');
    REQUIRE(comma != std::string::npos);
    const std::uint64_t bits = std::stoull(line.substr(0, comma), nullptr, 16);
    const double d = std::bit_cast<double>(bits);
    std::string out;
    cc::append_canonical_number(out, d);
    if (out != line.substr(comma + 1)) {
      ++failures;
      FAIL_CHECK(line << " gave " << out);
    }
    ++count;
  }
  CHECK(count == 2000);
  CHECK(failures == 0);
}

TEST_CASE("number edge cases", "[canonical_json]") {
  auto num = [](double d) {
    std::string s;
    cc::append_canonical_number(s, d);
    return s;
  };
  CHECK(num(-0.0) == "0");
  CHECK(num(1e21) == "1e+21");
  CHECK(num(1e-7) == "1e-7");
  CHECK(num(0.000001) == "0.000001");
  CHECK(num(9007199254740992.0) == "9007199254740992");
  CHECK(num(-42) == "-42");
  CHECK(num(56.0) == "56");
  CHECK(num(0.1 + 0.2) == "0.30000000000000004");
  CHECK(*cc::canonicalize("[-0, -0.0, 1E30, 4.50, 2e-3]") == "[0,0,1e+30,4.5,0.002]");
}

TEST_CASE("NaN and infinities cannot be canonicalized", "[canonical_json]") {
  cc::Json doc = cc::Json::object();
  doc.set("x", std::numeric_limits<double>::quiet_NaN());
  auto r = cc::canonical_json(doc);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kInvalid);
  std::string out = "keep";
  CHECK_FALSE(cc::append_canonical_json(out, cc::Json(std::numeric_limits<double>::infinity())));
  CHECK(out == "keep");
}

TEST_CASE("strings use the minimal JCS escapes", "[canonical_json]") {
  std::string out;
  cc::append_canonical_string(out, std::string_view("\"\\\b\f\n\r\t\x01\x1f\x7f/\xe2\x82\xac", 14));
  CHECK(out == "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f/\xe2\x82\xac\"");
  CHECK(*cc::canonicalize(R"(["\u0000", "\u000F", "\/", "</script>"])") ==
        R"(["\u0000","\u000f","/","</script>"])");
}

TEST_CASE("keys sort by UTF-16 code units, not code points", "[canonical_json]") {
  // U+1F602 is written with the surrogates D83D DE02 and so sorts before U+FB33.
  CHECK(cc::compare_utf16("\xf0\x9f\x98\x82", "\xef\xac\xb3") < 0);
  CHECK(cc::compare_utf16("\xef\xac\xb3", "\xf0\x9f\x98\x82") > 0);
  CHECK(cc::compare_utf16("a", "b") < 0);
  CHECK(cc::compare_utf16("", "a") < 0);
  CHECK(cc::compare_utf16("ab", "a") > 0);
  CHECK(cc::compare_utf16("A", "a") < 0);
  CHECK(cc::compare_utf16("same", "same") == 0);
  CHECK(cc::compare_utf16("\xed\x9f\xbf", "\xf0\x90\x80\x80") < 0);  // U+D7FF < U+10000
  // Larger objects, in reverse order.
  cc::Json big = cc::Json::object();
  for (int i = 40; i > 0; --i) {
    std::string key = "k";  // appended: GCC 12 -O3 reports a false -Wrestrict for "k" + s
    key += std::to_string(i);
    big.set(key, i);
  }
  const std::string s = *cc::canonical_json(big);
  CHECK(s.rfind(R"({"k1":1,"k10":10,"k11":11,)", 0) == 0);
  CHECK(s.size() > 300);
}

TEST_CASE("canonicalize reports parse errors", "[canonical_json]") {
  auto r = cc::canonicalize(R"({"a":1,"a":2})");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kParse);
}

TEST_CASE("string escaping is right at every length and position", "[canonical_json]") {
  using namespace std::string_literals;
  // What needs an escape, and neighbours of the word-at-a-time test's thresholds that do not:
  // each text and its JCS form.
  const std::pair<std::string, std::string> units[] = {{"\"", R"(\")"},
                                                       {"\\", R"(\\)"},
                                                       {"\0"s, R"(\u0000)"},
                                                       {"\x01", R"(\u0001)"},
                                                       {"\x1f", R"(\u001f)"},
                                                       {"\t", R"(\t)"},
                                                       {" ", " "},
                                                       {"!", "!"},
                                                       {"#", "#"},
                                                       {"[", "["},
                                                       {"]", "]"},
                                                       {"\x7f", "\x7f"},
                                                       {"\xc2\x80", "\xc2\x80"},
                                                       {"\xdc\xa2", "\xdc\xa2"},
                                                       {"\xef\xbf\xbf", "\xef\xbf\xbf"},
                                                       {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"}};
  for (std::size_t len = 0; len <= 40; ++len) {
    for (std::size_t pos = 0; pos <= len; ++pos) {
      for (const auto& [unit, escaped] : units) {
        // `len` x's with the unit at `pos`, and for longer texts a second escape at the end.
        const std::string tail = len > 3 ? "\n" : "";
        std::string text(pos, 'x');
        text.append(unit).append(len - pos, 'x').append(tail);
        std::string expected = "prefix\"";
        expected.append(pos, 'x').append(escaped).append(len - pos, 'x');
        expected.append(len > 3 ? R"(\n)" : "").append("\"");
        std::string out = "prefix";
        cc::append_canonical_string(out, text);
        INFO("len " << len << " pos " << pos << " unit " << escaped);
        REQUIRE(out == expected);
      }
    }
  }
  std::string out = "prefix";
  cc::append_canonical_string(out, "");
  CHECK(out == "prefix\"\"");
}

TEST_CASE("canonicalize writes integers beyond 2^53 as the doubles they round to",
          "[canonical_json]") {
  // simdjson reads these as INT64 or UINT64; ECMAScript reads every number as a double.
  CHECK(*cc::canonicalize("[9007199254740993,18446744073709551615,-9223372036854775808,"
                          "9223372036854775807,-0,1.0,123456789012345678,-9007199254740993,"
                          "9007199254740992,1E-7,0.1e1]") ==
        "[9007199254740992,18446744073709552000,-9223372036854776000,9223372036854776000,0,1,"
        "123456789012345680,-9007199254740992,9007199254740992,1e-7,1]");
}

TEST_CASE("objects of one shape sort alike whatever their member order", "[canonical_json]") {
  // Records with the same keys in different orders, and other records of the same size, as the
  // serializer's per-shape order cache sees them.
  std::string text = "[";
  std::string expected = "[";
  for (int i = 0; i < 60; ++i) {
    const int n = 4 + i % 7;
    std::map<std::string, int> sorted;
    text += i == 0 ? "{" : ",{";
    for (int k = 0; k < n; ++k) {
      // A rotation of 0..n-1, reversed for odd i; another key set for every third record.
      const int key = ((i % 2 != 0 ? n - 1 - k : k) + i) % n + (i % 3 == 0 ? 100 : 0);
      const std::string name = "key" + std::to_string(key);
      sorted[name] = k;
      text += (k == 0 ? "\"" : ",\"") + name + "\":" + std::to_string(k);
    }
    text += "}";
    expected += i == 0 ? "{" : ",{";
    bool first = true;
    for (const auto& [name, value] : sorted) {
      expected += (first ? "\"" : ",\"") + name + "\":" + std::to_string(value);
      first = false;
    }
    expected += "}";
  }
  text += "]";
  expected += "]";
  auto out = cc::canonicalize(text);
  REQUIRE_OK(out);
  CHECK(*out == expected);
  auto parsed = cc::parse_json(text);
  REQUIRE_OK(parsed);
  CHECK(*cc::canonical_json(*parsed) == expected);
}

TEST_CASE("canonicalize reports exactly what parse_json reports", "[canonical_json]") {
  cc::JsonParseOptions strict;
  strict.reject_unsafe_integers = true;
  strict.max_depth = 3;
  strict.max_string_bytes = 8;
  // A duplicate in an object whose key count matches an earlier, valid one.
  for (const char* text :
       {R"([{"a":1,"b":2,"c":3,"d":4},{"d":1,"c":2,"b":3,"a":4},{"a":1,"b":2,"c":3,"a":4}])",
        "[[[[1]]]]", R"(["123456789"])", R"({"123456789":1})", "[1, 9007199254740993]",
        "18446744073709551615", R"({"a":1} x)", "[1,]", "\"\xc3\x28\"", ""}) {
    INFO(text);
    auto expected = cc::parse_json(text, strict);
    REQUIRE_FALSE(expected);
    auto r = cc::canonicalize(text, strict);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == expected.error().message);
    CHECK(r.error().offset == expected.error().offset);
  }
  CHECK(cc::canonicalize(
            R"([{"a":1,"b":2,"c":3,"d":4},{"d":1,"c":2,"b":3,"a":4},{"a":1,"b":2,"c":3,"a":4}])")
            .error()
            .offset == 72u);
}

TEST_CASE("canonical_json reuses its buffer without leaking earlier output", "[canonical_json]") {
  cc::Json big = cc::Json::array();
  for (int i = 0; i < 5000; ++i) {
    std::string item = "item ";
    item += std::to_string(i);
    big.push_back(item);
  }
  const std::string big_text = *cc::canonical_json(big);
  CHECK(big_text.size() > 50000);
  cc::Json small = cc::Json::object();
  small.set("b", 2);
  small.set("a", "x");
  CHECK(*cc::canonical_json(small) == R"({"a":"x","b":2})");
  CHECK(*cc::canonical_json(big) == big_text);
  std::string out = "log: ";
  REQUIRE(cc::append_canonical_json(out, small));
  CHECK(out == R"(log: {"a":"x","b":2})");
  CHECK(*cc::pretty_json(*cc::parse_json(R"({"b":[1,{"y":null,"x":[]},{}],"a":"\n","c":[]})")) ==
        "{\n  \"a\": \"\\n\",\n  \"b\": [\n    1,\n    {\n      \"x\": [],\n      \"y\": null\n"
        "    },\n    {}\n  ],\n  \"c\": []\n}");
}
