#include "cortex_connectors/service_map.h"

#include <algorithm>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/signing.h"

namespace cortex_connectors {

namespace {

// {"brand":"brAInwav"} with the members of `overlay` (an object or null) on top.
Json branded(const Json& overlay) {
  Json out = Json::object();
  out.set("brand", kBrand);
  if (overlay.is_object()) {
    for (const auto& [key, value] : overlay.as_object()) out.set(key, value);
  }
  return out;
}

Json string_array(const std::vector<std::string>& items) {
  Json::Array out;
  out.reserve(items.size());
  for (const auto& s : items) out.emplace_back(s);
  return out;
}

Json connector_entry(const Connector& c) {
  Json e = Json::object();
  auto& m = e.as_object();
  m.reserve(16);
  e.set("id", c.id);
  e.set("version", c.version);
  e.set("displayName", c.display_name ? *c.display_name : c.name);
  e.set("endpoint", c.endpoint);
  Json auth = Json::object();
  auth.set("type", to_string(c.auth.type));
  if (c.auth.header_name) auth.set("headerName", *c.auth.header_name);
  if (c.auth.query_param) auth.set("queryParam", *c.auth.query_param);
  e.set("auth", std::move(auth));
  e.set("scopes", string_array(c.scopes));
  e.set("ttlSeconds", c.ttl_seconds);
  e.set("enabled", c.is_enabled());
  e.set("metadata", branded(c.metadata));
  if (c.quotas) {
    Json q = Json::object();
    if (c.quotas->per_minute) q.set("perMinute", *c.quotas->per_minute);
    if (c.quotas->per_hour) q.set("perHour", *c.quotas->per_hour);
    if (c.quotas->per_day) q.set("perDay", *c.quotas->per_day);
    if (c.quotas->concurrent) q.set("concurrent", *c.quotas->concurrent);
    e.set("quotas", std::move(q));
  }
  // authentication.headers first, then headers on top: a name in both takes the headers value.
  Json headers = Json::object();
  if (c.authentication_headers) {
    for (const auto& h : *c.authentication_headers) headers.set(h.name, h.value);
  }
  if (c.headers.is_object()) {
    for (const auto& [name, value] : c.headers.as_object()) headers.set(name, value);
  }
  if (!headers.as_object().empty()) e.set("headers", std::move(headers));
  if (c.description) e.set("description", *c.description);
  e.set("tags", c.tags ? string_array(*c.tags) : Json::array());
  // Like the original, empty timeouts / remoteTools are omitted rather than served as {} / [].
  if (c.timeouts.is_object() && !c.timeouts.as_object().empty()) e.set("timeouts", c.timeouts);
  if (c.remote_tools.is_array() && !c.remote_tools.as_array().empty()) {
    e.set("remoteTools", c.remote_tools);
  }
  return e;
}

}  // namespace

Json build_service_map(const Manifest& manifest, std::string_view generated_at_fallback) {
  std::vector<const Connector*> sorted;
  sorted.reserve(manifest.connectors.size());
  std::int64_t min_connector_ttl = 0;
  for (const auto& c : manifest.connectors) {
    sorted.push_back(&c);
    if (min_connector_ttl == 0 || c.ttl_seconds < min_connector_ttl) {
      min_connector_ttl = c.ttl_seconds;
    }
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Connector* a, const Connector* b) { return a->id < b->id; });
  Json::Array connectors;
  connectors.reserve(sorted.size());
  for (const Connector* c : sorted) connectors.push_back(connector_entry(*c));

  const std::int64_t manifest_ttl = manifest.ttl_seconds.value_or(min_connector_ttl);
  const std::int64_t ttl = std::max<std::int64_t>(1, std::min(manifest_ttl, min_connector_ttl));

  Json payload = Json::object();
  payload.as_object().reserve(7);
  payload.set("id", manifest.id);
  payload.set("brand", kBrand);
  payload.set("generatedAt", manifest.generated_at ? std::string_view(*manifest.generated_at)
                                                   : generated_at_fallback);
  payload.set("ttlSeconds", ttl);
  payload.set("connectors", std::move(connectors));
  payload.set("metadata", branded(manifest.metadata));
  payload.set("count", manifest.connectors.size());
  return payload;
}

Result<SignedServiceMap> sign_service_map(Json payload, std::span<const std::byte> key) {
  return sign_service_map(std::move(payload), key, {});
}

Result<SignedServiceMap> sign_service_map(Json payload, std::span<const std::byte> key,
                                          std::span<const Ed25519Key> ed25519_keys) {
  SignedServiceMap out;
  auto canonical = canonical_json(payload);
  if (!canonical) return std::move(canonical).error();
  out.canonical_payload = std::move(*canonical);
  out.signature = sign_hmac_sha256(key, out.canonical_payload);
  if (!ed25519_keys.empty())
    out.signatures = ed25519_signatures(ed25519_keys, out.canonical_payload);
  // Members in canonical order ("payload" < "signature" < "signatures"), so the body is
  // canonical JSON too.
  out.body.reserve(out.canonical_payload.size() + out.signature.size() + out.signatures.size() +
                   48);
  out.body.append(R"({"payload":)");
  out.body.append(out.canonical_payload);
  out.body.append(R"(,"signature":)");
  append_canonical_string(out.body, out.signature);
  if (!out.signatures.empty()) {
    out.body.append(R"(,"signatures":)");
    out.body.append(out.signatures);
  }
  out.body.push_back('}');
  out.payload = std::move(payload);
  return out;
}

std::string format_rfc3339(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", tm);
}

}  // namespace cortex_connectors
