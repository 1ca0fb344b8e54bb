#include "internal/manifest_dom.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cortex_connectors/validate.h"

namespace cortex_connectors::internal {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// `text == literal`, with a compare of known length that compiles to a few loads (a chain of
// string_view == literal called memcmp for each).
template <std::size_t N>
bool is(std::string_view text, const char (&literal)[N]) noexcept {
  return text.size() == N - 1 && std::memcmp(text.data(), literal, N - 1) == 0;
}

// Mirrors ManifestWalker (src/validate.cpp) rule by rule, on the DOM, for valid documents only:
// each function returns false where ManifestWalker would report a finding, and where parse_json()
// would fail a DomLimits check or a duplicate key. Depths are those of parse_json(): the root is 1.
class DomManifestReader {
 public:
  explicit DomManifestReader(const DomLimits& limits) : limits_(limits) {}

  bool root(element e, ManifestView& out) {
    if (e.type() != element_type::OBJECT || !limits_.depth_ok(1)) return false;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key)) return false;
      std::string_view s;
      if (is(key, "id")) {
        if (!first(seen, 0) || !non_empty(v, s) || !is_ulid(s)) return false;
        out.id = s;
      } else if (is(key, "manifestVersion")) {
        if (!first(seen, 1) || !non_empty(v, s)) return false;
        out.manifest_version = s;
      } else if (is(key, "connectors")) {
        if (!first(seen, 2) || !connectors(v, out.connectors)) return false;
      } else if (is(key, "$schema")) {
        if (!first(seen, 3) || !string(v, s)) return false;
        out.schema = s;
      } else if (is(key, "brand")) {
        if (!first(seen, 4) || !string(v, s) || !is(s, "brAInwav")) return false;
        out.brand = s;
      } else if (is(key, "schemaVersion")) {
        if (!first(seen, 5) || !string(v, s)) return false;
        out.schema_version = s;
      } else if (is(key, "generatedAt")) {
        if (!first(seen, 6) || !string(v, s) || !is_rfc3339_date_time(s)) return false;
        out.generated_at = s;
      } else if (is(key, "ttlSeconds")) {
        std::int64_t i = 0;
        if (!first(seen, 7) || !integer(v, 1, i)) return false;
        out.ttl_seconds = i;
      } else if (is(key, "metadata")) {
        if (!first(seen, 8) || !free_object(v, 2, out.metadata)) return false;
      } else {
        return false;
      }
    }
    return (seen & 7U) == 7U;  // id, manifestVersion, connectors
  }

 private:
  // An object's members and an array's items, by value: value_unsafe() of a temporary
  // simdjson_result must not be what a range-for binds to.
  static simdjson::dom::object members_of(element e) { return e.get_object().value_unsafe(); }
  static simdjson::dom::array items_of(element e) { return e.get_array().value_unsafe(); }

  // Marks member `bit` of an object seen; false when it was already (a duplicate key).
  static bool first(unsigned& seen, unsigned bit) noexcept {
    const unsigned mask = 1U << bit;
    if ((seen & mask) != 0) return false;
    seen |= mask;
    return true;
  }

  bool string(element e, std::string_view& s) const {
    if (e.type() != element_type::STRING) return false;
    s = e.get_string().value_unsafe();
    return limits_.string_ok(s);
  }
  bool non_empty(element e, std::string_view& s) const { return string(e, s) && !s.empty(); }

  // ManifestWalker::integer(): the parsed number is a double, integral, within +-(2^53-1).
  bool integer(element e, std::int64_t min, std::int64_t& out) const {
    switch (e.type()) {
      case element_type::INT64: {
        const std::int64_t v = e.get_int64().value_unsafe();
        if (!limits_.int64_ok(v) || std::fabs(static_cast<double>(v)) > kMaxSafeInteger) {
          return false;
        }
        out = v;
        break;
      }
      case element_type::DOUBLE: {
        const double d = e.get_double().value_unsafe();
        if (std::trunc(d) != d || std::fabs(d) > kMaxSafeInteger) return false;
        out = static_cast<std::int64_t>(d);
        break;
      }
      default:  // UINT64 is above INT64_MAX: beyond 2^53 either way
        return false;
    }
    return out >= min;
  }

  // An object or array at `depth`.
  bool object(element e, std::size_t depth) const {
    return e.type() == element_type::OBJECT && limits_.depth_ok(depth);
  }
  bool array(element e, std::size_t depth) const {
    return e.type() == element_type::ARRAY && limits_.depth_ok(depth);
  }
  // A free-form object at `depth`, within the limits parse_json() applies.
  bool free_object(element e, std::size_t depth, FreeForm& out) const {
    if (e.type() != element_type::OBJECT || !dom_ok(e, limits_, depth)) return false;
    out = FreeForm(e, depth);
    return true;
  }

  // An array of strings at `depth`: non-empty, of non-empty unique items for scopes.
  bool strings(element e, std::size_t depth, bool scopes) {
    if (!array(e, depth)) return false;
    const simdjson::dom::array items = e.get_array().value_unsafe();
    if (scopes && items.size() == 0) return false;
    seen_.clear();
    for (const element item : items) {
      std::string_view s;
      if (!string(item, s) || (scopes && s.empty())) return false;
      if (scopes) {
        if (std::find(seen_.begin(), seen_.end(), s) != seen_.end()) return false;
        seen_.push_back(s);
      }
    }
    return true;
  }

  bool connectors(element e, std::vector<ConnectorView>& out) {
    if (!array(e, 2)) return false;
    const simdjson::dom::array items = e.get_array().value_unsafe();
    out.reserve(items.size());
    for (const element item : items) {
      if (!connector(item, out.emplace_back())) return false;
    }
    const std::size_t n = out.size();
    if (n == 0) return false;
    // Unique ids. Manifests often list them in order: then one pass says so.
    bool ascending = true;
    for (std::size_t i = 1; i < n && ascending; ++i) ascending = out[i - 1].id < out[i].id;
    if (ascending) return true;
    std::vector<std::string_view> ids;
    ids.reserve(n);
    for (const ConnectorView& c : out) ids.push_back(c.id);
    std::sort(ids.begin(), ids.end());
    return std::adjacent_find(ids.begin(), ids.end()) == ids.end();
  }

  bool connector(element e, ConnectorView& c) {
    if (!object(e, 3)) return false;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key)) return false;
      std::string_view s;
      if (is(key, "id")) {
        if (!first(seen, 0) || !non_empty(v, s) || !is_connector_id(s)) return false;
        c.id = s;
      } else if (is(key, "name")) {
        if (!first(seen, 1) || !non_empty(v, s)) return false;
        c.name = s;
      } else if (is(key, "version")) {
        if (!first(seen, 2) || !non_empty(v, s)) return false;
        c.version = s;
      } else if (is(key, "endpoint")) {
        if (!first(seen, 3) || !non_empty(v, s) || !is_absolute_uri(s)) return false;
        c.endpoint = s;
      } else if (is(key, "auth")) {
        if (!first(seen, 4) || !auth(v, c)) return false;
      } else if (is(key, "scopes")) {
        if (!first(seen, 5) || !strings(v, 4, true)) return false;
        c.scopes = StringList(v);
      } else if (is(key, "ttlSeconds")) {
        if (!first(seen, 6) || !integer(v, 1, c.ttl_seconds)) return false;
      } else if (is(key, "displayName")) {
        if (!first(seen, 7) || !non_empty(v, s)) return false;
        c.display_name = s;
      } else if (is(key, "description")) {
        if (!first(seen, 8) || !non_empty(v, s)) return false;
        c.description = s;
      } else if (is(key, "authentication")) {
        if (!first(seen, 9) || !authentication(v, c)) return false;
      } else if (is(key, "headers")) {
        if (!first(seen, 10) || !object(v, 4)) return false;
        for (const auto [name, value] : members_of(v)) {
          if (!string(value, s)) return false;
        }
        if (!free_object(v, 4, c.headers)) return false;
      } else if (is(key, "quotas")) {
        if (!first(seen, 11) || !quotas(v, c)) return false;
      } else if (is(key, "timeouts")) {
        if (!first(seen, 12) || !object(v, 4)) return false;
        for (const auto [name, value] : members_of(v)) {
          std::int64_t ignored = 0;
          if (!integer(value, 0, ignored)) return false;
        }
        if (!free_object(v, 4, c.timeouts)) return false;
      } else if (is(key, "status")) {
        if (!first(seen, 13) || !string(v, s)) return false;
        if (is(s, "enabled")) {
          c.status = ConnectorStatus::kEnabled;
        } else if (is(s, "disabled")) {
          c.status = ConnectorStatus::kDisabled;
        } else if (is(s, "preview")) {
          c.status = ConnectorStatus::kPreview;
        } else {
          return false;
        }
      } else if (is(key, "enabled")) {
        if (!first(seen, 14) || v.type() != element_type::BOOL) return false;
        c.enabled = v.get_bool().value_unsafe();
      } else if (is(key, "metadata")) {
        if (!first(seen, 15) || !free_object(v, 4, c.metadata)) return false;
      } else if (is(key, "tags")) {
        if (!first(seen, 16) || !strings(v, 4, false)) return false;
        c.tags = StringList(v);
      } else if (is(key, "remoteTools")) {
        if (!first(seen, 17) || !remote_tools(v) || !dom_ok(v, limits_, 4)) return false;
        c.remote_tools = FreeForm(v, 4);
      } else {
        return false;
      }
    }
    return (seen & 0x7FU) == 0x7FU;  // id name version endpoint auth scopes ttlSeconds
  }

  bool auth(element e, ConnectorView& c) const {
    if (!object(e, 4)) return false;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key)) return false;
      std::string_view s;
      if (is(key, "type")) {
        if (!first(seen, 0) || !string(v, s)) return false;
        if (is(s, "apiKey")) {
          c.auth_type = AuthType::kApiKey;
        } else if (is(s, "bearer")) {
          c.auth_type = AuthType::kBearer;
        } else if (is(s, "none")) {
          c.auth_type = AuthType::kNone;
        } else {
          return false;
        }
      } else if (is(key, "headerName")) {
        if (!first(seen, 1) || !non_empty(v, s)) return false;
        c.auth_header_name = s;
      } else if (is(key, "queryParam")) {
        if (!first(seen, 2) || !non_empty(v, s)) return false;
        c.auth_query_param = s;
      } else {
        return false;
      }
    }
    return (seen & 1U) != 0;
  }

  bool authentication(element e, ConnectorView& c) const {
    if (!object(e, 4)) return false;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key) || !is(key, "headers") || !first(seen, 0) || !array(v, 5)) {
        return false;
      }
      const simdjson::dom::array items = v.get_array().value_unsafe();
      if (items.size() == 0) return false;
      for (const element h : items) {
        if (!header_template(h)) return false;
      }
      c.authentication_headers = HeaderList(v);
    }
    return seen == 1U;
  }

  // One item of authentication.headers: {name, value}.
  bool header_template(element e) const {
    if (!object(e, 6)) return false;
    const simdjson::dom::object fields = members_of(e);
    unsigned has = 0;
    for (const simdjson::dom::key_value_pair field : fields) {
      if (!limits_.string_ok(field.key)) return false;
      std::string_view s;
      if (is(field.key, "name")) {
        if (!first(has, 0) || !non_empty(field.value, s)) return false;
      } else if (is(field.key, "value")) {
        if (!first(has, 1) || !string(field.value, s)) return false;
      } else {
        return false;
      }
    }
    return has == 3U;
  }

  bool quotas(element e, ConnectorView& c) const {
    if (!object(e, 4)) return false;
    Quotas q;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key)) return false;
      std::optional<std::int64_t>* slot = nullptr;
      unsigned bit = 0;
      if (is(key, "perMinute")) {
        slot = &q.per_minute;
      } else if (is(key, "perHour")) {
        slot = &q.per_hour;
        bit = 1;
      } else if (is(key, "perDay")) {
        slot = &q.per_day;
        bit = 2;
      } else if (is(key, "concurrent")) {
        slot = &q.concurrent;
        bit = 3;
      } else {
        return false;
      }
      std::int64_t i = 0;
      if (!first(seen, bit) || !integer(v, 0, i)) return false;
      *slot = i;
    }
    c.quotas = q;
    return true;
  }

  // Checks remoteTools; the caller converts it whole.
  bool remote_tools(element e) {
    if (!array(e, 4)) return false;
    for (const element tool : items_of(e)) {
      if (!object(tool, 5)) return false;
      unsigned seen = 0;
      for (const auto [key, v] : members_of(tool)) {
        if (!limits_.string_ok(key)) return false;
        std::string_view s;
        if (is(key, "name")) {
          if (!first(seen, 0) || !non_empty(v, s)) return false;
        } else if (is(key, "description")) {
          if (!first(seen, 1) || !string(v, s)) return false;
        } else if (is(key, "tags")) {
          if (!first(seen, 2) || !strings(v, 6, false)) return false;
        } else if (is(key, "scopes")) {
          if (!first(seen, 3) || !strings(v, 6, false)) return false;
        } else {
          return false;
        }
      }
      if ((seen & 1U) == 0) return false;
    }
    return true;
  }

  const DomLimits& limits_;
  std::vector<std::string_view> seen_;  // strings()' scopes so far
};

}  // namespace

bool manifest_view_from_dom(simdjson::dom::element root, const DomLimits& limits,
                            ManifestView& out) {
  return DomManifestReader(limits).root(root, out);
}

JsonParseOptions manifest_parse_options(const ManifestLimits& limits) {
  JsonParseOptions options;
  options.max_depth = limits.max_depth;
  options.max_document_bytes = limits.max_bytes;
  options.max_string_bytes = limits.max_string_bytes;
  options.reject_unsafe_integers = true;
  return options;
}

Error manifest_error(std::string_view text, const JsonParseOptions& options) {
  auto doc = parse_json(text, options);
  if (!doc) return std::move(doc).error();
  auto manifest = manifest_from_json(std::move(*doc));
  if (!manifest) return std::move(manifest).error();
  // Unreachable while the two paths agree (the tests and the fuzzer hold them to it).
  return Error{ErrorCode::kInvalid, "[brAInwav] manifest is invalid", {}, {}};
}

}  // namespace cortex_connectors::internal
