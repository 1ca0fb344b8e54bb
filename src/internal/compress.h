// Build-time compression of response bodies (zlib and brotli from Debian). Bodies are compressed
// once per snapshot, never per request.
#pragma once

#include <string>
#include <string_view>

namespace cortex_connectors::internal {

// gzip (RFC 1952) of `data` at `level` (1..9).
std::string gzip_compress(std::string_view data, int level);
// Inflates gzip data; for tests and the client. Returns false on corrupt input.
bool gzip_decompress(std::string_view data, std::string& out);
// brotli (RFC 7932) of `data` at `quality` (0..11).
std::string brotli_compress(std::string_view data, int quality);

}  // namespace cortex_connectors::internal
