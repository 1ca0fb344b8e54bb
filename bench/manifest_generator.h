// generate_manifest(connectors, seed): deterministic, realistic connectors manifests for the
// manifest and registry benchmarks (STYLE.md section 6).
//
// The output is a valid manifest (parse_manifest() accepts it; `bench_manifest --dump DIR` writes
// and checks them): root id (ULID), brand, manifestVersion, schemaVersion, generatedAt,
// ttlSeconds, metadata, then `connectors`, one compact connector per line, as a generator or an
// export tool writes them. Each connector has ids c-000001, c-000002, ... (unique, matching
// ^[a-z0-9][a-z0-9-]{1,62}$), name, usually displayName, version, a description of 72-107
// characters (some with raw non-ASCII UTF-8), an https endpoint, auth (bearer / apiKey / none,
// headerName when it has a header), authentication.headers with ${VAR} or ${VAR:default} values
// for about half, a headers object for most, 2-4 unique scopes, a subset of quotas, ttlSeconds,
// status and/or enabled for some, timeouts for some, a metadata object of 2-5 keys (strings,
// integers, a fraction, a boolean), 1-3 tags and remoteTools (1-4 tools) for about 10 %.
// Members come in the order people write them (not sorted), so canonicalization has to sort.
//
// About 690 bytes per connector: 3 -> 2.3 KB, 10 000 -> 6.9 MB, 100 000 -> 69 MB (under the
// 128 MiB ManifestLimits::max_bytes default).
//
// Deterministic: the same (connectors, seed) gives the same bytes on every machine and run
// (splitmix64 below, no std:: distributions, no clock). Nothing here touches the library.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cortex_connectors::bench {

namespace manifest_gen {

// splitmix64 (Steele, Lea, Flood 2014). Own copy, so that this header stands alone.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept : state_(seed) {}

  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
  }
  // Uniform in [0, n). REQUIRES: n > 0. The modulo bias is irrelevant for test data.
  std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }
  // True with probability percent / 100.
  bool chance(std::uint64_t percent) noexcept { return below(100) < percent; }
  template <class T, std::size_t N>
  const T& pick(const std::array<T, N>& items) noexcept {
    return items[static_cast<std::size_t>(below(N))];
  }

 private:
  std::uint64_t state_;
};

// Appends `text` as a JSON string literal, escaping what JSON requires.
inline void str(std::string& out, std::string_view text) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  out.push_back('"');
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      out.append("\\u00");
      out.push_back(kHex[u >> 4U]);
      out.push_back(kHex[u & 0xFU]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

inline void uint(std::string& out, std::uint64_t value) {
  std::array<char, 24> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  out.append(buf.data(), end);
}

// `"name":` (names are plain ASCII identifiers here).
inline void key(std::string& out, std::string_view name) {
  out.push_back('"');
  out.append(name);
  out.append("\":");
}

struct Service {
  std::string_view slug;   // path segment, scope prefix, env var stem (upper-cased)
  std::string_view title;  // human name
  std::string_view host;   // API host
};

inline constexpr std::array<Service, 16> kServices = {{
    {"github", "GitHub", "api.github.com"},
    {"gitlab", "GitLab", "gitlab.example.com"},
    {"jira", "Jira", "example.atlassian.net"},
    {"confluence", "Confluence", "wiki.example.com"},
    {"slack", "Slack", "slack.com"},
    {"drive", "Google Drive", "www.googleapis.com"},
    {"sharepoint", "SharePoint", "graph.microsoft.com"},
    {"notion", "Notion", "api.notion.com"},
    {"linear", "Linear", "api.linear.app"},
    {"zendesk", "Zendesk", "example.zendesk.com"},
    {"stripe", "Stripe", "api.stripe.com"},
    {"postgres", "Postgres", "db-proxy.internal.example.com"},
    {"perplexity", "Perplexity", "api.perplexity.ai"},
    {"wikidata", "Wikidata", "wd-mcp.wmcloud.org"},
    {"salesforce", "Salesforce", "example.my.salesforce.com"},
    {"datadog", "Datadog", "api.datadoghq.eu"},
}};

struct Kind {
  std::string_view slug;
  std::string_view title;
  std::string_view verb;     // for the description
  std::string_view objects;  // for the description
};

inline constexpr std::array<Kind, 8> kKinds = {{
    {"search", "Search", "Searches", "documents, issues and comments"},
    {"sync", "Sync", "Synchronises", "projects, members and permissions"},
    {"webhooks", "Webhooks", "Receives", "change events and delivery receipts"},
    {"export", "Export", "Exports", "reports and audit logs as JSON lines"},
    {"index", "Indexer", "Indexes", "pages and attachments for retrieval"},
    {"actions", "Actions", "Dispatches", "workflow runs after review completes"},
    {"query", "Query", "Runs read-only queries over", "tables and saved views"},
    {"tickets", "Tickets", "Reads and updates", "tickets, macros and SLAs"},
}};

inline constexpr std::array<std::string_view, 8> kTeams = {
    "integrations", "platform", "search", "support", "data", "security", "growth", "sre"};
inline constexpr std::array<std::string_view, 5> kRegions = {
    "eu-west-1", "us-east-1", "ap-northeast-1", "eu-central-1", "us-west-2"};
// Description tails; two carry raw non-ASCII UTF-8 (an em dash, accented Latin).
inline constexpr std::array<std::string_view, 6> kTails = {
    " for agents, with retries and rate limiting.",
    " without exposing API secrets to the model.",
    " \xe2\x80\x94 read-only, audited, EU data residency.",
    " for the caf\xc3\xa9 and r\xc3\xa9sum\xc3\xa9 teams.",
    " on behalf of the signed-in user.",
    " behind the connector proxy."};
inline constexpr std::array<std::string_view, 8> kScopeActions = {
    "read", "write", "search", "query", "admin", "export", "events", "insights"};
inline constexpr std::array<std::string_view, 10> kTags = {
    "search", "knowledge", "automation", "ci", "crm", "docs", "tickets", "data", "beta", "graph"};
inline constexpr std::array<std::uint64_t, 6> kTtls = {300, 600, 900, 1800, 3600, 86400};
inline constexpr std::array<std::string_view, 3> kStatuses = {"enabled", "disabled", "preview"};

// The environment-variable stem of a service: "drive" -> "DRIVE".
inline void env_name(std::string& out, std::string_view slug) {
  for (const char c : slug) out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c);
}

inline void append_connector(std::string& out, Rng& rng, std::uint64_t index) {
  const Service& svc = rng.pick(kServices);
  const Kind& kind = rng.pick(kKinds);
  std::string id = "c-";
  {
    std::array<char, 8> digits{};
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), index + 1);
    const auto n = static_cast<std::size_t>(end - digits.data());
    id.append(n < 6 ? 6 - n : 0, '0').append(digits.data(), n);
  }
  std::string name(svc.title);
  name.append(" ").append(kind.title);

  out.push_back('{');
  key(out, "id");
  str(out, id);
  out.push_back(',');
  key(out, "name");
  str(out, name);
  if (rng.chance(70)) {
    out.push_back(',');
    key(out, "displayName");
    std::string display = name;
    display.append(" (").append(rng.pick(kRegions)).append(")");
    str(out, display);
  }
  out.push_back(',');
  key(out, "version");
  std::string version;
  uint(version, rng.below(4));
  version.push_back('.');
  uint(version, rng.below(20));
  version.push_back('.');
  uint(version, rng.below(10));
  str(out, version);
  out.push_back(',');
  key(out, "description");
  std::string description(kind.verb);
  description.append(" ").append(svc.title).append(" ").append(kind.objects);
  description.append(rng.pick(kTails));
  str(out, description);
  out.push_back(',');
  key(out, "endpoint");
  std::string endpoint = "https://";
  endpoint.append(svc.host).append("/v").push_back(static_cast<char>('1' + rng.below(3)));
  endpoint.append("/").append(kind.slug).append("/").append(id);
  str(out, endpoint);

  // auth: bearer 50 %, apiKey 35 %, none 15 %.
  const std::uint64_t auth_roll = rng.below(100);
  const std::string_view auth = auth_roll < 50 ? "bearer" : auth_roll < 85 ? "apiKey" : "none";
  std::string header_name;
  if (auth == "bearer") header_name = "Authorization";
  if (auth == "apiKey") header_name = rng.chance(50) ? "X-API-Key" : "X-Api-Token";
  out.push_back(',');
  key(out, "auth");
  out.push_back('{');
  key(out, "type");
  str(out, auth);
  if (!header_name.empty()) {
    out.push_back(',');
    key(out, "headerName");
    str(out, header_name);
  }
  out.push_back('}');
  if (!header_name.empty() && rng.chance(60)) {
    out.push_back(',');
    key(out, "authentication");
    out.append("{\"headers\":[{");
    key(out, "name");
    str(out, header_name);
    out.push_back(',');
    key(out, "value");
    std::string value = auth == "bearer" ? "Bearer ${" : "${";
    env_name(value, svc.slug);
    value.append(rng.chance(50) ? "_API_KEY}" : "_TOKEN:provided-at-runtime}");
    str(out, value);
    out.append("}]}");
  }
  if (rng.chance(70)) {
    out.push_back(',');
    key(out, "headers");
    out.push_back('{');
    key(out, "X-Cortex-Connector");
    str(out, id);
    if (rng.chance(50)) {
      out.push_back(',');
      key(out, "Accept");
      str(out, "application/json");
    }
    out.push_back('}');
  }

  // 2-4 distinct scopes "<service>:<action>": a random start and stride over the 8 actions
  // (an odd stride visits all 8 before repeating, so the scopes are unique).
  out.push_back(',');
  key(out, "scopes");
  out.push_back('[');
  const std::uint64_t n_scopes = 2 + rng.below(3);
  const std::uint64_t start = rng.below(kScopeActions.size());
  const std::uint64_t stride = 1 + 2 * rng.below(4);
  for (std::uint64_t i = 0; i < n_scopes; ++i) {
    if (i != 0) out.push_back(',');
    std::string scope(svc.slug);
    scope.append(":").append(kScopeActions[(start + i * stride) % kScopeActions.size()]);
    str(out, scope);
  }
  out.push_back(']');

  if (rng.chance(80)) {
    out.push_back(',');
    key(out, "quotas");
    out.push_back('{');
    bool first = true;
    auto quota = [&](std::string_view field, std::uint64_t value) {
      if (!first) out.push_back(',');
      first = false;
      key(out, field);
      uint(out, value);
    };
    const std::uint64_t per_minute = 5 * (1 + rng.below(60));
    if (rng.chance(80)) quota("perMinute", per_minute);
    if (rng.chance(70)) quota("perHour", per_minute * 50);
    if (rng.chance(50)) quota("perDay", per_minute * 600);
    if (first || rng.chance(40)) quota("concurrent", 1 + rng.below(16));
    out.push_back('}');
  }
  out.push_back(',');
  key(out, "ttlSeconds");
  uint(out, rng.pick(kTtls));
  if (rng.chance(30)) {
    out.push_back(',');
    key(out, "timeouts");
    out.push_back('{');
    key(out, "connectMs");
    uint(out, 500 * (1 + rng.below(6)));
    out.push_back(',');
    key(out, "readMs");
    uint(out, 1000 * (5 + rng.below(55)));
    out.push_back('}');
  }
  if (rng.chance(20)) {
    out.push_back(',');
    key(out, "status");
    str(out, rng.pick(kStatuses));
  }
  if (rng.chance(15)) {
    out.push_back(',');
    key(out, "enabled");
    out.append(rng.chance(70) ? "true" : "false");
  }

  out.push_back(',');
  key(out, "metadata");
  out.push_back('{');
  key(out, "owner");
  str(out, rng.pick(kTeams));
  out.push_back(',');
  key(out, "category");
  str(out, kind.slug);
  if (rng.chance(60)) {
    out.push_back(',');
    key(out, "region");
    str(out, rng.pick(kRegions));
  }
  if (rng.chance(40)) {
    out.push_back(',');
    key(out, "slaPercent");
    out.append(rng.chance(50) ? "99.9" : "99.95");
  }
  if (rng.chance(30)) {
    out.push_back(',');
    key(out, "reviewed");
    out.append(rng.chance(80) ? "true" : "false");
  }
  if (rng.chance(30)) {
    out.push_back(',');
    key(out, "costCenter");
    uint(out, 1000 + rng.below(9000));
  }
  out.push_back('}');

  out.push_back(',');
  key(out, "tags");
  out.push_back('[');
  const std::uint64_t n_tags = 1 + rng.below(3);
  const std::uint64_t tag0 = rng.below(kTags.size());
  for (std::uint64_t i = 0; i < n_tags; ++i) {
    if (i != 0) out.push_back(',');
    str(out, kTags[(tag0 + i * 3) % kTags.size()]);
  }
  out.push_back(']');

  if (rng.chance(10)) {
    out.push_back(',');
    key(out, "remoteTools");
    out.push_back('[');
    const std::uint64_t n_tools = 1 + rng.below(4);
    for (std::uint64_t i = 0; i < n_tools; ++i) {
      if (i != 0) out.push_back(',');
      out.push_back('{');
      key(out, "name");
      std::string tool(svc.slug);
      tool.append("_").append(kind.slug).append("_");
      uint(tool, i + 1);
      str(out, tool);
      out.push_back(',');
      key(out, "description");
      std::string tool_description(kind.verb);
      tool_description.append(" ").append(kind.objects).append(" (tool ");
      uint(tool_description, i + 1);
      tool_description.append(")");
      str(out, tool_description);
      out.push_back(',');
      key(out, "tags");
      out.push_back('[');
      str(out, kind.slug);
      out.push_back(']');
      out.push_back(',');
      key(out, "scopes");
      out.push_back('[');
      std::string scope(svc.slug);
      scope.append(":").append(kScopeActions[start]);
      str(out, scope);
      out.push_back(']');
      out.push_back('}');
    }
    out.push_back(']');
  }
  out.push_back('}');
}

}  // namespace manifest_gen

// Returns the text of a valid manifest of `connectors` connectors (REQUIRES: connectors >= 1),
// deterministic for `seed`; see the file comment for what it holds.
inline std::string generate_manifest(std::size_t connectors, std::uint64_t seed) {
  using namespace manifest_gen;  // NOLINT(google-build-using-namespace): local helpers
  Rng rng(seed);
  std::string out;
  out.reserve(1024 + connectors * 900);
  // A valid ULID: a fixed timestamp part (10 characters) and 16 random Crockford base32 ones.
  static constexpr std::string_view kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::string ulid = "01J7X5MB4K";
  for (int i = 0; i < 16; ++i) ulid.push_back(kCrockford[rng.below(kCrockford.size())]);

  out.append("{\n  ");
  key(out, "id");
  str(out, ulid);
  out.append(",\n  ");
  key(out, "brand");
  str(out, "brAInwav");
  out.append(",\n  ");
  key(out, "manifestVersion");
  str(out, "2025.10.10");
  out.append(",\n  ");
  key(out, "schemaVersion");
  str(out, "1.1.0");
  out.append(",\n  ");
  key(out, "generatedAt");
  str(out, "2025-10-10T00:00:00Z");
  out.append(",\n  ");
  key(out, "ttlSeconds");
  uint(out, 3600);
  out.append(",\n  ");
  key(out, "metadata");
  out.push_back('{');
  key(out, "surface");
  str(out, "connectors");
  out.push_back(',');
  key(out, "owner");
  str(out, "platform");
  out.push_back(',');
  key(out, "generator");
  str(out, "bench/manifest_generator.h");
  out.push_back(',');
  key(out, "seed");
  uint(out, seed);
  out.append("},\n  ");
  key(out, "connectors");
  out.append("[\n");
  for (std::size_t i = 0; i < connectors; ++i) {
    out.append("    ");
    append_connector(out, rng, i);
    out.append(i + 1 < connectors ? ",\n" : "\n");
  }
  out.append("  ]\n}\n");
  return out;
}

}  // namespace cortex_connectors::bench
