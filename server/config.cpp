#include "config.h"

#include <charconv>
#include <string_view>

#include <fmt/format.h>

#include "cortex_connectors/http.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/validate.h"

namespace cortex_connectors::server {

namespace {

Error usage(std::string message) {
  return Error{ErrorCode::kUsage, "[brAInwav] " + std::move(message), {}, {}};
}

bool truthy(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string lower;
  for (char c : *v) lower.push_back(static_cast<char>((c >= 'A' && c <= 'Z') ? c + 32 : c));
  return lower == "1" || lower == "true" || lower == "yes" || lower == "on";
}

std::optional<int> to_int(std::string_view s) {
  int v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<long long> to_count(std::string_view s) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

}  // namespace

std::string default_state_dir(const std::function<std::optional<std::string>(const char*)>& env) {
  if (auto v = env("XDG_STATE_HOME"); v && !v->empty() && (*v)[0] == '/') {
    return *v + "/cortex-connectors";
  }
  if (auto v = env("HOME"); v && !v->empty() && (*v)[0] == '/') {
    return *v + "/.local/state/cortex-connectors";
  }
  return "state";
}

const char* server_usage() {
  return "usage: cortex-connectors-server [--host HOST] [--port PORT] [--manifest PATH]\n"
         "                                [--apps-dir DIR] [--heartbeat-seconds N] [--dev]\n"
         "                                [--signing-key-file FILE] [--previous-key-file FILE]...\n"
         "                                [--previous-keys-not-after RFC3339]\n"
         "                                [--trusted-keys KEYS.json] (replica)\n"
         "                                [--state-dir DIR] [--no-history]\n"
         "                                [--history-max-entries N] [--history-max-age-seconds N]\n"
         "                                [--role single|publisher|replica] [--redis URL]\n"
         "                                [--redis-prefix PREFIX]\n"
         "environment: CONNECTORS_SIGNATURE_KEY (required; a replica with --trusted-keys may\n"
         "             do without), CONNECTORS_API_KEY or MCP_API_KEY\n"
         "             (required unless NO_AUTH=true), CONNECTORS_MANIFEST_PATH, CONNECTORS_HOST,\n"
         "             CONNECTORS_PORT, LOG_LEVEL, APPS_BUNDLE_DIR, ENABLE_PROMETHEUS,\n"
         "             OTEL_EXPORTER_OTLP_ENDPOINT, CONNECTORS_SIGNING_KEY_FILE,\n"
         "             CONNECTORS_PREVIOUS_KEY_FILES, CONNECTORS_PREVIOUS_KEYS_NOT_AFTER,\n"
         "             OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_BSP_SCHEDULE_DELAY,\n"
         "             OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,\n"
         "             OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, CONNECTORS_ROLE,\n"
         "             CONNECTORS_REDIS_URL, CONNECTORS_REDIS_PREFIX,\n"
         "             CONNECTORS_TRUSTED_KEYS_FILE\n";
}

std::string RedisEndpoint::display() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return fmt::format("redis://{}{}{}{}:{}/{}", password.empty() ? "" : ":***@", ipv6 ? "[" : "",
                     host, ipv6 ? "]" : "", port, db);
}

Result<RedisEndpoint> parse_redis_url(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  if (!url.starts_with(kScheme)) return usage("the Redis URL must start with redis://");
  std::string_view rest = url.substr(kScheme.size());
  RedisEndpoint e;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view user_info = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    // redis://:password@host or redis://user:password@host (the user is not used: AUTH password).
    const auto colon = user_info.find(':');
    e.password =
        std::string(colon == std::string_view::npos ? user_info : user_info.substr(colon + 1));
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      auto n = to_int(db);
      if (!n || *n < 0) return usage("the Redis URL's database (/N) must be an integer >= 0");
      e.db = *n;
    }
  }
  // An IPv6 address is bracketed: redis://[::1]:6379.
  const auto bracket = authority.starts_with('[') ? authority.find(']') : std::string_view::npos;
  if (authority.starts_with('[') && bracket == std::string_view::npos) {
    return usage("the Redis URL's IPv6 address needs a closing ]");
  }
  if (const auto colon = authority.rfind(':');
      colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    auto p = to_int(authority.substr(colon + 1));
    if (!p || *p < 1 || *p > 65535) return usage("the Redis URL's port must be 1-65535");
    e.port = *p;
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return usage("the Redis URL needs a host");
  if (authority.find_first_of("?# \t\r\n") != std::string_view::npos) {
    return usage("the Redis URL must be redis://[:password@]host[:port][/db]");
  }
  if (bracket != std::string_view::npos) {
    if (bracket + 1 != authority.size()) {
      return usage("the Redis URL must be redis://[:password@]host[:port][/db]");
    }
    authority = authority.substr(1, bracket - 1);
    if (authority.empty()) return usage("the Redis URL needs a host");
  }
  e.host = std::string(authority);
  return e;
}

Result<ServerConfig> parse_server_config(std::span<char* const> args, const EnvLookup& env) {
  ServerConfig c;
  std::optional<std::string> role_text;
  std::optional<std::string> redis_url;
  if (auto v = env("CONNECTORS_HOST"); v && !v->empty()) c.host = *v;
  if (auto v = env("CONNECTORS_PORT"); v && !v->empty()) {
    auto p = to_int(*v);
    if (!p || *p < 0 || *p > 65535) return usage("CONNECTORS_PORT must be a port number 0-65535");
    c.port = *p;
  }
  if (auto v = env("CONNECTORS_MANIFEST_PATH"); v && !v->empty()) c.manifest_path = *v;
  if (auto v = env("CONNECTORS_SIGNATURE_KEY"); v) c.signing_key = *v;
  for (const char* name : {"CONNECTORS_API_KEY", "MCP_API_KEY"}) {
    if (auto v = env(name); v && !v->empty()) c.api_keys.push_back(*v);
  }
  if (auto v = env("CONNECTORS_SIGNING_KEY_FILE"); v && !v->empty()) c.signing_key_file = *v;
  if (auto v = env("CONNECTORS_PREVIOUS_KEY_FILES"); v && !v->empty()) {
    std::string_view rest = *v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const auto item = rest.substr(0, comma);
      if (!item.empty()) c.previous_key_files.emplace_back(item);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (auto v = env("CONNECTORS_PREVIOUS_KEYS_NOT_AFTER"); v && !v->empty()) {
    c.previous_keys_not_after = *v;
  }
  if (auto v = env("CONNECTORS_TRUSTED_KEYS_FILE"); v && !v->empty()) c.trusted_keys_file = *v;
  c.no_auth = truthy(env("NO_AUTH"));
  c.state_dir = default_state_dir(env);
  if (auto v = env("CONNECTORS_STATE_DIR"); v && !v->empty()) c.state_dir = *v;
  if (auto v = env("CONNECTORS_HISTORY"); v && !v->empty()) {
    if (*v == "off" || *v == "false" || *v == "0") {
      c.history = false;
    } else if (!truthy(v)) {
      return usage("CONNECTORS_HISTORY must be on or off");
    }
  }
  if (auto v = env("CONNECTORS_HISTORY_MAX_ENTRIES"); v && !v->empty()) {
    auto n = to_count(*v);
    if (!n) return usage("CONNECTORS_HISTORY_MAX_ENTRIES must be an integer >= 0");
    c.history_max_entries = static_cast<std::size_t>(*n);
  }
  if (auto v = env("CONNECTORS_HISTORY_MAX_AGE_SECONDS"); v && !v->empty()) {
    auto n = to_count(*v);
    if (!n) return usage("CONNECTORS_HISTORY_MAX_AGE_SECONDS must be an integer >= 0");
    c.history_max_age = std::chrono::seconds(*n);
  }
  if (auto v = env("LOG_LEVEL"); v && !v->empty()) c.log_level = *v;
  if (auto v = env("APPS_BUNDLE_DIR"); v && !v->empty()) c.apps_dir = *v;
  c.enable_prometheus = truthy(env("ENABLE_PROMETHEUS"));
  if (auto v = env("OTEL_EXPORTER_OTLP_ENDPOINT"); v && !v->empty()) {
    if (auto ok = check_otlp_endpoint(*v); !ok) return ok.error();
    c.otel_endpoint = *v;
  }
  if (auto v = env("OTEL_SERVICE_NAME"); v && !v->empty()) c.otel_service_name = *v;
  if (auto v = env("OTEL_TRACES_SAMPLER")) c.otel_sampler = *v;
  if (auto v = env("OTEL_TRACES_SAMPLER_ARG")) c.otel_sampler_arg = *v;
  for (const auto& [name, out] :
       {std::pair<const char*, std::size_t*>{"OTEL_BSP_MAX_QUEUE_SIZE", &c.otel_max_queue},
        {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &c.otel_max_batch}}) {
    if (auto v = env(name); v && !v->empty()) {
      auto n = to_int(*v);
      if (!n || *n < 1) return usage(fmt::format("{} must be a positive integer", name));
      *out = static_cast<std::size_t>(*n);
    }
  }

  // Connection limits, mostly for tests and unusual deployments.
  auto env_ms = [&](const char* name, std::chrono::milliseconds& out) -> bool {
    auto v = env(name);
    if (!v || v->empty()) return true;
    auto n = to_int(*v);
    if (!n || *n < 1) return false;
    out = std::chrono::milliseconds(*n);
    return true;
  };
  if (!env_ms("CONNECTORS_REQUEST_DEADLINE_MS", c.request_deadline)) {
    return usage("CONNECTORS_REQUEST_DEADLINE_MS must be a positive integer");
  }
  if (!env_ms("CONNECTORS_KEEPALIVE_TIMEOUT_MS", c.keep_alive_timeout)) {
    return usage("CONNECTORS_KEEPALIVE_TIMEOUT_MS must be a positive integer");
  }
  if (!env_ms("OTEL_BSP_SCHEDULE_DELAY", c.otel_schedule_delay)) {
    return usage("OTEL_BSP_SCHEDULE_DELAY must be a positive integer (milliseconds)");
  }
  if (!env_ms("OTEL_EXPORTER_OTLP_TIMEOUT", c.otel_timeout)) {
    return usage("OTEL_EXPORTER_OTLP_TIMEOUT must be a positive integer (milliseconds)");
  }
  if (!env_ms("CONNECTORS_POLL_INTERVAL_MS", c.poll_interval)) {
    return usage("CONNECTORS_POLL_INTERVAL_MS must be a positive integer");
  }
  if (auto v = env("CONNECTORS_MAX_SUBSCRIBERS"); v && !v->empty()) {
    auto n = to_int(*v);
    if (!n || *n < 1) return usage("CONNECTORS_MAX_SUBSCRIBERS must be a positive integer");
    c.max_subscribers = static_cast<std::size_t>(*n);
  }
  if (auto v = env("CONNECTORS_WORKER_THREADS"); v && !v->empty()) {
    auto n = to_int(*v);
    if (!n || *n < 1 || *n > 4096) return usage("CONNECTORS_WORKER_THREADS must be 1-4096");
    c.worker_threads = static_cast<std::size_t>(*n);
  }

  if (auto v = env("CONNECTORS_ROLE"); v && !v->empty()) role_text = *v;
  if (auto v = env("CONNECTORS_REDIS_URL"); v && !v->empty()) redis_url = *v;
  if (auto v = env("CONNECTORS_REDIS_PREFIX"); v && !v->empty()) c.redis_prefix = *v;
  std::optional<std::string> envelope_refresh = env("CONNECTORS_ENVELOPE_REFRESH_SECONDS");
  std::optional<std::string> max_snapshot_age = env("CONNECTORS_MAX_SNAPSHOT_AGE");

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    std::string_view value;
    bool has_inline = false;
    if (const auto eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_inline = true;
    }
    auto next = [&]() -> std::optional<std::string_view> {
      if (has_inline) return value;
      if (i + 1 >= args.size()) return std::nullopt;
      return std::string_view(args[++i]);
    };
    if (a == "--dev") {
      c.dev = true;
    } else if (a == "--no-history") {
      c.history = false;
    } else if (a == "--state-dir" || a == "--history-max-entries" ||
               a == "--history-max-age-seconds") {
      auto v = next();
      if (!v || v->empty()) return usage(fmt::format("{} needs a value", a));
      if (a == "--state-dir") {
        c.state_dir = std::string(*v);
      } else {
        auto n = to_count(*v);
        if (!n) return usage(fmt::format("{} must be an integer >= 0", a));
        if (a == "--history-max-entries") {
          c.history_max_entries = static_cast<std::size_t>(*n);
        } else {
          c.history_max_age = std::chrono::seconds(*n);
        }
      }
    } else if (a == "--role" || a == "--redis" || a == "--redis-prefix" ||
               a == "--envelope-refresh-seconds" || a == "--max-snapshot-age") {
      auto v = next();
      if (!v || v->empty()) return usage(fmt::format("{} needs a value", a));
      if (a == "--role") {
        role_text = std::string(*v);
      } else if (a == "--redis") {
        redis_url = std::string(*v);
      } else if (a == "--envelope-refresh-seconds") {
        envelope_refresh = std::string(*v);
      } else if (a == "--max-snapshot-age") {
        max_snapshot_age = std::string(*v);
      } else {
        c.redis_prefix = std::string(*v);
      }
    } else if (a == "--signing-key-file" || a == "--previous-key-file" ||
               a == "--previous-keys-not-after" || a == "--trusted-keys") {
      auto v = next();
      if (!v || v->empty()) return usage(fmt::format("{} needs a value", a));
      if (a == "--signing-key-file") {
        c.signing_key_file = std::string(*v);
      } else if (a == "--trusted-keys") {
        c.trusted_keys_file = std::string(*v);
      } else if (a == "--previous-key-file") {
        c.previous_key_files.emplace_back(*v);
      } else {
        c.previous_keys_not_after = std::string(*v);
      }
    } else if (a == "--host" || a == "--port" || a == "--manifest" || a == "--apps-dir" ||
               a == "--heartbeat-seconds") {
      auto v = next();
      if (!v) return usage(fmt::format("{} needs a value", a));
      if (a == "--host") {
        c.host = std::string(*v);
      } else if (a == "--port") {
        auto p = to_int(*v);
        if (!p || *p < 0 || *p > 65535) return usage("--port must be a port number 0-65535");
        c.port = *p;
      } else if (a == "--manifest") {
        c.manifest_path = std::string(*v);
      } else if (a == "--apps-dir") {
        c.apps_dir = std::string(*v);
      } else {
        auto h = to_int(*v);
        if (!h || *h < 1 || *h > 3600) return usage("--heartbeat-seconds must be 1-3600");
        c.heartbeat_seconds = *h;
      }
    } else {
      return usage(fmt::format("unknown argument \"{}\"", a.substr(0, 64)));
    }
  }

  if (role_text) {
    if (*role_text == "single") {
      c.role = Role::kSingle;
    } else if (*role_text == "publisher") {
      c.role = Role::kPublisher;
    } else if (*role_text == "replica") {
      c.role = Role::kReplica;
    } else {
      return usage("--role / CONNECTORS_ROLE must be single, publisher or replica");
    }
  }
  if (redis_url) {
    auto endpoint = parse_redis_url(*redis_url);
    if (!endpoint) return std::move(endpoint).error();
    c.redis = std::move(*endpoint);
  }
  if (c.role == Role::kSingle && c.redis) {
    return usage("--redis / CONNECTORS_REDIS_URL needs --role publisher or --role replica");
  }
  if (c.role != Role::kSingle && !c.redis) {
    return usage("--role publisher and --role replica need --redis URL (or CONNECTORS_REDIS_URL)");
  }
  if (c.role != Role::kSingle && c.dev) {
    return usage("--dev runs a single server; drop --role");
  }
  if (c.role == Role::kReplica && c.manifest_path) {
    return usage(
        "a replica serves the snapshot from Redis; drop --manifest / CONNECTORS_MANIFEST_PATH");
  }
  if (c.redis_prefix.find_first_of(" \t\r\n{}") != std::string::npos) {
    return usage("--redis-prefix must not contain spaces or braces");
  }
  if (envelope_refresh && !envelope_refresh->empty()) {
    auto n = to_count(*envelope_refresh);
    if (!n || *n < 1 || *n > 86400) {
      return usage(
          "--envelope-refresh-seconds / CONNECTORS_ENVELOPE_REFRESH_SECONDS must be 1-86400");
    }
    if (c.role != Role::kPublisher) {
      return usage(
          "--envelope-refresh-seconds / CONNECTORS_ENVELOPE_REFRESH_SECONDS is for --role "
          "publisher");
    }
    c.envelope_refresh = std::chrono::seconds(*n);
  }
  if (max_snapshot_age && !max_snapshot_age->empty()) {
    auto n = to_count(*max_snapshot_age);
    if (!n || *n > 31536000) {
      return usage("--max-snapshot-age / CONNECTORS_MAX_SNAPSHOT_AGE must be 0-31536000 seconds");
    }
    if (c.role != Role::kReplica) {
      return usage("--max-snapshot-age / CONNECTORS_MAX_SNAPSHOT_AGE is for --role replica");
    }
    c.max_snapshot_age = std::chrono::seconds(*n);
  }

  if (c.dev) {
    // Loopback only: generated keys are printed on the terminal.
    if (c.host != "127.0.0.1" && c.host != "localhost" && c.host != "::1") {
      return usage("--dev binds loopback only; drop --host or use 127.0.0.1");
    }
    if (c.signing_key.empty()) {
      // Never generate_request_id(): its ids share a per-thread prefix and count up.
      c.signing_key = generate_secret_hex(32);
      c.dev_generated_keys = true;
    }
    if (c.api_keys.empty() && !c.no_auth) {
      c.api_keys.push_back(generate_secret_hex(16));
      c.dev_generated_keys = true;
    }
  }
  if (c.previous_keys_not_after && !is_rfc3339_date_time(*c.previous_keys_not_after)) {
    return usage("CONNECTORS_PREVIOUS_KEYS_NOT_AFTER must be an RFC 3339 date-time");
  }
  if (!c.previous_key_files.empty() && !c.signing_key_file) {
    return usage("previous key files need an active one (CONNECTORS_SIGNING_KEY_FILE)");
  }
  if (c.trusted_keys_file) {
    if (c.role != Role::kReplica) {
      return usage("--trusted-keys / CONNECTORS_TRUSTED_KEYS_FILE is for --role replica");
    }
    if (c.signing_key_file || !c.previous_key_files.empty()) {
      return usage("a replica takes --trusted-keys or key files, not both");
    }
  }
  if (c.signing_key.empty() && !c.trusted_keys_file) {
    return usage("CONNECTORS_SIGNATURE_KEY is required");
  }
  if (c.api_keys.empty() && !c.no_auth) {
    return usage("CONNECTORS_API_KEY or MCP_API_KEY is required (or NO_AUTH=true)");
  }
  return c;
}

Result<SigningKeys> load_signing_keys(const ServerConfig& config) {
  SigningKeys out;
  if (config.trusted_keys_file) {
    auto keys = read_keys_document_file(*config.trusted_keys_file);
    if (!keys) return std::move(keys).error();
    out.published = std::move(*keys);
    return out;
  }
  if (!config.signing_key_file) return out;
  auto active = read_ed25519_key_file(*config.signing_key_file);
  if (!active) return std::move(active).error();
  out.published.push_back(active->public_key());
  out.active.push_back(std::move(*active));
  for (const auto& path : config.previous_key_files) {
    auto key = read_ed25519_key_file(path);
    if (!key) return std::move(key).error();
    Ed25519PublicKey published = key->public_key();
    if (published.not_after.empty() && config.previous_keys_not_after) {
      published.not_after = *config.previous_keys_not_after;
    }
    bool duplicate = false;
    for (const auto& k : out.published) duplicate = duplicate || k.kid == published.kid;
    if (!duplicate) out.published.push_back(std::move(published));
  }
  return out;
}

std::pair<std::string, std::string> split_otlp_endpoint(std::string_view endpoint) {
  const auto scheme_end = endpoint.find("://");
  const auto slash = endpoint.find('/', scheme_end + 3);
  std::string base(endpoint.substr(0, slash));
  std::string path(slash == std::string_view::npos ? std::string_view{} : endpoint.substr(slash));
  while (!path.empty() && path.back() == '/') path.pop_back();
  return {std::move(base), std::move(path)};
}

Status check_otlp_endpoint(std::string_view endpoint) {
  if (!endpoint.starts_with("http://") && !endpoint.starts_with("https://")) {
    return usage("OTEL_EXPORTER_OTLP_ENDPOINT must start with http:// or https://");
  }
  const auto [base, path] = split_otlp_endpoint(endpoint);
  if (base.size() <= base.find("://") + 3) {
    return usage("OTEL_EXPORTER_OTLP_ENDPOINT needs a host");
  }
  if (endpoint.find_first_of("?# \t\r\n") != std::string_view::npos) {
    return usage("OTEL_EXPORTER_OTLP_ENDPOINT must not carry a query, fragment or spaces");
  }
  return {};
}

}  // namespace cortex_connectors::server
