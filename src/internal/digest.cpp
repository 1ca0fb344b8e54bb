#include "internal/digest.h"

#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "internal/sodium.h"

namespace cortex_connectors::internal {

namespace {

const unsigned char* uchars(const void* p) { return static_cast<const unsigned char*>(p); }

// Fetched once: the implicit fetch behind EVP_sha256() costs a lock and a lookup per call.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string("[brAInwav] libcrypto ") + what + " failed");
}

}  // namespace

Sha256Digest sha256(std::string_view data) {
  Sha256Digest digest{};
  if (data.size() <= kSmallDigestInput) {
    ensure_sodium();
    crypto_hash_sha256(digest.data(), uchars(data.data()), data.size());
    return digest;
  }
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, sha256_md(), nullptr) != 1 ||
      len != digest.size()) {
    fail("SHA-256");
  }
  return digest;
}

std::string to_hex(const Sha256Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * digest.size(), '\0');
  for (std::size_t i = 0; i < digest.size(); ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  return out;
}

std::string sha256_hex(std::string_view data) { return to_hex(sha256(data)); }

Sha256Digest hmac_sha256(std::span<const std::byte> key, std::string_view message) {
  Sha256Digest mac{};
  if (message.size() <= kSmallDigestInput) {
    ensure_sodium();
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, uchars(key.data()), key.size());
    crypto_auth_hmacsha256_update(&state, uchars(message.data()), message.size());
    crypto_auth_hmacsha256_final(&state, mac.data());  // wipes the state
    return mac;
  }
  unsigned int len = 0;
  // HMAC() wipes its internal state (and the padded key) before returning.
  if (HMAC(sha256_md(), key.data(), static_cast<int>(key.size()), uchars(message.data()),
           message.size(), mac.data(), &len) == nullptr ||
      len != mac.size()) {
    fail("HMAC-SHA256");
  }
  return mac;
}

}  // namespace cortex_connectors::internal
