#include "cortex_connectors/service_map.h"

#include <algorithm>
#include <ctime>
#include <future>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/signing.h"
#include "internal/canonical_writer.h"
#include "internal/manifest_dom.h"
#include "internal/manifest_view.h"

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

// The connectors in service-map order (by id) and the payload's ttlSeconds; C is Connector or
// internal::ConnectorView, M the Manifest or view holding them.
template <class C>
struct Order {
  std::vector<const C*> sorted;
  std::int64_t ttl = 1;
};

template <class M, class C = typename decltype(M::connectors)::value_type>
Order<C> service_map_order(const M& manifest) {
  Order<C> o;
  o.sorted.reserve(manifest.connectors.size());
  std::int64_t min_connector_ttl = 0;
  for (const auto& c : manifest.connectors) {
    o.sorted.push_back(&c);
    if (min_connector_ttl == 0 || c.ttl_seconds < min_connector_ttl) {
      min_connector_ttl = c.ttl_seconds;
    }
  }
  const auto by_id = [](const C* a, const C* b) { return a->id < b->id; };
  // Manifests often list connectors by id already: then one pass says so.
  if (!std::is_sorted(o.sorted.begin(), o.sorted.end(), by_id)) {
    std::sort(o.sorted.begin(), o.sorted.end(), by_id);
  }
  const std::int64_t manifest_ttl = manifest.ttl_seconds.value_or(min_connector_ttl);
  o.ttl = std::max<std::int64_t>(1, std::min(manifest_ttl, min_connector_ttl));
  return o;
}

// ---- The payload written straight from the Manifest -----------------------------------------
// Each write_* produces the bytes canonical_json() writes for the Json build_service_map()
// builds: fixed keys are written in canonical (UTF-16) order by hand, free-form members go
// through the same serializer. Each returns false when a free-form value holds a NaN.

using internal::CanonicalMember;
using internal::CanonicalWriter;
using internal::ConnectorView;
using internal::FreeForm;
using internal::ManifestView;
using internal::StringList;

// branded(overlay), then "count" set to `count` (canonical integer text) when it is not empty.
bool write_branded(CanonicalWriter& w, const FreeForm& overlay,
                   std::vector<CanonicalMember>& scratch, std::string_view count = {}) {
  scratch.clear();
  scratch.push_back({"brand", {}, kBrand});
  if (overlay.is_object()) {
    overlay.for_each_member([&scratch](std::string_view key, FreeForm value) {
      scratch.push_back({key, value, {}});
    });
  }
  // Last, so that it wins over a "count" of the manifest's metadata.
  if (!count.empty()) scratch.push_back({"count", {}, count, true});
  return w.object(scratch);
}

void write_string_array(CanonicalWriter& w, const StringList& items) {
  char sep = '[';
  items.for_each([&w, &sep](std::string_view s) {
    w.raw(sep);
    sep = ',';
    w.string(s);
  });
  w.raw(sep == '[' ? "[]" : "]");
}

// connector_entry(c): keys auth description displayName enabled endpoint headers id metadata
// quotas remoteTools scopes tags timeouts ttlSeconds version.
bool write_entry(CanonicalWriter& w, const ConnectorView& c,
                 std::vector<CanonicalMember>& scratch) {
  w.raw(R"({"auth":{)");
  if (c.auth_header_name) {
    w.raw(R"("headerName":)");
    w.string(*c.auth_header_name);
    w.raw(',');
  }
  if (c.auth_query_param) {
    w.raw(R"("queryParam":)");
    w.string(*c.auth_query_param);
    w.raw(',');
  }
  w.raw(R"("type":)");
  w.string(to_string(c.auth_type));
  w.raw('}');
  if (c.description) {
    w.raw(R"(,"description":)");
    w.string(*c.description);
  }
  w.raw(R"(,"displayName":)");
  w.string(c.display_name ? *c.display_name : c.name);
  w.raw(c.is_enabled() ? R"(,"enabled":true)" : R"(,"enabled":false)");
  w.raw(R"(,"endpoint":)");
  w.string(c.endpoint);
  // authentication.headers first, then headers on top: object() keeps the last of equal names.
  scratch.clear();
  if (c.authentication_headers.present()) {
    c.authentication_headers.for_each([&scratch](std::string_view name, std::string_view value) {
      scratch.push_back({name, {}, value});
    });
  }
  if (c.headers.is_object()) {
    c.headers.for_each_member([&scratch](std::string_view name, FreeForm value) {
      scratch.push_back({name, value, {}});
    });
  }
  if (!scratch.empty()) {
    w.raw(R"(,"headers":)");
    if (!w.object(scratch)) return false;
  }
  w.raw(R"(,"id":)");
  w.string(c.id);
  w.raw(R"(,"metadata":)");
  if (!write_branded(w, c.metadata, scratch)) return false;
  if (c.quotas) {
    w.raw(R"(,"quotas":)");
    char sep = '{';
    auto limit = [&](std::string_view key, const std::optional<std::int64_t>& value) {
      if (!value) return;
      w.raw(sep);
      sep = ',';
      w.raw(key);
      w.number(static_cast<double>(*value));
    };
    limit(R"("concurrent":)", c.quotas->concurrent);
    limit(R"("perDay":)", c.quotas->per_day);
    limit(R"("perHour":)", c.quotas->per_hour);
    limit(R"("perMinute":)", c.quotas->per_minute);
    w.raw(sep == '{' ? "{}" : "}");
  }
  if (c.remote_tools.is_array() && !c.remote_tools.is_empty_container()) {
    w.raw(R"(,"remoteTools":)");
    if (!w.value(c.remote_tools)) return false;
  }
  w.raw(R"(,"scopes":)");
  write_string_array(w, c.scopes);
  w.raw(R"(,"tags":)");
  if (c.tags.present()) {
    write_string_array(w, c.tags);
  } else {
    w.raw("[]");
  }
  if (c.timeouts.is_object() && !c.timeouts.is_empty_container()) {
    w.raw(R"(,"timeouts":)");
    if (!w.value(c.timeouts)) return false;
  }
  w.raw(R"(,"ttlSeconds":)");
  w.number(static_cast<double>(c.ttl_seconds));
  w.raw(R"(,"version":)");
  w.string(c.version);
  w.raw('}');
  return true;
}

// build_service_map(): keys brand connectors generatedAt id metadata ttlSeconds.
bool write_payload(CanonicalWriter& w, const ManifestView& manifest,
                   std::string_view generated_at_fallback, std::size_t parallel_entries) {
  const Order<ConnectorView> order = service_map_order(manifest);
  // About the canonical size of the benchmark's connectors, so that big maps seldom regrow.
  w.reserve(256 + 640 * order.sorted.size());
  std::vector<CanonicalMember> scratch;
  w.raw(R"({"brand":)");
  w.string(kBrand);
  w.raw(R"(,"connectors":[)");
  // An entry's bytes depend on that connector alone, so with many of them a second thread
  // writes the second half (",entry,entry...") into its own string, appended after the first.
  const std::size_t n = order.sorted.size();
  std::size_t half = n;
  std::future<std::optional<std::string>> second;
  if (parallel_entries != 0 && n >= parallel_entries && n >= 2) {
    half = n / 2;
    auto write_second = [&order, half, n]() -> std::optional<std::string> {
      std::string out;
      {
        CanonicalWriter w2(out);
        w2.reserve(640 * (n - half));
        std::vector<CanonicalMember> scratch2;
        for (std::size_t i = half; i < n; ++i) {
          w2.raw(',');
          if (!write_entry(w2, *order.sorted[i], scratch2)) return std::nullopt;
        }
      }
      return out;
    };
    try {
      second = std::async(std::launch::async, write_second);
    } catch (const std::system_error&) {
      half = n;  // no thread to be had: write it all here
    }
  }
  bool ok = true;
  for (std::size_t i = 0; i < half && ok; ++i) {
    if (i != 0) w.raw(',');
    ok = write_entry(w, *order.sorted[i], scratch);
  }
  if (second.valid()) {
    auto rest = second.get();  // in any case: the thread reads `order`
    if (!rest) return false;
    w.raw(*rest);
  }
  if (!ok) return false;
  w.raw(R"(],"generatedAt":)");
  w.string(manifest.generated_at ? *manifest.generated_at : generated_at_fallback);
  w.raw(R"(,"id":)");
  w.string(manifest.id);
  w.raw(R"(,"metadata":)");
  const std::string count = std::to_string(manifest.connectors.size());
  if (!write_branded(w, manifest.metadata, scratch, count)) return false;
  w.raw(R"(,"ttlSeconds":)");
  w.number(static_cast<double>(order.ttl));
  w.raw('}');
  return true;
}

}  // namespace

Json build_service_map(const Manifest& manifest, std::string_view generated_at_fallback) {
  const Order<Connector> order = service_map_order(manifest);
  Json::Array connectors;
  connectors.reserve(order.sorted.size());
  for (const Connector* c : order.sorted) connectors.push_back(connector_entry(*c));
  const std::int64_t ttl = order.ttl;

  Json payload = Json::object();
  payload.as_object().reserve(6);
  payload.set("id", manifest.id);
  payload.set("brand", kBrand);
  payload.set("generatedAt", manifest.generated_at ? std::string_view(*manifest.generated_at)
                                                   : generated_at_fallback);
  payload.set("ttlSeconds", ttl);
  payload.set("connectors", std::move(connectors));
  // As the Python service serves it: the number of connectors inside "metadata", over any
  // "count" the manifest's metadata has.
  Json metadata = branded(manifest.metadata);
  metadata.set("count", manifest.connectors.size());
  payload.set("metadata", std::move(metadata));
  return payload;
}

Result<SignedServiceMap> sign_service_map(Json payload, std::span<const std::byte> key) {
  return sign_service_map(std::move(payload), key, {});
}

Result<SignedServiceMap> sign_service_map(Json payload, std::span<const std::byte> key,
                                          std::span<const Ed25519Key> ed25519_keys) {
  auto canonical = canonical_json(payload);
  if (!canonical) return std::move(canonical).error();
  SignedServiceMap out = sign_canonical_payload(std::move(*canonical), key, ed25519_keys);
  out.payload = std::move(payload);
  return out;
}

namespace {

constexpr std::string_view kBodyPrefix = R"({"payload":)";

// `prefix`, then the canonical payload of `view`.
Result<std::string> payload_after(std::string prefix, const ManifestView& view,
                                  std::string_view generated_at_fallback,
                                  std::size_t parallel_entries) {
  bool ok = false;
  {
    CanonicalWriter w(prefix);
    ok = write_payload(w, view, generated_at_fallback, parallel_entries);
  }
  if (!ok) return internal::non_finite_error();
  return prefix;
}

// Signs the canonical payload that `out.body` holds from kBodyPrefix on and ends the body.
void finish_body(SignedServiceMap& out, std::span<const std::byte> key,
                 std::span<const Ed25519Key> ed25519_keys) {
  {
    const std::string_view payload = std::string_view(out.body).substr(kBodyPrefix.size());
    out.signature = sign_hmac_sha256(key, payload);
    if (!ed25519_keys.empty()) out.signatures = ed25519_signatures(ed25519_keys, payload);
  }
  // Members in canonical order ("payload" < "signature" < "signatures"), so the body is
  // canonical JSON too.
  out.body.reserve(out.body.size() + out.signature.size() + out.signatures.size() + 32);
  out.body.append(R"(,"signature":)");
  append_canonical_string(out.body, out.signature);
  if (!out.signatures.empty()) {
    out.body.append(R"(,"signatures":)");
    out.body.append(out.signatures);
  }
  out.body.push_back('}');
}

}  // namespace

Result<std::string> write_service_map_payload(const Manifest& manifest,
                                              std::string_view generated_at_fallback,
                                              std::size_t parallel_entries) {
  return payload_after(std::string(), internal::view_of(manifest), generated_at_fallback,
                       parallel_entries);
}

SignedServiceMap sign_canonical_payload(std::string canonical_payload,
                                        std::span<const std::byte> key,
                                        std::span<const Ed25519Key> ed25519_keys) {
  SignedServiceMap out;
  out.body.reserve(kBodyPrefix.size() + canonical_payload.size() + 160);
  out.body.append(kBodyPrefix);
  out.body.append(canonical_payload);
  out.canonical_payload = std::move(canonical_payload);
  finish_body(out, key, ed25519_keys);
  return out;
}

namespace internal {

Result<std::string> write_payload_body(const ManifestView& view,
                                       std::string_view generated_at_fallback) {
  return payload_after(std::string(kBodyPrefix), view, generated_at_fallback, 0);
}

SignedServiceMap sign_payload_body(std::string body, std::span<const std::byte> key,
                                   std::span<const Ed25519Key> ed25519_keys) {
  SignedServiceMap out;
  out.body = std::move(body);
  finish_body(out, key, ed25519_keys);
  return out;
}

}  // namespace internal

Result<SignedServiceMap> sign_manifest_service_map(const Manifest& manifest,
                                                   std::string_view generated_at_fallback,
                                                   std::span<const std::byte> key,
                                                   std::span<const Ed25519Key> ed25519_keys) {
  auto canonical = write_service_map_payload(manifest, generated_at_fallback);
  if (!canonical) return std::move(canonical).error();
  return sign_canonical_payload(std::move(*canonical), key, ed25519_keys);
}

Result<SignedServiceMap> sign_manifest_text(std::string_view text,
                                            std::string_view generated_at_fallback,
                                            std::span<const std::byte> key,
                                            std::span<const Ed25519Key> ed25519_keys,
                                            const ManifestLimits& limits) {
  Result<std::string> body = std::string();
  Status status = internal::visit_manifest(text, limits, [&](const internal::ManifestView& view) {
    // The payload is written into the body itself: no copy of a few megabytes.
    body = internal::write_payload_body(view, generated_at_fallback);
  });
  if (!status) return status.error();
  if (!body) return std::move(body).error();
  return internal::sign_payload_body(std::move(*body), key, ed25519_keys);
}

std::string format_rfc3339(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", tm);
}

}  // namespace cortex_connectors
