// Any bytes as the outside text of a diagnostic (an error message, a path, a header value) in a
// Json tree: what canonical_json() and pretty_json() write is valid UTF-8 JSON that parses back
// to the text itself when it was valid UTF-8, and otherwise to replace_invalid_utf8() of it,
// which is valid and leaves valid text alone. The scalar scan agrees with simdjson's validator.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "fuzz_check.h"
#include "internal/utf8.h"

namespace cc = cortex_connectors;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);  // NOLINT
  const bool valid = cc::internal::is_valid_utf8(text);
  FUZZ_CHECK(valid == !cc::internal::find_invalid_utf8(text).has_value());
  const std::string expected = valid ? std::string(text) : cc::internal::replace_invalid_utf8(text);
  FUZZ_CHECK(cc::internal::is_valid_utf8(expected));
  FUZZ_CHECK(!valid || expected == text);

  // The text as a value, as a key and inside an array, next to fixed members.
  cc::Json doc = cc::Json::object();
  doc.set("msg", std::string(text));
  const bool fixed_key = text == "msg" || text == "list";
  if (!fixed_key) doc.set(text, 1);
  doc.set("list", cc::Json::Array{cc::Json(std::string(text)), cc::Json("ok")});
  for (const auto& written : {cc::canonical_json(doc), cc::pretty_json(doc)}) {
    FUZZ_CHECK(written.has_value());
    FUZZ_CHECK(cc::internal::is_valid_utf8(*written));
    auto parsed = cc::parse_json(*written);
    FUZZ_CHECK(parsed.has_value());
    FUZZ_CHECK(parsed->find("msg")->as_string() == expected);
    FUZZ_CHECK(parsed->find("list")->as_array()[0].as_string() == expected);
    // The key, written as the value is.
    if (!fixed_key) {
      const cc::Json* key = parsed->find(expected);
      FUZZ_CHECK(key != nullptr && key->is_number());
    }
  }
  return 0;
}
