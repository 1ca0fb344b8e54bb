#include "cortex_connectors/static_files.h"

#include <optional>

#include <fmt/format.h>

#include "cortex_connectors/negotiation.h"
#include "internal/compress.h"
#include "internal/digest.h"

namespace cortex_connectors {

namespace {

// The extension of the last segment of `name` (after its last '.'), or "".
std::string_view extension(std::string_view name) noexcept {
  const auto slash = name.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  const auto dot = base.rfind('.');
  return dot == std::string_view::npos ? std::string_view{} : base.substr(dot + 1);
}

}  // namespace

std::optional<std::string_view> static_relative_path(std::string_view decoded) noexcept {
  constexpr std::size_t kMaxPath = 1024;
  if (decoded.empty()) return std::string_view("index.html");
  if (decoded.size() > kMaxPath || decoded.front() == '/') return std::nullopt;
  for (const char c : decoded) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') return std::nullopt;
  }
  std::string_view rest = decoded;
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    // Empty segments ("a//b", a trailing "/"), ".", ".." and dot-files.
    if (segment.empty() || segment.front() == '.') return std::nullopt;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
    if (rest.empty()) return std::nullopt;
  }
  return decoded;
}

std::string_view static_content_type(std::string_view name) noexcept {
  struct Type {
    std::string_view ext;
    std::string_view type;
  };
  static constexpr Type kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"txt", "text/plain; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/vnd.microsoft.icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"wasm", "application/wasm"},
  };
  const std::string_view ext = extension(name);
  for (const auto& t : kTypes) {
    if (ascii_iequals(ext, t.ext)) return t.type;
  }
  return "application/octet-stream";
}

bool is_fingerprinted(std::string_view name) noexcept {
  const auto slash = name.rfind('/');
  std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  const auto last_dot = base.rfind('.');
  if (last_dot == std::string_view::npos || last_dot + 1 == base.size()) return false;
  base = base.substr(0, last_dot);
  const auto hash_dot = base.rfind('.');
  if (hash_dot == std::string_view::npos || hash_dot == 0) return false;
  const std::string_view hash = base.substr(hash_dot + 1);
  if (hash.size() < 8 || hash.size() > 64) return false;
  for (const char c : hash) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string_view static_cache_control(std::string_view name) noexcept {
  return is_fingerprinted(name) ? "public, max-age=31536000, immutable" : "no-cache";
}

void compress_static_asset(StaticAsset& a, bool gzip, bool brotli) {
  if (a.identity.empty()) return;
  if (gzip) {
    std::string gz = internal::static_gzip(a.identity);
    if (gz.size() < a.identity.size()) a.gzip = std::move(gz);
  }
  if (brotli) {
    std::string br = internal::static_brotli(a.identity);
    if (br.size() < a.identity.size()) a.brotli = std::move(br);
  }
}

StaticAsset prepare_static_asset(std::string_view name, std::string bytes) {
  StaticAsset a = prepare_static_asset(name, std::move(bytes), std::nullopt, std::nullopt);
  compress_static_asset(a, true, true);
  return a;
}

StaticAsset prepare_static_asset(std::string_view name, std::string bytes,
                                 std::optional<std::string> gzip,
                                 std::optional<std::string> brotli) {
  StaticAsset a;
  a.identity = std::move(bytes);
  a.content_type = static_content_type(name);
  a.cache_control = static_cache_control(name);
  // Built with fmt rather than operator+: GCC 12 at -O3 reports a false -Wrestrict for
  // `"\"" + std::string`.
  const std::string digest = internal::sha256_hex(a.identity);
  const std::string_view tag = std::string_view(digest).substr(0, 32);
  a.etag = fmt::format("\"{}\"", tag);
  a.etag_gzip = fmt::format("\"{}-gz\"", tag);
  a.etag_brotli = fmt::format("\"{}-br\"", tag);
  if (gzip && gzip->size() < a.identity.size()) a.gzip = std::move(*gzip);
  if (brotli && brotli->size() < a.identity.size()) a.brotli = std::move(*brotli);
  return a;
}

}  // namespace cortex_connectors
