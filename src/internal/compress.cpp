#include "internal/compress.h"

#include <stdexcept>

#include <brotli/encode.h>
#include <zlib.h>

namespace cortex_connectors::internal {

std::string gzip_compress(std::string_view data, int level) {
  z_stream zs{};
  // 15 window bits + 16 selects the gzip wrapper.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("[brAInwav] zlib deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));  // NOLINT: zlib API
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());  // NOLINT
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("[brAInwav] zlib deflate failed");
  // The buffer was sized for incompressible input; snapshots keep their bodies for their whole
  // life, so give back the unused capacity (3.8 MB of a 4 MB buffer at 10 000 connectors).
  out.shrink_to_fit();
  return out;
}

bool gzip_decompress(std::string_view data, std::string& out) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return false;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));  // NOLINT: zlib API
  zs.avail_in = static_cast<uInt>(data.size());
  out.clear();
  char buf[65536];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);  // NOLINT
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END;
}

namespace {

// The smallest window that holds all of `size` bytes (a window of w bits holds 2^w - 16), within
// brotli's minimum and the default. The encoder sizes and clears its hash tables by the window:
// the default 22 bits cost ~1 ms per call at quality 5 even for a 3 KB body (0.4 ms with 12
// bits, the same output size); a window larger than the input gains nothing.
int brotli_window_for(std::size_t size) {
  int bits = BROTLI_MIN_WINDOW_BITS;
  while (bits < BROTLI_DEFAULT_WINDOW && (std::size_t{1} << bits) - 16 < size) ++bits;
  return bits;
}

}  // namespace

std::string brotli_compress(std::string_view data, int quality) {
  std::string out(BrotliEncoderMaxCompressedSize(data.size()), '\0');
  std::size_t size = out.size();
  if (BrotliEncoderCompress(quality, brotli_window_for(data.size()), BROTLI_MODE_TEXT, data.size(),
                            reinterpret_cast<const uint8_t*>(data.data()), &size,       // NOLINT
                            reinterpret_cast<uint8_t*>(out.data())) == BROTLI_FALSE) {  // NOLINT
    throw std::runtime_error("[brAInwav] brotli compression failed");
  }
  out.resize(size);
  out.shrink_to_fit();  // as in gzip_compress
  return out;
}

std::string static_gzip(std::string_view data) { return gzip_compress(data, 9); }

std::string static_brotli(std::string_view data) {
  constexpr std::size_t kMaxQualityBytes = std::size_t{1} << 20;
  return brotli_compress(data, data.size() > kMaxQualityBytes ? 5 : 11);
}

}  // namespace cortex_connectors::internal
