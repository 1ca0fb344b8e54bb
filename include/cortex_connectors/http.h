// The HTTP decisions of the service, without any network code: content negotiation, ETag
// matching, bearer authentication, request ids and the branded JSON bodies. The server only
// translates these into responses, so the rules are tested here, once.
//
// Thread-safety: pure functions (generate_request_id() uses a per-thread generator).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cortex_connectors/export.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/snapshot.h"

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

// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` request header.
struct TraceParent {
  std::string trace_id;    // 32 lowercase hex characters, not all zero
  std::string parent_id;   // 16 lowercase hex characters, not all zero: the caller's span
  std::uint8_t flags = 0;  // trace-flags; bit 0 is "sampled"
};

// Parses a traceparent header value by the W3C rules: version 00 is exactly
// "00-<trace-id>-<parent-id>-<flags>" (55 characters, lowercase hex); a higher version is read
// by its first four fields and may only continue with "-..."; version ff, upper-case hex, an
// all-zero trace-id or parent-id, or any other shape is invalid. Returns nullopt when invalid:
// the caller then ignores the header and starts a new trace.
CORTEX_CONNECTORS_API std::optional<TraceParent> parse_traceparent(std::string_view value);

// A traceparent header value (version 00) for `trace_id` and `span_id`.
CORTEX_CONNECTORS_API std::string format_traceparent(std::string_view trace_id,
                                                     std::string_view span_id,
                                                     std::uint8_t flags = 1);

// A fresh trace id (32 lowercase hex characters, never all zero) and span id (16): random bits
// from a per-thread generator seeded once from the operating system. Not secrets.
CORTEX_CONNECTORS_API std::string generate_trace_id();
CORTEX_CONNECTORS_API std::string generate_span_id();

// The body of GET /health: status "ok" (a snapshot, no failure since), "degraded" (a snapshot,
// but the last load failed) or "starting" (no snapshot yet), the snapshot version and connector
// count, and the last error (message and findings or paths tried; never a secret). With a
// history (RegistryOptions::history), "history": {"store", "degraded", "reason" when degraded,
// "latestVersion", "pending"}; a degraded history does not change "status".
CORTEX_CONNECTORS_API std::string health_body(const Registry& registry,
                                              std::chrono::system_clock::time_point now);

// The body of a 503 from the service map before any snapshot exists: the cached load error
// (attempted paths and messages), or a note that the first load is still running.
CORTEX_CONNECTORS_API std::string unavailable_body(const Registry& registry);

// ---- Static files (the dashboard bundle, docs/dashboard.md) ----

// Maps the percent-decoded part of a request path below a static mount point (after
// "/apps/chatgpt-dashboard/") to the bundle-relative file it names, or nullopt when the request
// must be 404 without looking at the disk: "" names "index.html"; refused are a leading "/"
// (absolute), empty, "." and ".." segments, dot-files (".env", ".git/..."), backslashes, NUL and
// other control bytes, and paths over 1024 bytes. A returned name is safe to join to the root;
// symlinks are the loader's concern. The result views `decoded` (or a static "index.html").
CORTEX_CONNECTORS_API std::optional<std::string_view> static_relative_path(
    std::string_view decoded) noexcept;

// The Content-Type for a file name by its extension (case-insensitive): text types carry
// "charset=utf-8", JavaScript is "text/javascript" (RFC 9239); unknown extensions are
// "application/octet-stream".
CORTEX_CONNECTORS_API std::string_view static_content_type(std::string_view name) noexcept;

// True for a content-hashed file name: a final segment "<stem>.<8-64 lowercase hex>.<ext>",
// e.g. "dashboard.3f2a9c1b0d4e5f67.js". Such a file never changes under its name.
CORTEX_CONNECTORS_API bool is_fingerprinted(std::string_view name) noexcept;

// "public, max-age=31536000, immutable" for fingerprinted names, else "no-cache" (revalidate
// with the ETag every time).
CORTEX_CONNECTORS_API std::string_view static_cache_control(std::string_view name) noexcept;

// A static file prepared once for serving: its bytes, gzip (level 9) and brotli (quality 11,
// 5 above 1 MiB) variants, each kept only when smaller than the identity bytes, a strong ETag
// over the identity bytes, Content-Type and Cache-Control. Nothing is compressed per request.
struct StaticAsset {
  std::string identity;
  std::string gzip;    // empty: no gzip variant
  std::string brotli;  // empty: no brotli variant
  // Strong ETags, one per representation (RFC 9110 8.8.3: a strong validator changes with
  // the content coding): "\"<32 hex of SHA-256 of identity>\"", and the same with "-gz" / "-br"
  // before the closing quote for the compressed variants.
  std::string etag;
  std::string etag_gzip;
  std::string etag_brotli;
  std::string_view content_type;
  std::string_view cache_control;
};

// Builds the StaticAsset of file `name` (bundle-relative) holding `bytes`, with its gzip (9) and
// brotli (11; 5 above 1 MiB) representations when they are smaller.
CORTEX_CONNECTORS_API StaticAsset prepare_static_asset(std::string_view name, std::string bytes);

// The same, with representations made before: `gzip` and `brotli` are the bytes of the files
// `<name>.gz` and `<name>.br` beside it (as nginx's gzip_static and brotli_static serve them),
// kept when smaller than `bytes`; one not given (nullopt) is left empty, for
// compress_static_asset() to make later. The given bytes are trusted to decode to `bytes`: the
// build writes them with the file.
CORTEX_CONNECTORS_API StaticAsset prepare_static_asset(std::string_view name, std::string bytes,
                                                       std::optional<std::string> gzip,
                                                       std::optional<std::string> brotli);

// Makes the representations `asset` lacks (as prepare_static_asset() without them does); a
// representation not smaller than the identity bytes stays empty. CPU-heavy: brotli 11 costs
// ~1.5 ms per KB.
CORTEX_CONNECTORS_API void compress_static_asset(StaticAsset& asset, bool gzip, bool brotli);

}  // namespace cortex_connectors
