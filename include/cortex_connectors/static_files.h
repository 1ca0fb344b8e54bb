// The rules for serving static files (the dashboard bundle, docs/dashboard.md) without any
// network code: which request paths name which files, their types and caching, and the
// representations prepared once per file.
//
// Thread-safety: pure functions; a StaticAsset is a value.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cortex_connectors/export.h"

namespace cortex_connectors {

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
// representation not smaller than the identity bytes stays empty. CPU-heavy (brotli 11; what it
// costs per KB: bench/README.md).
CORTEX_CONNECTORS_API void compress_static_asset(StaticAsset& asset, bool gzip, bool brotli);

}  // namespace cortex_connectors
