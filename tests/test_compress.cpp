// The build-time compression of response bodies (src/internal/compress.h): every body decodes
// back to itself, and brotli streams declare the smallest window that holds the body.
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <brotli/decode.h>
#include <catch2/catch.hpp>

#include "internal/compress.h"

namespace cc = cortex_connectors;

namespace {

std::string brotli_decompress(const std::string& data, std::size_t expected) {
  std::string out(expected + 1, '\0');  // one spare byte: a longer output fails the check
  std::size_t size = out.size();
  const auto rc =
      BrotliDecoderDecompress(data.size(), reinterpret_cast<const std::uint8_t*>(data.data()),
                              &size, reinterpret_cast<std::uint8_t*>(out.data()));
  if (rc != BROTLI_DECODER_RESULT_SUCCESS) return "(brotli decoding failed)";
  out.resize(size);
  return out;
}

// The window (WBITS) a brotli stream declares in its first bits (RFC 7932, section 9.1).
int brotli_window_bits(const std::string& stream) {
  REQUIRE(stream.size() >= 1);
  const auto b = static_cast<unsigned char>(stream[0]);
  if ((b & 1U) == 0) return 16;
  const unsigned n = (b >> 1U) & 7U;
  if (n != 0) return static_cast<int>(17 + n);
  const unsigned m = (b >> 4U) & 7U;
  REQUIRE(m != 1);  // large-window brotli: never produced here
  return m == 0 ? 17 : static_cast<int>(8 + m);
}

// JSON-like text that compresses, of exactly `size` bytes.
std::string body_of(std::size_t size, std::mt19937& rng) {
  static constexpr const char* kWords[] = {
      "\"id\":", "\"endpoint\":", "\"https://", ".example.invalid/mcp\",", "{", "}", "[",
      "]",       "\"scopes\":",   "\"s:read\","};
  std::string s;
  while (s.size() < size) {
    s += kWords[rng() % std::size(kWords)];
    s += std::to_string(rng() % 100000);
  }
  s.resize(size);
  return s;
}

}  // namespace

TEST_CASE("compressed bodies decode to the body, around every brotli window step", "[compress]") {
  std::mt19937 rng(7);
  std::vector<std::size_t> sizes = {0, 1, 100};
  for (int bits = 10; bits <= 22; ++bits) {
    const std::size_t room = (std::size_t{1} << bits) - 16;  // what a window of `bits` holds
    for (std::size_t s : {room - 1, room, room + 1}) sizes.push_back(s);
  }
  sizes.push_back(std::size_t{5} << 20);  // above the largest window used
  for (const std::size_t size : sizes) {
    INFO("size " << size);
    const std::string body = body_of(size, rng);
    std::string inflated;
    REQUIRE(cc::internal::gzip_decompress(cc::internal::gzip_compress(body, 6), inflated));
    CHECK(inflated == body);
    // The largest sizes only at the fast setting, as the registry compresses them.
    for (const int quality :
         size > (std::size_t{64} << 10) ? std::vector<int>{5} : std::vector<int>{5, 11}) {
      INFO("quality " << quality);
      CHECK(brotli_decompress(cc::internal::brotli_compress(body, quality), size) == body);
    }
  }
}

TEST_CASE("brotli bodies use the smallest window that holds them", "[compress]") {
  // The encoder sizes and clears its tables by the window: the default (22 bits, 4 MiB) for a
  // 3 KB service map cost ~1 ms per compression for nothing.
  std::mt19937 rng(11);
  const auto window = [&](std::size_t size) {
    return brotli_window_bits(cc::internal::brotli_compress(body_of(size, rng), 5));
  };
  CHECK(window(1) == 10);     // (an empty body is brotli's fixed empty stream)
  CHECK(window(1000) == 10);  // 2^10 - 16 = 1008 bytes
  CHECK(window(1009) == 11);
  CHECK(window(3000) == 12);  // the example's service map
  CHECK(window((std::size_t{1} << 16) - 16) == 16);
  CHECK(window((std::size_t{1} << 16) - 15) == 17);
  CHECK(window(std::size_t{4} << 20) == 22);  // 10 000 connectors
  CHECK(window(std::size_t{5} << 20) == 22);  // never above the default
}
