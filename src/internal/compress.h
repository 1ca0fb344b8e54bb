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

// The representations of a static file (the dashboard bundle), compressed once and served many
// times, with the settings the server and the build tool share: gzip 9, brotli 11 (5 above
// 1 MiB: quality 11 costs ~1.5 ms per KB).
std::string static_gzip(std::string_view data);
std::string static_brotli(std::string_view data);

}  // namespace cortex_connectors::internal
