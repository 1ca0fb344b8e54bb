#include "cortex_connectors/validate.h"

#include <cmath>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "cortex_connectors/manifest.h"
#include "internal/manifest_walker.h"

namespace cortex_connectors {

namespace {

bool is_crockford(char c) noexcept {
  return (c >= '0' && c <= '9') ||
         (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U');
}
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Reads `n` digits at text[pos]; returns -1 when any is not a digit.
int digits(std::string_view text, std::size_t pos, std::size_t n) noexcept {
  if (pos + n > text.size()) return -1;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_digit(text[pos + i])) return -1;
    v = v * 10 + (text[pos + i] - '0');
  }
  return v;
}

const char* type_name(const Json& v) noexcept {
  switch (v.type()) {
    case Json::Type::kNull:
      return "null";
    case Json::Type::kBool:
      return "boolean";
    case Json::Type::kNumber:
      return "number";
    case Json::Type::kString:
      return "string";
    case Json::Type::kArray:
      return "array";
    case Json::Type::kObject:
      return "object";
  }
  return "value";
}

// Quotes user text in a message, shortened so that a hostile value cannot flood a log.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMax = 64;
  std::string out = "\"";
  if (text.size() <= kMax) {
    out.append(text);
  } else {
    std::size_t cut = kMax;  // never split a UTF-8 sequence
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    out.append(text.substr(0, cut)).append("...");
  }
  out.push_back('"');
  return out;
}

}  // namespace

bool is_ulid(std::string_view text) noexcept {
  if (text.size() != 26) return false;
  for (char c : text) {
    if (!is_crockford(c)) return false;
  }
  return true;
}

bool is_connector_id(std::string_view text) noexcept {
  if (text.size() < 2 || text.size() > 63) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool ok = (c >= 'a' && c <= 'z') || is_digit(c) || (i > 0 && c == '-');
    if (!ok) return false;
  }
  return true;
}

bool is_absolute_uri(std::string_view text) noexcept {
  // scheme "://" authority, per RFC 3986 section 3; no whitespace or controls anywhere.
  const std::size_t colon = text.find("://");
  if (colon == std::string_view::npos || colon == 0 || !is_alpha(text[0])) return false;
  for (std::size_t i = 1; i < colon; ++i) {
    const char c = text[i];
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  const std::size_t authority = colon + 3;
  if (authority >= text.size() || text[authority] == '/' || text[authority] == '?' ||
      text[authority] == '#') {
    return false;
  }
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return false;
  }
  return true;
}

bool is_rfc3339_date_time(std::string_view t) noexcept {
  // full-date "T" full-time (RFC 3339 section 5.6): YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  if (t.size() < 20) return false;
  const int year = digits(t, 0, 4);
  const int month = digits(t, 5, 2);
  const int day = digits(t, 8, 2);
  const int hour = digits(t, 11, 2);
  const int minute = digits(t, 14, 2);
  const int second = digits(t, 17, 2);
  if (year < 0 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' ||
      t[16] != ':') {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60 || hour < 0 ||
      minute < 0 || second < 0) {
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const int max_day = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
  if (day > max_day) return false;
  std::size_t pos = 19;
  if (t[pos] == '.') {
    const std::size_t start = ++pos;
    while (pos < t.size() && is_digit(t[pos])) ++pos;
    if (pos == start) return false;
  }
  if (pos >= t.size()) return false;
  if (t[pos] == 'Z' || t[pos] == 'z') return pos + 1 == t.size();
  if (t[pos] != '+' && t[pos] != '-') return false;
  const int oh = digits(t, pos + 1, 2);
  const int om = digits(t, pos + 4, 2);
  return pos + 6 == t.size() && t[pos + 3] == ':' && oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

void append_pointer_token(std::string& pointer, std::string_view token) {
  pointer.push_back('/');
  for (char c : token) {
    if (c == '~') {
      pointer.append("~0");
    } else if (c == '/') {
      pointer.append("~1");
    } else {
      pointer.push_back(c);
    }
  }
}

namespace internal {

// ---- ManifestWalker -------------------------------------------------------------------------

void ManifestWalker::issue(std::string message) {
  ++total_;
  if (issues_.size() < kMaxIssues) issues_.push_back(Issue{path_, std::move(message)});
}

void ManifestWalker::type_error(const Json& v, const char* expected) {
  issue(fmt::format("must be {}, got {}", expected, type_name(v)));
}

const std::string* ManifestWalker::string(const Json& v, bool non_empty) {
  if (!v.is_string()) {
    type_error(v, non_empty ? "a non-empty string" : "a string");
    return nullptr;
  }
  if (non_empty && v.as_string().empty()) {
    issue("must be a non-empty string");
    return nullptr;
  }
  return &v.as_string();
}

std::optional<std::int64_t> ManifestWalker::integer(const Json& v, std::int64_t min) {
  const auto expected = fmt::format("an integer >= {}", min);
  if (!v.is_number()) {
    type_error(v, expected.c_str());
    return std::nullopt;
  }
  const double d = v.as_number();
  if (std::trunc(d) != d || std::fabs(d) > kMaxSafeInteger) {
    issue(fmt::format("must be {}, got a non-integer number", expected));
    return std::nullopt;
  }
  const auto i = static_cast<std::int64_t>(d);
  if (i < min) {
    issue(fmt::format("must be {}, got {}", expected, i));
    return std::nullopt;
  }
  return i;
}

std::optional<bool> ManifestWalker::boolean(const Json& v) {
  if (!v.is_bool()) {
    type_error(v, "a boolean");
    return std::nullopt;
  }
  return v.as_bool();
}

bool ManifestWalker::object(const Json& v) {
  if (v.is_object()) return true;
  type_error(v, "an object");
  return false;
}

std::optional<std::vector<std::string>> ManifestWalker::string_array(const Json& v,
                                                                     const StringArrayRule& rule) {
  if (!v.is_array()) {
    type_error(v, rule.non_empty_array ? "a non-empty array" : "an array");
    return std::nullopt;
  }
  const auto& items = v.as_array();
  if (rule.non_empty_array && items.empty()) {
    issue("must be a non-empty array");
    return std::nullopt;
  }
  std::vector<std::string> out;
  out.reserve(items.size());
  bool ok = true;
  for (std::size_t i = 0; i < items.size(); ++i) {
    Push p(*this, i);
    const std::string* s = string(items[i], rule.non_empty_items);
    if (s == nullptr) {
      ok = false;
      continue;
    }
    if (rule.unique_what != nullptr) {
      bool dup = false;
      for (const auto& prev : out) dup = dup || prev == *s;
      if (dup) {
        issue(fmt::format("duplicate {} {}", rule.unique_what, quoted(*s)));
        ok = false;
        continue;
      }
    }
    out.push_back(*s);
  }
  if (!ok) return std::nullopt;
  return out;
}

void ManifestWalker::unknown(std::string_view key) {
  issue(fmt::format("unknown field {}", quoted(key)));
}

void ManifestWalker::missing(std::string_view key) {
  Push p(*this, key);
  issue("required field is missing");
}

// ---- the rules ------------------------------------------------------------------------------

void ManifestWalker::walk_root(const Json& doc, Manifest& out) {
  if (!doc.is_object()) {
    type_error(doc, "an object");
    return;
  }
  bool has_id = false;
  bool has_version = false;
  bool has_connectors = false;
  for (const auto& [key, v] : doc.as_object()) {
    Push p(*this, key);
    if (key == "id") {
      has_id = true;
      if (const auto* s = string(v, true)) {
        if (is_ulid(*s)) {
          out.id = *s;
        } else {
          issue("must be a ULID (26 characters of Crockford base32, upper case)");
        }
      }
    } else if (key == "manifestVersion") {
      has_version = true;
      if (const auto* s = string(v, true)) out.manifest_version = *s;
    } else if (key == "connectors") {
      has_connectors = true;
      walk_connectors(v, out.connectors);
    } else if (key == "$schema") {
      if (const auto* s = string(v, false)) out.schema = *s;
    } else if (key == "brand") {
      if (const auto* s = string(v, false)) {
        if (*s == "brAInwav") {
          out.brand = *s;
        } else {
          issue("must be \"brAInwav\"");
        }
      }
    } else if (key == "schemaVersion") {
      if (const auto* s = string(v, false)) out.schema_version = *s;
    } else if (key == "generatedAt") {
      if (const auto* s = string(v, false)) {
        if (is_rfc3339_date_time(*s)) {
          out.generated_at = *s;
        } else {
          issue("must be an RFC 3339 date-time, e.g. 2025-10-10T00:00:00Z");
        }
      }
    } else if (key == "ttlSeconds") {
      out.ttl_seconds = integer(v, 1);
    } else if (key == "metadata") {
      if (object(v)) out.metadata = v;
    } else {
      unknown(key);
    }
  }
  if (!has_id) missing("id");
  if (!has_version) missing("manifestVersion");
  if (!has_connectors) missing("connectors");
}

void ManifestWalker::walk_connectors(const Json& v, std::vector<Connector>& out) {
  if (!v.is_array()) {
    type_error(v, "a non-empty array");
    return;
  }
  const auto& items = v.as_array();
  if (items.empty()) {
    issue("must be a non-empty array");
    return;
  }
  out.resize(items.size());
  std::unordered_map<std::string_view, std::size_t> first_index;
  first_index.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    Push p(*this, i);
    walk_connector(items[i], out[i]);
    const Json* id = items[i].is_object() ? items[i].find("id") : nullptr;
    if (id == nullptr || !id->is_string() || !is_connector_id(id->as_string())) continue;
    auto [it, inserted] = first_index.emplace(id->as_string(), i);
    if (!inserted) {
      Push pid(*this, "id");
      issue(fmt::format("duplicate connector id {} (first at /connectors/{})",
                        quoted(id->as_string()), it->second));
    }
  }
}

void ManifestWalker::walk_connector(const Json& v, Connector& c) {
  if (!object(v)) return;
  bool has[7] = {};  // id name version endpoint auth scopes ttlSeconds
  for (const auto& [key, f] : v.as_object()) {
    Push p(*this, key);
    if (key == "id") {
      has[0] = true;
      if (const auto* s = string(f, true)) {
        if (is_connector_id(*s)) {
          c.id = *s;
        } else {
          issue(fmt::format("must match ^[a-z0-9][a-z0-9-]{{1,62}}$, got {}", quoted(*s)));
        }
      }
    } else if (key == "name") {
      has[1] = true;
      if (const auto* s = string(f, true)) c.name = *s;
    } else if (key == "version") {
      has[2] = true;
      if (const auto* s = string(f, true)) c.version = *s;
    } else if (key == "endpoint") {
      has[3] = true;
      if (const auto* s = string(f, true)) {
        if (is_absolute_uri(*s)) {
          c.endpoint = *s;
        } else {
          issue(fmt::format("must be an absolute URI (scheme://authority...), got {}", quoted(*s)));
        }
      }
    } else if (key == "auth") {
      has[4] = true;
      walk_auth(f, c.auth);
    } else if (key == "scopes") {
      has[5] = true;
      if (auto s = string_array(f, {true, true, "scope"})) c.scopes = std::move(*s);
    } else if (key == "ttlSeconds") {
      has[6] = true;
      if (auto i = integer(f, 1)) c.ttl_seconds = *i;
    } else if (key == "displayName") {
      if (const auto* s = string(f, true)) c.display_name = *s;
    } else if (key == "description") {
      if (const auto* s = string(f, true)) c.description = *s;
    } else if (key == "authentication") {
      walk_authentication(f, c);
    } else if (key == "headers") {
      if (object(f)) {
        bool ok = true;
        for (const auto& [name, value] : f.as_object()) {
          Push ph(*this, name);
          ok = string(value, false) != nullptr && ok;
        }
        if (ok) c.headers = f;
      }
    } else if (key == "quotas") {
      walk_quotas(f, c);
    } else if (key == "timeouts") {
      if (object(f)) {
        bool ok = true;
        for (const auto& [name, value] : f.as_object()) {
          Push pt(*this, name);
          ok = integer(value, 0).has_value() && ok;
        }
        if (ok) c.timeouts = f;
      }
    } else if (key == "status") {
      if (const auto* s = string(f, false)) {
        if (*s == "enabled") {
          c.status = ConnectorStatus::kEnabled;
        } else if (*s == "disabled") {
          c.status = ConnectorStatus::kDisabled;
        } else if (*s == "preview") {
          c.status = ConnectorStatus::kPreview;
        } else {
          issue(fmt::format("must be one of enabled, disabled, preview, got {}", quoted(*s)));
        }
      }
    } else if (key == "enabled") {
      c.enabled = boolean(f);
    } else if (key == "metadata") {
      if (object(f)) c.metadata = f;
    } else if (key == "tags") {
      if (auto s = string_array(f, {false, false, nullptr})) c.tags = std::move(*s);
    } else if (key == "remoteTools") {
      walk_remote_tools(f, c);
    } else {
      unknown(key);
    }
  }
  static constexpr const char* kRequired[] = {"id",   "name",   "version",   "endpoint",
                                              "auth", "scopes", "ttlSeconds"};
  for (std::size_t i = 0; i < 7; ++i) {
    if (!has[i]) missing(kRequired[i]);
  }
}

void ManifestWalker::walk_auth(const Json& v, Auth& auth) {
  if (!object(v)) return;
  bool has_type = false;
  for (const auto& [key, f] : v.as_object()) {
    Push p(*this, key);
    if (key == "type") {
      has_type = true;
      if (const auto* s = string(f, false)) {
        if (*s == "apiKey") {
          auth.type = AuthType::kApiKey;
        } else if (*s == "bearer") {
          auth.type = AuthType::kBearer;
        } else if (*s == "none") {
          auth.type = AuthType::kNone;
        } else {
          issue(fmt::format("must be one of apiKey, bearer, none, got {}", quoted(*s)));
        }
      }
    } else if (key == "headerName") {
      if (const auto* s = string(f, true)) auth.header_name = *s;
    } else if (key == "queryParam") {
      if (const auto* s = string(f, true)) auth.query_param = *s;
    } else {
      unknown(key);
    }
  }
  if (!has_type) missing("type");
}

void ManifestWalker::walk_authentication(const Json& v, Connector& c) {
  if (!object(v)) return;
  bool has_headers = false;
  for (const auto& [key, f] : v.as_object()) {
    Push p(*this, key);
    if (key != "headers") {
      unknown(key);
      continue;
    }
    has_headers = true;
    if (!f.is_array()) {
      type_error(f, "a non-empty array");
      continue;
    }
    if (f.as_array().empty()) {
      issue("must be a non-empty array");
      continue;
    }
    std::vector<HeaderTemplate> headers;
    bool ok = true;
    for (std::size_t i = 0; i < f.as_array().size(); ++i) {
      Push pi(*this, i);
      const Json& h = f.as_array()[i];
      if (!object(h)) {
        ok = false;
        continue;
      }
      HeaderTemplate t;
      bool has_name = false;
      bool has_value = false;
      for (const auto& [hk, hv] : h.as_object()) {
        Push ph(*this, hk);
        if (hk == "name") {
          has_name = true;
          const auto* s = string(hv, true);
          ok = s != nullptr && ok;
          if (s != nullptr) t.name = *s;
        } else if (hk == "value") {
          has_value = true;
          const auto* s = string(hv, false);
          ok = s != nullptr && ok;
          if (s != nullptr) t.value = *s;
        } else {
          unknown(hk);
          ok = false;
        }
      }
      if (!has_name) missing("name");
      if (!has_value) missing("value");
      ok = ok && has_name && has_value;
      headers.push_back(std::move(t));
    }
    if (ok) c.authentication_headers = std::move(headers);
  }
  if (!has_headers) missing("headers");
}

void ManifestWalker::walk_quotas(const Json& v, Connector& c) {
  if (!object(v)) return;
  Quotas q;
  for (const auto& [key, f] : v.as_object()) {
    Push p(*this, key);
    if (key == "perMinute") {
      q.per_minute = integer(f, 0);
    } else if (key == "perHour") {
      q.per_hour = integer(f, 0);
    } else if (key == "perDay") {
      q.per_day = integer(f, 0);
    } else if (key == "concurrent") {
      q.concurrent = integer(f, 0);
    } else {
      unknown(key);
    }
  }
  c.quotas = q;
}

void ManifestWalker::walk_remote_tools(const Json& v, Connector& c) {
  if (!v.is_array()) {
    type_error(v, "an array");
    return;
  }
  for (std::size_t i = 0; i < v.as_array().size(); ++i) {
    Push p(*this, i);
    const Json& tool = v.as_array()[i];
    if (!object(tool)) continue;
    bool has_name = false;
    for (const auto& [key, f] : tool.as_object()) {
      Push pk(*this, key);
      if (key == "name") {
        has_name = true;
        (void)string(f, true);
      } else if (key == "description") {
        (void)string(f, false);
      } else if (key == "tags" || key == "scopes") {
        (void)string_array(f, {false, false, nullptr});
      } else {
        unknown(key);
      }
    }
    if (!has_name) missing("name");
  }
  c.remote_tools = v;
}

}  // namespace internal

std::vector<Issue> validate_manifest(const Json& document) {
  internal::ManifestWalker walker;
  Manifest ignored;
  walker.walk_root(document, ignored);
  return std::move(walker).take_issues();
}

}  // namespace cortex_connectors
