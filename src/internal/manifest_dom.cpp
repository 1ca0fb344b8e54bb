#include "internal/manifest_dom.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cortex_connectors/validate.h"

namespace cortex_connectors::internal {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Mirrors ManifestWalker (src/validate.cpp) rule by rule, on the DOM, for valid documents only:
// each function returns false where ManifestWalker would report a finding, and where parse_json()
// would fail a DomLimits check or a duplicate key. Depths are those of parse_json(): the root is 1.
class DomManifestReader {
 public:
  DomManifestReader(const DomLimits& limits, std::size_t parallel_from)
      : limits_(limits), parallel_from_(parallel_from) {}

  bool root(element e, Manifest& out) {
    if (e.type() != element_type::OBJECT || !limits_.depth_ok(1)) return false;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key)) return false;
      std::string_view s;
      if (key == "id") {
        if (!first(seen, 0) || !non_empty(v, s) || !is_ulid(s)) return false;
        out.id = s;
      } else if (key == "manifestVersion") {
        if (!first(seen, 1) || !non_empty(v, s)) return false;
        out.manifest_version = s;
      } else if (key == "connectors") {
        if (!first(seen, 2) || !connectors(v, out.connectors)) return false;
      } else if (key == "$schema") {
        if (!first(seen, 3) || !string(v, s)) return false;
        out.schema = s;
      } else if (key == "brand") {
        if (!first(seen, 4) || !string(v, s) || s != "brAInwav") return false;
        out.brand = s;
      } else if (key == "schemaVersion") {
        if (!first(seen, 5) || !string(v, s)) return false;
        out.schema_version = s;
      } else if (key == "generatedAt") {
        if (!first(seen, 6) || !string(v, s) || !is_rfc3339_date_time(s)) return false;
        out.generated_at = s;
      } else if (key == "ttlSeconds") {
        std::int64_t i = 0;
        if (!first(seen, 7) || !integer(v, 1, i)) return false;
        out.ttl_seconds = i;
      } else if (key == "metadata") {
        if (!first(seen, 8) || !json_object(v, 2, out.metadata)) return false;
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
  // A free-form object at `depth`, as parse_json() builds it.
  bool json_object(element e, std::size_t depth, Json& out) const {
    return e.type() == element_type::OBJECT && json_from_dom(e, limits_, depth, out);
  }

  // An array of strings at `depth`: non-empty, of non-empty unique items for scopes.
  bool strings(element e, std::size_t depth, bool scopes, std::vector<std::string>* out) const {
    if (!array(e, depth)) return false;
    const simdjson::dom::array items = e.get_array().value_unsafe();
    if (scopes && items.size() == 0) return false;
    if (out != nullptr) out->reserve(items.size());
    for (const element item : items) {
      std::string_view s;
      if (!string(item, s) || (scopes && s.empty())) return false;
      if (out != nullptr) {
        if (scopes && std::find(out->begin(), out->end(), s) != out->end()) return false;
        out->emplace_back(s);
      }
    }
    return true;
  }

  bool connectors(element e, std::vector<Connector>& out) const {
    if (!array(e, 2)) return false;
    std::vector<element> items;
    for (const element item : items_of(e)) items.push_back(item);
    const std::size_t n = items.size();
    if (n == 0) return false;
    out.resize(n);
    // Each connector is read into its own slot from the read-only DOM, so halves can be read
    // at once.
    auto read = [this, &items, &out](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) {
        if (!connector(items[i], out[i])) return false;
      }
      return true;
    };
    bool ok = false;
    std::future<bool> second;
    const std::size_t half = n / 2;
    if (parallel_from_ != 0 && n >= parallel_from_ && n >= 2) {
      try {
        second = std::async(std::launch::async, read, half, n);
      } catch (const std::system_error&) {
        // No thread to be had: read it all here.
      }
    }
    if (second.valid()) {
      const bool first_ok = read(0, half);
      ok = second.get() && first_ok;  // get() in any case: the thread must be done with `out`
    } else {
      ok = read(0, n);
    }
    if (!ok) return false;
    // Unique ids. Manifests often list them in order: then one pass says so.
    bool ascending = true;
    for (std::size_t i = 1; i < n && ascending; ++i) ascending = out[i - 1].id < out[i].id;
    if (ascending) return true;
    std::vector<std::string_view> ids;
    ids.reserve(n);
    for (const Connector& c : out) ids.push_back(c.id);
    std::sort(ids.begin(), ids.end());
    return std::adjacent_find(ids.begin(), ids.end()) == ids.end();
  }

  bool connector(element e, Connector& c) const {
    if (!object(e, 3)) return false;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key)) return false;
      std::string_view s;
      if (key == "id") {
        if (!first(seen, 0) || !non_empty(v, s) || !is_connector_id(s)) return false;
        c.id = s;
      } else if (key == "name") {
        if (!first(seen, 1) || !non_empty(v, s)) return false;
        c.name = s;
      } else if (key == "version") {
        if (!first(seen, 2) || !non_empty(v, s)) return false;
        c.version = s;
      } else if (key == "endpoint") {
        if (!first(seen, 3) || !non_empty(v, s) || !is_absolute_uri(s)) return false;
        c.endpoint = s;
      } else if (key == "auth") {
        if (!first(seen, 4) || !auth(v, c.auth)) return false;
      } else if (key == "scopes") {
        if (!first(seen, 5) || !strings(v, 4, true, &c.scopes)) return false;
      } else if (key == "ttlSeconds") {
        if (!first(seen, 6) || !integer(v, 1, c.ttl_seconds)) return false;
      } else if (key == "displayName") {
        if (!first(seen, 7) || !non_empty(v, s)) return false;
        c.display_name = s;
      } else if (key == "description") {
        if (!first(seen, 8) || !non_empty(v, s)) return false;
        c.description = s;
      } else if (key == "authentication") {
        if (!first(seen, 9) || !authentication(v, c)) return false;
      } else if (key == "headers") {
        if (!first(seen, 10) || !object(v, 4)) return false;
        for (const auto [name, value] : members_of(v)) {
          if (!string(value, s)) return false;
        }
        if (!json_object(v, 4, c.headers)) return false;
      } else if (key == "quotas") {
        if (!first(seen, 11) || !quotas(v, c)) return false;
      } else if (key == "timeouts") {
        if (!first(seen, 12) || !object(v, 4)) return false;
        for (const auto [name, value] : members_of(v)) {
          std::int64_t ignored = 0;
          if (!integer(value, 0, ignored)) return false;
        }
        if (!json_object(v, 4, c.timeouts)) return false;
      } else if (key == "status") {
        if (!first(seen, 13) || !string(v, s)) return false;
        if (s == "enabled") {
          c.status = ConnectorStatus::kEnabled;
        } else if (s == "disabled") {
          c.status = ConnectorStatus::kDisabled;
        } else if (s == "preview") {
          c.status = ConnectorStatus::kPreview;
        } else {
          return false;
        }
      } else if (key == "enabled") {
        if (!first(seen, 14) || v.type() != element_type::BOOL) return false;
        c.enabled = v.get_bool().value_unsafe();
      } else if (key == "metadata") {
        if (!first(seen, 15) || !json_object(v, 4, c.metadata)) return false;
      } else if (key == "tags") {
        if (!first(seen, 16)) return false;
        c.tags.emplace();
        if (!strings(v, 4, false, &*c.tags)) return false;
      } else if (key == "remoteTools") {
        if (!first(seen, 17) || !remote_tools(v) || !json_from_dom(v, limits_, 4, c.remote_tools)) {
          return false;
        }
      } else {
        return false;
      }
    }
    return (seen & 0x7FU) == 0x7FU;  // id name version endpoint auth scopes ttlSeconds
  }

  bool auth(element e, Auth& auth) const {
    if (!object(e, 4)) return false;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key)) return false;
      std::string_view s;
      if (key == "type") {
        if (!first(seen, 0) || !string(v, s)) return false;
        if (s == "apiKey") {
          auth.type = AuthType::kApiKey;
        } else if (s == "bearer") {
          auth.type = AuthType::kBearer;
        } else if (s == "none") {
          auth.type = AuthType::kNone;
        } else {
          return false;
        }
      } else if (key == "headerName") {
        if (!first(seen, 1) || !non_empty(v, s)) return false;
        auth.header_name = s;
      } else if (key == "queryParam") {
        if (!first(seen, 2) || !non_empty(v, s)) return false;
        auth.query_param = s;
      } else {
        return false;
      }
    }
    return (seen & 1U) != 0;
  }

  bool authentication(element e, Connector& c) const {
    if (!object(e, 4)) return false;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key) || key != "headers" || !first(seen, 0) || !array(v, 5)) {
        return false;
      }
      const simdjson::dom::array items = v.get_array().value_unsafe();
      if (items.size() == 0) return false;
      auto& headers = c.authentication_headers.emplace();
      headers.reserve(items.size());
      for (const element h : items) {
        if (!header_template(h, headers.emplace_back())) return false;
      }
    }
    return seen == 1U;
  }

  // One item of authentication.headers: {name, value}.
  bool header_template(element e, HeaderTemplate& t) const {
    if (!object(e, 6)) return false;
    const simdjson::dom::object fields = members_of(e);
    unsigned has = 0;
    for (const simdjson::dom::key_value_pair field : fields) {
      if (!limits_.string_ok(field.key)) return false;
      std::string_view s;
      if (field.key == "name") {
        if (!first(has, 0) || !non_empty(field.value, s)) return false;
        t.name = s;
      } else if (field.key == "value") {
        if (!first(has, 1) || !string(field.value, s)) return false;
        t.value = s;
      } else {
        return false;
      }
    }
    return has == 3U;
  }

  bool quotas(element e, Connector& c) const {
    if (!object(e, 4)) return false;
    Quotas q;
    unsigned seen = 0;
    for (const auto [key, v] : members_of(e)) {
      if (!limits_.string_ok(key)) return false;
      std::optional<std::int64_t>* slot = nullptr;
      unsigned bit = 0;
      if (key == "perMinute") {
        slot = &q.per_minute;
      } else if (key == "perHour") {
        slot = &q.per_hour;
        bit = 1;
      } else if (key == "perDay") {
        slot = &q.per_day;
        bit = 2;
      } else if (key == "concurrent") {
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
  bool remote_tools(element e) const {
    if (!array(e, 4)) return false;
    for (const element tool : items_of(e)) {
      if (!object(tool, 5)) return false;
      unsigned seen = 0;
      for (const auto [key, v] : members_of(tool)) {
        if (!limits_.string_ok(key)) return false;
        std::string_view s;
        if (key == "name") {
          if (!first(seen, 0) || !non_empty(v, s)) return false;
        } else if (key == "description") {
          if (!first(seen, 1) || !string(v, s)) return false;
        } else if (key == "tags") {
          if (!first(seen, 2) || !strings(v, 6, false, nullptr)) return false;
        } else if (key == "scopes") {
          if (!first(seen, 3) || !strings(v, 6, false, nullptr)) return false;
        } else {
          return false;
        }
      }
      if ((seen & 1U) == 0) return false;
    }
    return true;
  }

  const DomLimits& limits_;
  std::size_t parallel_from_;
};

}  // namespace

bool manifest_from_dom(simdjson::dom::element root, const DomLimits& limits, Manifest& out,
                       std::size_t parallel_from) {
  return DomManifestReader(limits, parallel_from).root(root, out);
}

}  // namespace cortex_connectors::internal
