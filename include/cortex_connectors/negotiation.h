// The HTTP decisions of the service, without any network code: content negotiation, ETag
// matching, bearer authentication, request ids and the branded error body. The server only
// translates these into responses, so the rules are tested here, once.
//
// Thread-safety: pure functions (generate_request_id() uses a per-thread generator).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cortex_connectors/export.h"

namespace cortex_connectors {

enum class ContentEncoding : std::uint8_t { kIdentity, kGzip, kBrotli };

// HTTP tokens (header names, codings, schemes) and configuration words compare without ASCII
// case; these are the one pair of helpers the library, the server and the fuzzers use for it.
CORTEX_CONNECTORS_API bool ascii_iequals(std::string_view a, std::string_view b) noexcept;
// `text` with A-Z lowered (other bytes, UTF-8 included, as they are).
CORTEX_CONNECTORS_API std::string ascii_lower(std::string_view text);

// Returns "identity", "gzip" or "br".
CORTEX_CONNECTORS_API std::string_view to_string(ContentEncoding encoding) noexcept;

// Picks the encoding for `accept_encoding` (RFC 9110 section 12.5.3): the highest q-value among
// br, gzip and identity wins; on a tie br, then gzip, then identity (smallest body first).
// "*" stands for any coding not listed; q=0 refuses. An empty or absent header means identity.
// When everything is refused, identity is still chosen (the server then serves it rather than
// 406, as most servers do).
CORTEX_CONNECTORS_API ContentEncoding choose_encoding(std::string_view accept_encoding) noexcept;

// The same choice restricted to the variants a resource has (identity always exists): the
// acceptable variant with the highest q-value, ties broken as above. A static file whose gzip or
// brotli form would not be smaller has none.
CORTEX_CONNECTORS_API ContentEncoding choose_encoding(std::string_view accept_encoding,
                                                      bool have_gzip, bool have_brotli) noexcept;

// True when an If-None-Match header value matches `etag` (a quoted strong ETag): "*", or any
// entity-tag of the comma-separated list, compared weakly (W/"x" matches "x") as RFC 9110
// section 13.1.2 requires for If-None-Match. Malformed lists never match.
CORTEX_CONNECTORS_API bool if_none_match(std::string_view header, std::string_view etag) noexcept;

// Outcome of checking an Authorization header against the configured API keys.
enum class AuthResult : std::uint8_t {
  kOk,         // "Bearer <key>" with a configured key
  kMissing,    // no Authorization header          -> 401
  kMalformed,  // not "Bearer <token>"              -> 401
  kForbidden,  // a well-formed token that is no key -> 403
};

// Checks `authorization` (the raw header value, empty when absent) against `keys`. The scheme is
// case-insensitive; the token is compared with every key in constant time, whatever matches.
CORTEX_CONNECTORS_API AuthResult check_bearer(std::string_view authorization,
                                              std::span<const std::string> keys) noexcept;

// {"detail":"[brAInwav] <message>"}: the body of every error response.
CORTEX_CONNECTORS_API std::string detail_body(std::string_view message);

// True when a client-sent X-Request-Id may be echoed: 1..128 characters of [A-Za-z0-9._:-].
CORTEX_CONNECTORS_API bool is_sane_request_id(std::string_view id) noexcept;

// A fresh request id: 32 lowercase hex characters, unique within and across processes: 64
// random bits drawn once per thread, then a 64-bit per-thread counter (one getrandom() per
// thread rather than per request). Not a secret: do not use it as one.
CORTEX_CONNECTORS_API std::string generate_request_id();
// The same, written into `out` (its capacity reused: no allocation once it holds 32 bytes).
CORTEX_CONNECTORS_API void generate_request_id(std::string& out);

}  // namespace cortex_connectors
