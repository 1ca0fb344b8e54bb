#include "cortex_connectors/signing.h"

#include <array>
#include <vector>

#include "cortex_connectors/canonical_json.h"
#include "internal/digest.h"
#include "internal/sodium.h"

namespace cortex_connectors {

namespace {

const unsigned char* uchars(const void* p) { return static_cast<const unsigned char*>(p); }

Error invalid(const char* what) { return Error{ErrorCode::kInvalid, what, {}, {}}; }

}  // namespace

std::string base64url_encode(std::span<const std::byte> data) {
  internal::ensure_sodium();
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(data.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), uchars(data.data()), data.size(), kVariant);
  out.resize(out.size() - 1);  // the encoded length counts the terminating NUL
  return out;
}

Result<std::vector<std::byte>> base64url_decode(std::string_view text) {
  internal::ensure_sodium();
  std::vector<std::byte> out(text.size() / 4 * 3 + 3);
  std::size_t len = 0;
  const char* end = nullptr;
  if (text.size() % 4 == 1 ||
      sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(),  // NOLINT
                        text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size()) {
    return Error{ErrorCode::kParse, "[brAInwav] invalid base64url text", {}, {}};
  }
  out.resize(len);
  return out;
}

std::string generate_secret_hex(std::size_t bytes) {
  internal::ensure_sodium();
  std::vector<unsigned char> raw(bytes);
  randombytes_buf(raw.data(), raw.size());
  std::string out(2 * bytes + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), raw.data(), raw.size());
  sodium_memzero(raw.data(), raw.size());
  out.pop_back();  // the terminating NUL
  return out;
}

std::string sign_hmac_sha256(std::span<const std::byte> key, std::string_view message) {
  const auto mac = internal::hmac_sha256(key, message);
  return base64url_encode(std::as_bytes(std::span(mac)));
}

bool verify_hmac_sha256(std::span<const std::byte> key, std::string_view message,
                        std::string_view signature) noexcept {
  try {
    if (signature.size() != internal::kHmacSha256Base64Chars) return false;
    auto decoded = base64url_decode(signature);
    if (!decoded || decoded->size() != internal::kHmacSha256Bytes) return false;
    const auto mac = internal::hmac_sha256(key, message);
    return crypto_verify_32(mac.data(), uchars(decoded->data())) == 0;
  } catch (...) {
    return false;
  }
}

Result<Json> verify_signed_body(std::string_view body, std::span<const std::byte> key) {
  auto parsed = parse_json(body);
  if (!parsed) return std::move(parsed).error();
  Json& doc = *parsed;
  if (!doc.is_object()) return invalid("[brAInwav] signed body must be a JSON object");
  Json* payload = doc.find("payload");
  const Json* signature = doc.find("signature");
  if (payload == nullptr || !payload->is_object()) {
    return invalid("[brAInwav] signed body has no \"payload\" object");
  }
  if (signature == nullptr || !signature->is_string()) {
    return invalid("[brAInwav] signed body has no \"signature\" string");
  }
  auto canonical = canonical_json(*payload);
  if (!canonical) return std::move(canonical).error();
  if (!verify_hmac_sha256(key, *canonical, signature->as_string())) {
    return Error{ErrorCode::kSignature, "[brAInwav] signature does not match the payload", {}, {}};
  }
  return std::move(*payload);
}

}  // namespace cortex_connectors
