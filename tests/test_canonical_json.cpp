#include <bit>
#include <cstdint>
#include <sstream>

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
  // Large objects take the heap path of the sorter.
  cc::Json big = cc::Json::object();
  for (int i = 40; i > 0; --i) big.set("k" + std::to_string(i), i);
  const std::string s = *cc::canonical_json(big);
  CHECK(s.rfind(R"({"k1":1,"k10":10,"k11":11,)", 0) == 0);
  CHECK(s.size() > 300);
}

TEST_CASE("canonicalize reports parse errors", "[canonical_json]") {
  auto r = cc::canonicalize(R"({"a":1,"a":2})");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kParse);
}
