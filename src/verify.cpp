#include "cortex_connectors/verify.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <utility>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/validate.h"
#include "internal/sodium.h"

namespace cortex_connectors {

namespace {

using Clock = std::chrono::system_clock;

Error invalid_body(const char* what) {
  return Error{ErrorCode::kInvalid, std::string("[brAInwav] ") + what, {}, {}};
}

Error invalid_payload(const char* pointer, const char* what) {
  return Error{ErrorCode::kInvalid,
               "[brAInwav] the signed payload is not a service map",
               {Issue{pointer, what}},
               {}};
}

int two_digits(std::string_view t, std::size_t pos) {
  return (t[pos] - '0') * 10 + (t[pos + 1] - '0');
}

Clock::time_point resolve(std::optional<Clock::time_point> t, Clock::time_point fallback) {
  return t ? *t : fallback;
}

}  // namespace

std::optional<Clock::time_point> parse_rfc3339(std::string_view t) noexcept {
  if (!is_rfc3339_date_time(t)) return std::nullopt;
  using namespace std::chrono;
  const int y = (t[0] - '0') * 1000 + (t[1] - '0') * 100 + two_digits(t, 2);
  const auto date = year{y} / month{static_cast<unsigned>(two_digits(t, 5))} /
                    day{static_cast<unsigned>(two_digits(t, 8))};
  // A leap second (":60") counts as the last second of its minute.
  const int second = std::min(two_digits(t, 17), 59);
  auto time =
      sys_days{date} + hours{two_digits(t, 11)} + minutes{two_digits(t, 14)} + seconds{second};
  std::size_t pos = 19;
  microseconds fraction{0};
  if (t[pos] == '.') {
    ++pos;
    std::int64_t scale = 100000;
    for (; pos < t.size() && t[pos] >= '0' && t[pos] <= '9'; ++pos) {
      fraction += microseconds{(t[pos] - '0') * scale};
      scale /= 10;
    }
  }
  if (t[pos] == '+' || t[pos] == '-') {
    const minutes offset = hours{two_digits(t, pos + 1)} + minutes{two_digits(t, pos + 4)};
    time = t[pos] == '+' ? time - offset : time + offset;
  }
  // Years 0000-9999 fit in microseconds but not all in the clock's nanoseconds (about
  // 1678-2262): saturate outside that range instead of overflowing.
  const sys_time<microseconds> exact = time + fraction;
  constexpr auto kMax = time_point_cast<microseconds>(Clock::time_point::max());
  constexpr auto kMin = time_point_cast<microseconds>(Clock::time_point::min());
  if (exact >= kMax) return Clock::time_point::max();
  if (exact <= kMin) return Clock::time_point::min();
  return time_point_cast<Clock::duration>(exact);
}

SignedBody VerifiedServiceMap::signed_body() const {
  return SignedBody::assemble(canonical_payload, signature, signatures);
}

std::string VerifiedServiceMap::body() const { return signed_body().body; }

namespace {

// The checks after the signature verified: authentic from here on, check that it is a service
// map of the brand and not expired.
Result<VerifiedServiceMap> check_verified(Json payload, std::string canonical,
                                          std::string_view signature,
                                          const VerifyOptions& options) {
  const Json* brand = payload.find("brand");
  if (brand == nullptr || !brand->is_string() || brand->as_string() != kBrand) {
    return invalid_payload("/payload/brand", "must be \"brAInwav\"");
  }
  const Json* id = payload.find("id");
  if (id == nullptr || !id->is_string() || id->as_string().empty()) {
    return invalid_payload("/payload/id", "must be a non-empty string");
  }
  const Json* generated = payload.find("generatedAt");
  if (generated == nullptr || !generated->is_string()) {
    return invalid_payload("/payload/generatedAt", "must be an RFC 3339 date-time string");
  }
  const auto generated_time = parse_rfc3339(generated->as_string());
  if (!generated_time) {
    return invalid_payload("/payload/generatedAt", "must be an RFC 3339 date-time string");
  }
  const Json* ttl = payload.find("ttlSeconds");
  // Up to ~31 years: beyond that the expiry arithmetic would leave the clock's range.
  constexpr double kMaxTtl = 1e9;
  if (ttl == nullptr || !ttl->is_number() || ttl->as_number() < 1 || ttl->as_number() > kMaxTtl ||
      std::floor(ttl->as_number()) != ttl->as_number()) {
    return invalid_payload("/payload/ttlSeconds", "must be an integer >= 1");
  }
  const Json* connectors = payload.find("connectors");
  if (connectors == nullptr || !connectors->is_array()) {
    return invalid_payload("/payload/connectors", "must be an array");
  }
  const auto counts_connectors = [n = connectors->as_array().size()](const Json* count) {
    return count == nullptr || (count->is_number() && count->as_number() == static_cast<double>(n));
  };
  const Json* metadata = payload.find("metadata");
  if (metadata != nullptr && !metadata->is_object()) {
    return invalid_payload("/payload/metadata", "must be an object");
  }
  if (metadata != nullptr && !counts_connectors(metadata->find("count"))) {
    return invalid_payload("/payload/metadata/count", "must equal the number of connectors");
  }
  // Bodies of servers before metadata.count (still in a history store) carry a top-level count.
  if (!counts_connectors(payload.find("count"))) {
    return invalid_payload("/payload/count", "must equal the number of connectors");
  }

  const auto now = resolve(options.now, Clock::now());
  VerifiedServiceMap map;
  map.ttl = std::chrono::seconds(static_cast<std::int64_t>(ttl->as_number()));
  map.fetched_at = resolve(options.fetched_at, now);
  map.generated_at = generated->as_string();
  map.generated_at_time = *generated_time;
  map.expires_at =
      (options.expiry_base == ExpiryBase::kGeneratedAt ? map.generated_at_time : map.fetched_at) +
      map.ttl;
  if (map.expired(now)) {
    return Error{ErrorCode::kExpired,
                 "[brAInwav] the service map expired at " + format_rfc3339(map.expires_at) +
                     " (generatedAt " + map.generated_at + ", ttlSeconds " +
                     std::to_string(map.ttl.count()) + ")",
                 {},
                 {}};
  }
  map.id = id->as_string();
  map.connector_count = connectors->as_array().size();
  map.version = options.version;
  map.canonical_payload = std::move(canonical);
  map.signature = std::string(signature);
  map.payload = std::move(payload);
  return map;
}

}  // namespace

Result<VerifiedServiceMap> verify_service_map_payload(Json payload, std::string_view signature,
                                                      std::span<const std::byte> key,
                                                      const VerifyOptions& options) {
  if (!payload.is_object()) return invalid_body("signed body has no \"payload\" object");
  auto canonical = canonical_json(payload);
  if (!canonical) return std::move(canonical).error();
  if (!verify_hmac_sha256(key, *canonical, signature)) {
    return Error{ErrorCode::kSignature, "[brAInwav] signature does not match the payload", {}, {}};
  }
  return check_verified(std::move(payload), std::move(*canonical), signature, options);
}

Result<VerifiedServiceMap> verify_service_map_payload(Json payload, const Json& carrier,
                                                      const PublicKeySet& keys,
                                                      const VerifyOptions& options) {
  if (!payload.is_object()) return invalid_body("signed body has no \"payload\" object");
  const Json* signatures = carrier.is_object() ? carrier.find("signatures") : nullptr;
  if (signatures == nullptr || !signatures->is_array()) {
    return Error{
        ErrorCode::kSignature, "[brAInwav] the body carries no Ed25519 signatures", {}, {}};
  }
  auto canonical = canonical_json(payload);
  if (!canonical) return std::move(canonical).error();
  auto kid = verify_ed25519_signatures(*signatures, keys, *canonical);
  if (!kid) return std::move(kid).error();
  const Json* hmac = carrier.find("signature");
  auto map = check_verified(std::move(payload), std::move(*canonical),
                            hmac != nullptr && hmac->is_string() ? hmac->as_string() : "", options);
  if (!map) return map;
  map->signatures = canonical_json(*signatures).value();
  map->kid = std::move(*kid);
  return map;
}

namespace {

// Parses a signed body: a JSON object with a "payload" object (both verifiers start here).
Result<Json> parse_signed_body(std::string_view body) {
  auto parsed = parse_json(body);
  if (!parsed) return std::move(parsed).error();
  if (!parsed->is_object()) return invalid_body("signed body must be a JSON object");
  const Json* payload = parsed->find("payload");
  if (payload == nullptr || !payload->is_object()) {
    return invalid_body("signed body has no \"payload\" object");
  }
  return parsed;
}

}  // namespace

Result<VerifiedServiceMap> verify_service_map(std::string_view body, const PublicKeySet& keys,
                                              const VerifyOptions& options) {
  auto doc = parse_signed_body(body);
  if (!doc) return std::move(doc).error();
  Json payload = std::move(*doc->find("payload"));
  return verify_service_map_payload(std::move(payload), *doc, keys, options);
}

Result<VerifiedServiceMap> verify_service_map(std::string_view body, std::span<const std::byte> key,
                                              const VerifyOptions& options) {
  auto doc = parse_signed_body(body);
  if (!doc) return std::move(doc).error();
  const Json* signature = doc->find("signature");
  if (signature == nullptr || !signature->is_string()) {
    return invalid_body("signed body has no \"signature\" string");
  }
  return verify_service_map_payload(std::move(*doc->find("payload")), signature->as_string(), key,
                                    options);
}

struct ServiceMapCache::Impl {
  std::string key;
  std::optional<PublicKeySet> public_keys;  // set: verify Ed25519 instead of the HMAC
  ExpiryBase expiry_base;
  mutable std::mutex mu;
  std::shared_ptr<const VerifiedServiceMap> current;

  ~Impl() { sodium_memzero(key.data(), key.size()); }
};

ServiceMapCache::ServiceMapCache(std::span<const std::byte> key, ExpiryBase expiry_base)
    : impl_(std::make_unique<Impl>()) {
  impl_->key.assign(reinterpret_cast<const char*>(key.data()), key.size());  // NOLINT
  impl_->expiry_base = expiry_base;
}

ServiceMapCache::ServiceMapCache(PublicKeySet keys, ExpiryBase expiry_base)
    : impl_(std::make_unique<Impl>()) {
  impl_->public_keys = std::move(keys);
  impl_->expiry_base = expiry_base;
}

ServiceMapCache::~ServiceMapCache() = default;

Result<CacheUpdate> ServiceMapCache::offer(std::string_view body,
                                           std::optional<Clock::time_point> now,
                                           std::uint64_t version) {
  VerifyOptions options;
  options.now = resolve(now, Clock::now());
  options.expiry_base = impl_->expiry_base;
  options.version = version;
  if (impl_->public_keys) return accept(verify_service_map(body, *impl_->public_keys, options));
  return accept(verify_service_map(body, as_bytes(impl_->key), options));
}

Result<CacheUpdate> ServiceMapCache::offer_signed(Json payload, const Json& carrier,
                                                  std::optional<Clock::time_point> now,
                                                  std::uint64_t version) {
  VerifyOptions options;
  options.now = resolve(now, Clock::now());
  options.expiry_base = impl_->expiry_base;
  options.version = version;
  if (impl_->public_keys) {
    return accept(
        verify_service_map_payload(std::move(payload), carrier, *impl_->public_keys, options));
  }
  const Json* signature = carrier.is_object() ? carrier.find("signature") : nullptr;
  if (signature == nullptr || !signature->is_string()) {
    return Error{ErrorCode::kInvalid, "[brAInwav] signed body has no \"signature\" string", {}, {}};
  }
  return accept(verify_service_map_payload(std::move(payload), signature->as_string(),
                                           as_bytes(impl_->key), options));
}

Result<CacheUpdate> ServiceMapCache::offer_payload(Json payload, std::string_view signature,
                                                   std::optional<Clock::time_point> now,
                                                   std::uint64_t version) {
  VerifyOptions options;
  options.now = resolve(now, Clock::now());
  options.expiry_base = impl_->expiry_base;
  options.version = version;
  if (impl_->public_keys) {
    // A bare HMAC signature cannot satisfy pinned public keys.
    Json carrier = Json::object();
    carrier.set("signature", signature);
    return accept(
        verify_service_map_payload(std::move(payload), carrier, *impl_->public_keys, options));
  }
  return accept(
      verify_service_map_payload(std::move(payload), signature, as_bytes(impl_->key), options));
}

Result<CacheUpdate> ServiceMapCache::accept(Result<VerifiedServiceMap> verified) {
  if (!verified) return std::move(verified).error();
  auto next = std::make_shared<VerifiedServiceMap>(std::move(verified).value());
  std::lock_guard lock(impl_->mu);
  const auto& cur = impl_->current;
  if (cur && next->generated_at_time < cur->generated_at_time) return CacheUpdate::kOlder;
  if (cur && next->signature == cur->signature &&
      next->canonical_payload == cur->canonical_payload) {
    // The same map seen again: keep the later expiry, and the version when this one knows it.
    if (next->expires_at < cur->expires_at) next->expires_at = cur->expires_at;
    if (next->version == 0) next->version = cur->version;
    impl_->current = std::move(next);
    return CacheUpdate::kUnchanged;
  }
  impl_->current = std::move(next);
  return CacheUpdate::kReplaced;
}

bool ServiceMapCache::confirm(std::optional<Clock::time_point> when) {
  const Clock::time_point now = resolve(when, Clock::now());
  std::lock_guard lock(impl_->mu);
  if (!impl_->current) return false;
  if (impl_->expiry_base == ExpiryBase::kFetchTime &&
      now + impl_->current->ttl > impl_->current->expires_at) {
    auto copy = std::make_shared<VerifiedServiceMap>(*impl_->current);
    copy->fetched_at = now;
    copy->expires_at = now + copy->ttl;
    impl_->current = std::move(copy);
  }
  return true;
}

std::shared_ptr<const VerifiedServiceMap> ServiceMapCache::current() const {
  std::lock_guard lock(impl_->mu);
  return impl_->current;
}

std::shared_ptr<const VerifiedServiceMap> ServiceMapCache::fresh(
    std::optional<Clock::time_point> when) const {
  const Clock::time_point now = resolve(when, Clock::now());
  auto cur = current();
  return cur && !cur->expired(now) ? cur : nullptr;
}

}  // namespace cortex_connectors
