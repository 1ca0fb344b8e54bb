// parse_json + canonical_json + pretty_json on arbitrary bytes.
//
// Beyond "never crashes": whatever parses canonicalizes; the canonical form parses and is a
// fixed point of canonicalization (RFC 8785 idempotence; Json equality is member order
// sensitive, so values are compared by their canonical forms); the pretty form parses back to
// the same canonical form; and the strict integer mode accepts only what the default mode
// accepts, with the same value.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "fuzz_check.h"  // last: it defines the FUZZ_CHECK() macro

namespace cc = cortex_connectors;

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);  // NOLINT
  cc::JsonParseOptions options;
  options.max_string_bytes = 4096;
  options.max_depth = 48;
  auto parsed = cc::parse_json(text, options);

  cc::JsonParseOptions strict = options;
  strict.reject_unsafe_integers = true;
  auto strict_parsed = cc::parse_json(text, strict);
  if (strict_parsed) FUZZ_CHECK(parsed && *strict_parsed == *parsed);
  if (!parsed) return 0;

  auto canonical = cc::canonical_json(*parsed);
  FUZZ_CHECK(static_cast<bool>(canonical));
  auto again = cc::parse_json(*canonical, options);
  FUZZ_CHECK(static_cast<bool>(again));
  auto twice = cc::canonical_json(*again);
  FUZZ_CHECK(twice && *twice == *canonical);
  auto via_text = cc::canonicalize(text, options);
  FUZZ_CHECK(via_text && *via_text == *canonical);

  auto pretty = cc::pretty_json(*parsed);
  FUZZ_CHECK(static_cast<bool>(pretty));
  auto from_pretty = cc::parse_json(*pretty, options);
  FUZZ_CHECK(from_pretty && cc::canonical_json(*from_pretty).value() == *canonical);
  return 0;
}
