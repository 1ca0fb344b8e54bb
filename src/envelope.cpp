#include "cortex_connectors/envelope.h"

#include <cmath>
#include <utility>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/verify.h"
#include "internal/digest.h"

namespace cortex_connectors {

namespace {

Error error(ErrorCode code, std::string_view message) {
  return Error{code, "[brAInwav] snapshot envelope: " + std::string(message), {}, {}};
}

Json signed_part(const SnapshotEnvelope& e) {
  Json j = Json::object();
  j.set("bodySha256", e.body_sha256);
  j.set("publishedAt", format_rfc3339(e.published_at));
  j.set("scope", e.scope);
  j.set("type", kSnapshotEnvelopeType);
  j.set("version", e.version);
  return j;
}

bool is_sha256_hex(const std::string& s) {
  if (s.size() != 2 * internal::kSha256Bytes) return false;
  for (char c : s) {
    if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

// The signed part of a parsed envelope, checked member by member.
Result<SnapshotEnvelope> read_signed(const Json& s) {
  if (!s.is_object()) return error(ErrorCode::kInvalid, "\"signed\" must be an object");
  for (const auto& [name, value] : s.as_object()) {
    if (name != "bodySha256" && name != "publishedAt" && name != "scope" && name != "type" &&
        name != "version") {
      return error(ErrorCode::kInvalid, "\"signed\" has an unknown member");
    }
  }
  const Json* type = s.find("type");
  if (type == nullptr || !type->is_string() || type->as_string() != kSnapshotEnvelopeType) {
    return error(ErrorCode::kInvalid, "not a snapshot envelope (\"type\")");
  }
  SnapshotEnvelope e;
  const Json* version = s.find("version");
  if (version == nullptr || !version->is_number() || version->as_number() < 1 ||
      version->as_number() > static_cast<double>(kMaxEnvelopeVersion) ||
      std::floor(version->as_number()) != version->as_number()) {
    return error(ErrorCode::kInvalid, "\"version\" must be an integer from 1 to 2^53 - 1");
  }
  e.version = static_cast<std::uint64_t>(version->as_number());
  const Json* at = s.find("publishedAt");
  const auto time =
      at != nullptr && at->is_string() ? parse_rfc3339(at->as_string()) : std::nullopt;
  if (!time) return error(ErrorCode::kInvalid, "\"publishedAt\" must be an RFC 3339 date-time");
  e.published_at = *time;
  const Json* digest = s.find("bodySha256");
  if (digest == nullptr || !digest->is_string() || !is_sha256_hex(digest->as_string())) {
    return error(ErrorCode::kInvalid, "\"bodySha256\" must be 64 lowercase hex digits");
  }
  e.body_sha256 = digest->as_string();
  const Json* scope = s.find("scope");
  if (scope == nullptr || !scope->is_string()) {
    return error(ErrorCode::kInvalid, "\"scope\" must be a string");
  }
  e.scope = scope->as_string();
  return e;
}

}  // namespace

bool SnapshotEnvelope::covers(std::string_view body) const {
  return internal::sha256_hex(body) == body_sha256;
}

SnapshotEnvelope make_snapshot_envelope(std::string_view body, std::uint64_t version,
                                        std::chrono::system_clock::time_point published_at,
                                        std::string scope) {
  SnapshotEnvelope e;
  e.version = version;
  e.published_at = std::chrono::floor<std::chrono::seconds>(published_at);
  e.body_sha256 = internal::sha256_hex(body);
  e.scope = std::move(scope);
  return e;
}

Result<std::string> sign_snapshot_envelope(const SnapshotEnvelope& envelope,
                                           std::span<const std::byte> hmac_key,
                                           std::span<const Ed25519Key> ed25519_keys) {
  if (hmac_key.empty() && ed25519_keys.empty()) {
    return error(ErrorCode::kUsage, "no key to sign with");
  }
  if (envelope.version == 0 || envelope.version > kMaxEnvelopeVersion) {
    return error(ErrorCode::kUsage, "the version must be from 1 to 2^53 - 1");
  }
  Json signed_json = signed_part(envelope);
  auto message = canonical_json(signed_json);
  if (!message) return std::move(message).error();
  Json doc = Json::object();
  if (!hmac_key.empty()) doc.set("signature", sign_hmac_sha256(hmac_key, *message));
  if (!ed25519_keys.empty()) {
    auto signatures = parse_json(ed25519_signatures(ed25519_keys, *message));
    if (!signatures) return std::move(signatures).error();
    doc.set("signatures", std::move(*signatures));
  }
  doc.set("signed", std::move(signed_json));
  return canonical_json(doc);
}

Result<SnapshotEnvelope> verify_snapshot_envelope(std::string_view text,
                                                  std::span<const std::byte> hmac_key,
                                                  const PublicKeySet& pinned) {
  if (hmac_key.empty() && pinned.empty()) {
    return error(ErrorCode::kUsage, "no key to verify with");
  }
  JsonParseOptions limits;
  limits.max_document_bytes = std::size_t{64} << 10;
  limits.max_depth = 8;
  auto doc = parse_json(text, limits);
  if (!doc) return error(ErrorCode::kParse, "not JSON");
  if (!doc->is_object()) return error(ErrorCode::kInvalid, "must be a JSON object");
  for (const auto& [name, value] : doc->as_object()) {
    if (name != "signature" && name != "signatures" && name != "signed") {
      return error(ErrorCode::kInvalid, "unknown member beside \"signed\"");
    }
  }
  const Json* signed_json = doc->find("signed");
  if (signed_json == nullptr) return error(ErrorCode::kInvalid, "no \"signed\" member");
  auto envelope = read_signed(*signed_json);
  if (!envelope) return envelope;
  auto message = canonical_json(*signed_json);
  if (!message) return error(ErrorCode::kInvalid, "\"signed\" has no canonical form");
  if (!hmac_key.empty()) {
    const Json* signature = doc->find("signature");
    if (signature == nullptr || !signature->is_string()) {
      return error(ErrorCode::kSignature, "no HMAC signature");
    }
    if (!verify_hmac_sha256(hmac_key, *message, signature->as_string())) {
      return error(ErrorCode::kSignature, "the HMAC signature does not match");
    }
  }
  if (!pinned.empty()) {
    const Json* signatures = doc->find("signatures");
    if (signatures == nullptr || !signatures->is_array() || signatures->as_array().empty()) {
      return error(ErrorCode::kSignature, "no Ed25519 signature");
    }
    auto kid = verify_ed25519_signatures(*signatures, pinned, *message);
    if (!kid) {
      constexpr std::string_view kTag = "[brAInwav] ";
      std::string_view why = kid.error().message;
      if (why.starts_with(kTag)) why.remove_prefix(kTag.size());
      return error(ErrorCode::kSignature, why);
    }
  }
  return envelope;
}

}  // namespace cortex_connectors
