#include "cortex_connectors/service_map.h"

#include <algorithm>
#include <ctime>
#include <future>
#include <limits>
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
#include "internal/service_map.h"

namespace cortex_connectors {

namespace {

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

// ---- The one payload writer --------------------------------------------------------------------
// Writes the canonical payload (RFC 8785) of a ManifestView, whether it views a Manifest or
// simdjson's DOM of the manifest text: fixed keys in canonical (UTF-16) order by hand, free-form
// members through the serializer canonical_json() uses. A connector field passed through to the
// service map is one write here, in its key's place. Each returns false when a free-form value
// holds a NaN.

using internal::CanonicalMember;
using internal::CanonicalWriter;
using internal::ConnectorView;
using internal::FreeForm;
using internal::kPassThrough;
using internal::ManifestView;
using internal::StringList;
using internal::WrittenPayload;

// {"brand":"brAInwav"} with the members of `overlay` (an object or null) on top, then "count"
// set to `count` (canonical integer text) when it is not empty.
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

// The entry's ",\"headers\":{...}" when it has any: authentication.headers first, then headers on
// top (object() keeps the last of equal names).
bool write_headers(CanonicalWriter& w, const ConnectorView& c,
                   std::vector<CanonicalMember>& scratch) {
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
  if (scratch.empty()) return true;
  w.raw(R"(,"headers":)");
  return w.object(scratch);
}

// The entry's ",\"quotas\":{...}": the limits present, in key order.
void write_quotas(CanonicalWriter& w, const Quotas& quotas) {
  w.raw(R"(,"quotas":)");
  char sep = '{';
  auto limit = [&](std::string_view key, const std::optional<std::int64_t>& value) {
    if (!value) return;
    w.raw(sep);
    sep = ',';
    w.raw(key);
    w.number(static_cast<double>(*value));
  };
  limit(R"("concurrent":)", quotas.concurrent);
  limit(R"("perDay":)", quotas.per_day);
  limit(R"("perHour":)", quotas.per_hour);
  limit(R"("perMinute":)", quotas.per_minute);
  w.raw(sep == '{' ? "{}" : "}");
}

// Writes the pass-through fields of `c` (kPassThrough, sorted) from `next` on whose keys sort
// before `key` ("" for all that are left), each as ,"key":"value"; `next` moves past them.
void write_pass_through(CanonicalWriter& w, const ConnectorView& c, std::string_view key,
                        std::size_t& next) {
  for (; next < kPassThrough.size() && (key.empty() || kPassThrough[next].key < key); ++next) {
    const std::optional<std::string_view>& value = c.*kPassThrough[next].view;
    if (!value) continue;
    w.raw(",\"");
    w.raw(kPassThrough[next].key);
    w.raw("\":");
    w.string(*value);
  }
}

// A connector entry: keys auth displayName enabled endpoint headers id metadata quotas
// remoteTools scopes tags timeouts ttlSeconds version, and the pass-through fields (kPassThrough:
// description) in their places among them. Sets `at` to where the entry and its id went, as
// positions of the writer's output.
bool write_entry(CanonicalWriter& w, const ConnectorView& c, std::vector<CanonicalMember>& scratch,
                 PayloadLayout::Connector& at) {
  at.entry.offset = w.position();
  std::size_t next = 0;  // the next pass-through field, written before the first key after it
  auto before = [&](std::string_view key) { write_pass_through(w, c, key, next); };
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
  before("displayName");
  w.raw(R"(,"displayName":)");
  w.string(c.display_name ? *c.display_name : c.name);
  before("enabled");
  w.raw(c.is_enabled() ? R"(,"enabled":true)" : R"(,"enabled":false)");
  before("endpoint");
  w.raw(R"(,"endpoint":)");
  w.string(c.endpoint);
  before("headers");
  if (!write_headers(w, c, scratch)) return false;
  before("id");
  w.raw(R"(,"id":)");
  at.id.offset = w.position() + 1;  // the id span lies between the quotes
  w.string(c.id);
  at.id.size = w.position() - 1 - at.id.offset;
  before("metadata");
  w.raw(R"(,"metadata":)");
  if (!write_branded(w, c.metadata, scratch)) return false;
  before("quotas");
  if (c.quotas) write_quotas(w, *c.quotas);
  before("remoteTools");
  if (c.remote_tools.is_array() && !c.remote_tools.is_empty_container()) {
    w.raw(R"(,"remoteTools":)");
    if (!w.value(c.remote_tools)) return false;
  }
  before("scopes");
  w.raw(R"(,"scopes":)");
  write_string_array(w, c.scopes);
  before("tags");
  w.raw(R"(,"tags":)");
  if (c.tags.present()) {
    write_string_array(w, c.tags);
  } else {
    w.raw("[]");
  }
  before("timeouts");
  if (c.timeouts.is_object() && !c.timeouts.is_empty_container()) {
    w.raw(R"(,"timeouts":)");
    if (!w.value(c.timeouts)) return false;
  }
  before("ttlSeconds");
  w.raw(R"(,"ttlSeconds":)");
  w.number(static_cast<double>(c.ttl_seconds));
  before("version");
  w.raw(R"(,"version":)");
  w.string(c.version);
  before({});
  w.raw('}');
  at.entry.size = w.position() - at.entry.offset;
  return true;
}

// The connectors array "[entry,...]" in service-map order, recording where each entry and id
// went as offsets from `base`. An entry's bytes depend on that connector alone, so with many of
// them a second thread writes the second half (",entry,entry...") into its own string, appended
// after the first.
bool write_connectors(CanonicalWriter& w, const Order<ConnectorView>& order,
                      std::size_t parallel_entries, PayloadLayout& layout, std::size_t base,
                      std::vector<CanonicalMember>& scratch) {
  const std::size_t n = order.sorted.size();
  auto relative = [base](PayloadLayout::Connector& c, std::size_t shift) {
    c.entry.offset = c.entry.offset + shift - base;
    c.id.offset = c.id.offset + shift - base;
  };
  w.raw('[');
  std::size_t half = n;
  std::future<std::optional<std::string>> second;
  if (parallel_entries != 0 && n >= parallel_entries && n >= 2) {
    half = n / 2;
    auto write_second = [&order, &layout, half, n]() -> std::optional<std::string> {
      std::string out;
      {
        CanonicalWriter w2(out);
        w2.reserve(640 * (n - half));
        std::vector<CanonicalMember> scratch2;
        for (std::size_t i = half; i < n; ++i) {
          w2.raw(',');
          if (!write_entry(w2, *order.sorted[i], scratch2, layout.connectors[i])) {
            return std::nullopt;
          }
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
    ok = write_entry(w, *order.sorted[i], scratch, layout.connectors[i]);
    relative(layout.connectors[i], 0);
  }
  if (second.valid()) {
    auto rest = second.get();  // in any case: the thread reads `order`
    if (!rest) return false;
    const std::size_t shift = w.position();
    w.raw(*rest);
    for (std::size_t i = half; i < n; ++i) relative(layout.connectors[i], shift);
  }
  w.raw(']');
  return ok;
}

// The payload: keys brand connectors generatedAt id metadata ttlSeconds. Records in `layout`
// where each member and connector went, as offsets from `base` (where the payload starts in the
// writer's output).
bool write_payload(CanonicalWriter& w, const ManifestView& manifest,
                   std::string_view generated_at_fallback, std::size_t parallel_entries,
                   PayloadLayout& layout, std::size_t base) {
  const Order<ConnectorView> order = service_map_order(manifest);
  const std::size_t n = order.sorted.size();
  // About the canonical size of the benchmark's connectors, so that big maps seldom regrow.
  w.reserve(256 + 640 * n);
  layout.members.reserve(6);
  layout.connectors.resize(n);
  std::vector<CanonicalMember> scratch;
  // `lead` ('{' or ','), then "key": and the value written by `write`.
  auto member = [&](char lead, std::string_view key, auto&& write) {
    w.raw(lead);
    w.raw('"');
    PayloadLayout::Member m;
    m.key = {w.position() - base, key.size()};
    w.raw(key);
    w.raw("\":");
    m.value.offset = w.position() - base;
    const bool ok = write();
    m.value.size = w.position() - base - m.value.offset;
    layout.members.push_back(m);
    return ok;
  };
  member('{', "brand", [&] {
    w.string(kBrand);
    return true;
  });
  const bool connectors_ok = member(',', "connectors", [&] {
    return write_connectors(w, order, parallel_entries, layout, base, scratch);
  });
  if (!connectors_ok) return false;
  member(',', "generatedAt", [&] {
    w.string(manifest.generated_at ? *manifest.generated_at : generated_at_fallback);
    return true;
  });
  member(',', "id", [&] {
    w.string(manifest.id);
    return true;
  });
  const bool metadata_ok = member(',', "metadata", [&] {
    // As the Python service serves it: the number of connectors inside "metadata", over any
    // "count" the manifest's metadata has.
    const std::string count = std::to_string(manifest.connectors.size());
    return write_branded(w, manifest.metadata, scratch, count);
  });
  if (!metadata_ok) return false;
  member(',', "ttlSeconds", [&] {
    w.number(static_cast<double>(order.ttl));
    return true;
  });
  w.raw('}');
  return true;
}

// `prefix`, then the canonical payload of `view`, with its layout.
Result<WrittenPayload> write_after(std::string prefix, const ManifestView& view,
                                   std::string_view generated_at_fallback,
                                   std::size_t parallel_entries) {
  auto layout = std::make_shared<PayloadLayout>();
  bool ok = false;
  {
    CanonicalWriter w(prefix);
    ok = write_payload(w, view, generated_at_fallback, parallel_entries, *layout, prefix.size());
  }
  if (!ok) return internal::non_finite_error();
  return WrittenPayload{std::move(prefix), std::move(layout)};
}

SignedServiceMap with_payload(SignedBody body, Json payload) {
  SignedServiceMap out;
  static_cast<SignedBody&>(out) = std::move(body);
  out.payload = std::move(payload);
  return out;
}

}  // namespace

Json build_service_map(const Manifest& manifest, std::string_view generated_at_fallback) {
  auto written = write_after(std::string(), internal::view_of(manifest), generated_at_fallback, 0);
  if (!written) return std::numeric_limits<double>::quiet_NaN();  // see the header
  // Canonical JSON the writer made: it parses.
  return parse_json(written->text).value();
}

Result<SignedServiceMap> sign_service_map(Json payload, std::span<const std::byte> key,
                                          std::span<const Ed25519Key> ed25519_keys) {
  std::string begun = SignedBody::begin();
  if (auto status = append_canonical_json(begun, payload); !status) return status.error();
  return with_payload(SignedBody::sign(std::move(begun), key, ed25519_keys), std::move(payload));
}

Result<SignedServiceMap> sign_manifest_text(std::string_view text,
                                            std::string_view generated_at_fallback,
                                            std::span<const std::byte> key,
                                            std::span<const Ed25519Key> ed25519_keys,
                                            const ManifestLimits& limits) {
  Result<WrittenPayload> written = WrittenPayload{};
  Status status = internal::visit_manifest(text, limits, [&](const internal::ManifestView& view) {
    written = internal::write_signed_payload(view, generated_at_fallback);
  });
  if (!status) return status.error();
  if (!written) return std::move(written).error();
  return with_payload(
      SignedBody::sign(std::move(written->text), key, ed25519_keys, std::move(written->layout)),
      Json());
}

namespace internal {

Result<std::string> write_service_map_payload(const Manifest& manifest,
                                              std::string_view generated_at_fallback,
                                              std::size_t parallel_entries) {
  auto written =
      write_after(std::string(), view_of(manifest), generated_at_fallback, parallel_entries);
  if (!written) return std::move(written).error();
  return std::move(written->text);
}

Result<WrittenPayload> write_signed_payload(const ManifestView& view,
                                            std::string_view generated_at_fallback) {
  // The payload is written into the body itself: no copy of a few megabytes.
  return write_after(SignedBody::begin(), view, generated_at_fallback, 0);
}

SignedServiceMap sign_canonical_payload(std::string_view canonical_payload,
                                        std::span<const std::byte> key,
                                        std::span<const Ed25519Key> ed25519_keys) {
  std::string begun = SignedBody::begin();
  begun.append(canonical_payload);
  return with_payload(SignedBody::sign(std::move(begun), key, ed25519_keys), Json());
}

Result<SignedServiceMap> sign_manifest_service_map(const Manifest& manifest,
                                                   std::string_view generated_at_fallback,
                                                   std::span<const std::byte> key,
                                                   std::span<const Ed25519Key> ed25519_keys) {
  auto written = write_signed_payload(view_of(manifest), generated_at_fallback);
  if (!written) return std::move(written).error();
  return with_payload(
      SignedBody::sign(std::move(written->text), key, ed25519_keys, std::move(written->layout)),
      Json());
}

}  // namespace internal

std::string format_rfc3339(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", tm);
}

}  // namespace cortex_connectors
