// The dashboard's static path rules (src/http.cpp): static_relative_path() on the input as is and
// after percent-decoding (what cpp-httplib hands the route), plus the name-based helpers. A name
// it accepts must be safe to join to the bundle root: relative, no empty, "." or ".." segment, no
// dot-file, no backslash or control byte, at most 1024 bytes, and exactly the input (or
// "index.html" for the empty path).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cortex_connectors/static_files.h"
#include "fuzz_check.h"  // last: it defines the FUZZ_CHECK() macro

namespace cc = cortex_connectors;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 &&
        hex_value(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

void check_path(std::string_view decoded) {
  const auto name = cc::static_relative_path(decoded);
  if (!name) return;
  if (decoded.empty()) {
    FUZZ_CHECK(*name == "index.html");
  } else {
    FUZZ_CHECK(*name == decoded);
  }
  FUZZ_CHECK(!name->empty() && name->size() <= 1024);
  FUZZ_CHECK(name->front() != '/');
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = name->find('/', start);
    const std::string_view segment = name->substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    FUZZ_CHECK(!segment.empty());
    FUZZ_CHECK(segment.front() != '.');  // also rules out "." and ".."
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  for (const char c : *name) {
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u >= 0x20 && u != 0x7F && c != '\\');
  }
  const std::string_view cache = cc::static_cache_control(*name);
  FUZZ_CHECK(cache ==
             (cc::is_fingerprinted(*name) ? "public, max-age=31536000, immutable" : "no-cache"));
  FUZZ_CHECK(!cc::static_content_type(*name).empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);  // NOLINT
  check_path(input);
  check_path(percent_decode(input));
  return 0;
}
