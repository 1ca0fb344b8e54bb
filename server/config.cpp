#include "config.h"

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <type_traits>
#include <variant>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortex_connectors/negotiation.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/validate.h"
#include "internal/secret_file.h"

namespace cortex_connectors::server {

namespace {

Error usage(std::string message) {
  return Error{ErrorCode::kUsage, "[brAInwav] " + std::move(message), {}, {}};
}

bool truthy(std::string_view v) {
  for (std::string_view yes : {"1", "true", "yes", "on"}) {
    if (ascii_iequals(v, yes)) return true;
  }
  return false;
}

std::optional<long long> to_integer(std::string_view s) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// RFC 9110 token: what a header name is made of.
bool is_header_token(std::string_view s) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  for (char c : s) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && kSymbols.find(c) == std::string_view::npos) return false;
  }
  return !s.empty();
}

// %XX escapes decoded; nullopt for a '%' not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return std::nullopt;
    out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
    i += 2;
  }
  return out;
}

// What one parse collects: the configuration, and the values resolved once every option is
// read (the role and Redis URL are checked together; the two header lists are merged).
struct ParseState {
  ServerConfig config;
  std::optional<std::string> role_text;
  std::optional<std::string> redis_url;
  std::vector<OtlpHeader> otel_headers;
  std::vector<OtlpHeader> otel_traces_headers;
  bool envelope_refresh_given = false;  // for the role checks
  bool max_snapshot_age_given = false;
  // Files holding a secret (--signature-key-file, CONNECTORS_API_KEY_FILE, ...), read once
  // every option is known (resolve_secrets()): the path, and the name given, for errors.
  std::optional<std::pair<std::string, std::string>> signature_key_file;
  std::optional<std::pair<std::string, std::string>> api_key_file;
  std::optional<std::pair<std::string, std::string>> mcp_api_key_file;
};

// One value of an option: from its variable, or from its flag ("" for a switch).
struct Value {
  std::string_view name;  // the variable or flag as given, for errors
  std::string_view text;
  bool from_env = false;
};

struct Option;
using Apply = Status (*)(ParseState&, const Option&, const Value&);

// A row of the table: everything the parser, the usage text and the docs know of an option.
struct Option {
  std::string_view flag{};        // "--port"; "" for a variable only
  std::string_view short_flag{};  // "-h"; usually ""
  std::string_view env{};         // "CONNECTORS_PORT"; "" for a flag only
  std::string_view metavar{};     // the flag's value in the usage ("PORT"); "" for a switch
  std::string_view fallback{};    // the default, as an operator reads it
  std::string_view help{};        // plain text: the usage prints it, the docs table too
  std::string_view invalid{};     // follows the name in the error for a refused value
  Apply apply = nullptr;
  bool command = false;  // -h, --version: the parse ends there, nothing else is read
};

// A member of a member of the configuration (config.hardening.worker_threads) as a table
// entry's field: Nested{&C::hardening, &HardeningOptions::worker_threads}.
template <class Outer, class Inner>
struct Nested {
  Outer outer;
  Inner inner;
};
// Spelled out: clang before 17 has no deduction for aggregates.
template <class Outer, class Inner>
Nested(Outer, Inner) -> Nested<Outer, Inner>;

// The field a table entry names: a member pointer of ServerConfig, or a Nested one.
template <auto Field>
auto& field(ServerConfig& config) {
  if constexpr (std::is_member_object_pointer_v<decltype(Field)>) {
    return config.*Field;
  } else {
    return (config.*(Field.outer)).*(Field.inner);
  }
}

// Appliers, one per kind of value. Each stores a checked value, or returns the one-line error
// "<name> <invalid>", which never holds the value.

template <auto Field>
Status set_text(ParseState& s, const Option& /*option*/, const Value& v) {
  field<Field>(s.config) = std::string(v.text);
  return {};
}

template <auto Field>
Status add_text(ParseState& s, const Option& /*option*/, const Value& v) {
  field<Field>(s.config).emplace_back(v.text);
  return {};
}

template <auto Field, long long Min, long long Max>
Status set_integer(ParseState& s, const Option& option, const Value& v) {
  const auto n = to_integer(v.text);
  if (!n || *n < Min || *n > Max) return usage(fmt::format("{} {}", v.name, option.invalid));
  using T = std::remove_cvref_t<decltype(field<Field>(s.config))>;
  if constexpr (std::is_same_v<T, std::optional<int>>) {
    field<Field>(s.config) = static_cast<int>(*n);
  } else {
    field<Field>(s.config) = static_cast<T>(*n);
  }
  return {};
}

// set_integer(), noting that the option was given (checks across options need to know).
template <auto Field, long long Min, long long Max, auto Given>
Status set_given_integer(ParseState& s, const Option& option, const Value& v) {
  if (auto st = set_integer<Field, Min, Max>(s, option, v); !st) return st;
  s.*Given = true;
  return {};
}

// A variable holding true/false, or a switch (which sets true).
template <auto Field>
Status set_bool(ParseState& s, const Option& /*option*/, const Value& v) {
  field<Field>(s.config) = !v.from_env || truthy(v.text);
  return {};
}

template <auto Field>
Status set_pending(ParseState& s, const Option& /*option*/, const Value& v) {
  s.*Field = std::string(v.text);
  return {};
}

// A file holding a secret: only its path is kept here (resolve_secrets() reads it).
template <auto Field>
Status set_secret_file(ParseState& s, const Option& /*option*/, const Value& v) {
  s.*Field = std::make_pair(std::string(v.text), std::string(v.name));
  return {};
}

template <Command C>
Status set_command(ParseState& s, const Option& /*option*/, const Value& /*v*/) {
  s.config.command = C;
  return {};
}

// A --no-X flag, or its variable =on|off (--no-history, CONNECTORS_HISTORY).
template <auto Member>
Status set_on_off(ParseState& s, const Option& option, const Value& v) {
  if (!v.from_env || v.text == "off" || v.text == "false" || v.text == "0") {
    s.config.*Member = false;
  } else if (!truthy(v.text)) {
    return usage(fmt::format("{} {}", v.name, option.invalid));
  }
  return {};
}

// A comma-separated list in the variable, one file per (repeated) flag; both add up.
Status add_previous_key_files(ParseState& s, const Option& /*option*/, const Value& v) {
  if (!v.from_env) {
    s.config.previous_key_files.emplace_back(v.text);
    return {};
  }
  std::string_view rest = v.text;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const auto item = rest.substr(0, comma);
    if (!item.empty()) s.config.previous_key_files.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return {};
}

template <auto Field>
Status set_otlp_endpoint(ParseState& s, const Option& /*option*/, const Value& v) {
  if (auto ok = check_otlp_endpoint(v.text, v.name); !ok) return ok;
  s.config.*Field = std::string(v.text);
  return {};
}

template <auto Field>
Status set_otlp_headers(ParseState& s, const Option& /*option*/, const Value& v) {
  auto headers = parse_otlp_headers(v.name, v.text);
  if (!headers) return std::move(headers).error();
  s.*Field = std::move(*headers);
  return {};
}

constexpr long long kIntMax = INT_MAX;
constexpr long long kCountMax = LLONG_MAX;

using C = ServerConfig;
using P = ParseState;

// Every option, in the order of the usage text and of the docs table. Variables are read
// first, then the flags over them; an empty variable counts as unset.
const Option kOptions[] = {
    {.flag = "--help",
     .short_flag = "-h",
     .help = "print this help on standard output and exit",
     .apply = set_command<Command::kHelp>,
     .command = true},
    {.flag = "--version",
     .help = "print the version and exit",
     .apply = set_command<Command::kVersion>,
     .command = true},
    {.flag = "--help-markdown",
     .help = "print the options as the Markdown table of docs/server.md and exit",
     .apply = set_command<Command::kHelpMarkdown>,
     .command = true},
    {.env = "CONNECTORS_SIGNATURE_KEY",
     .fallback = "required (a replica with --trusted-keys may do without)",
     .help = "the HMAC-SHA256 signing key (its bytes); never logged",
     .apply = set_text<&C::signing_key>},
    {.env = "CONNECTORS_API_KEY",
     .fallback = "this or MCP_API_KEY, unless NO_AUTH=true",
     .help = "a key clients send as Authorization: Bearer KEY",
     .apply = add_text<&C::api_keys>},
    {.env = "MCP_API_KEY",
     .fallback = "this or CONNECTORS_API_KEY, unless NO_AUTH=true",
     .help = "another accepted key (either key is accepted)",
     .apply = add_text<&C::api_keys>},
    {.flag = "--signature-key-file",
     .env = "CONNECTORS_SIGNATURE_KEY_FILE",
     .metavar = "FILE",
     .fallback = "$CREDENTIALS_DIRECTORY/signature-key when that exists",
     .help = "read CONNECTORS_SIGNATURE_KEY from this file instead (one trailing newline "
             "removed; mode 0600 or 0400: group or others may not read it, unless it is a "
             "systemd credential); not with CONNECTORS_SIGNATURE_KEY",
     .apply = set_secret_file<&P::signature_key_file>},
    {.flag = "--api-key-file",
     .env = "CONNECTORS_API_KEY_FILE",
     .metavar = "FILE",
     .fallback = "$CREDENTIALS_DIRECTORY/api-key when that exists",
     .help = "read CONNECTORS_API_KEY from this file instead, as above; not with "
             "CONNECTORS_API_KEY",
     .apply = set_secret_file<&P::api_key_file>},
    {.flag = "--mcp-api-key-file",
     .env = "MCP_API_KEY_FILE",
     .metavar = "FILE",
     .fallback = "$CREDENTIALS_DIRECTORY/mcp-api-key when that exists",
     .help = "read MCP_API_KEY from this file instead, as above; not with MCP_API_KEY",
     .apply = set_secret_file<&P::mcp_api_key_file>},
    {.env = "NO_AUTH",
     .fallback = "false",
     .help = "true: no authentication at all (logged as a warning at start)",
     .apply = set_bool<&C::no_auth>},
    {.flag = "--manifest",
     .env = "CONNECTORS_MANIFEST_PATH",
     .metavar = "PATH",
     .fallback = "config/connectors.manifest.json",
     .help = "the manifest file, reloaded when it changes",
     .apply = set_text<&C::manifest_path>},
    {.flag = "--host",
     .env = "CONNECTORS_HOST",
     .metavar = "HOST",
     .fallback = "127.0.0.1",
     .help = "the address to listen on: loopback only by default (the Python service listened "
             "on 0.0.0.0); 0.0.0.0 listens on all interfaces",
     .apply = set_text<&C::host>},
    {.flag = "--port",
     .env = "CONNECTORS_PORT",
     .metavar = "PORT",
     .fallback = "3026",
     .help = "the port; 0 picks a free one, named in the listening log line",
     .invalid = "must be a port number 0-65535",
     .apply = set_integer<&C::port, 0, 65535>},
    {.env = "LOG_LEVEL",
     .fallback = "info",
     .help = "debug, info, warning (warn) or error (critical); any case",
     .apply = set_text<&C::log_level>},
    {.flag = "--apps-dir",
     .env = "APPS_BUNDLE_DIR",
     .metavar = "DIR",
     .fallback = "<exe>/../share/cortex_connectors/apps/chatgpt-dashboard",
     .help = "the dashboard bundle, read once at start (docs/dashboard.md)",
     .apply = set_text<&C::apps_dir>},
    {.env = "ENABLE_PROMETHEUS",
     .fallback = "false",
     .help = "true: GET /metrics on the main port, with auth when API keys are set",
     .apply = set_bool<&C::enable_prometheus>},
    {.flag = "--metrics-port",
     .env = "METRICS_PORT",
     .metavar = "PORT",
     .fallback = "off",
     .help = "a second listener for a Prometheus scraper: GET /metrics (whether or not "
             "ENABLE_PROMETHEUS is set) and GET /health without auth, 404 for everything else; "
             "0 picks a free port, named in the metrics listening log line",
     .invalid = "must be a port number 0-65535",
     .apply = set_integer<&C::metrics_port, 0, 65535>},
    {.flag = "--metrics-host",
     .env = "METRICS_HOST",
     .metavar = "HOST",
     .fallback = "127.0.0.1",
     .help = "the address of the metrics listener",
     .apply = set_text<&C::metrics_host>},
    {.flag = "--heartbeat-seconds",
     .metavar = "N",
     .fallback = "15",
     .help = "the SSE heartbeat comment interval, 1-3600",
     .invalid = "must be 1-3600",
     .apply = set_integer<&C::heartbeat_seconds, 1, 3600>},
    {.flag = "--dev",
     .help = "development: random signing and API keys printed once on standard output, the "
             "bundled example manifest, loopback only",
     .apply = set_bool<&C::dev>},
    {.env = "CONNECTORS_MAX_SUBSCRIBERS",
     .fallback = "20000",
     .help = "the SSE subscriber cap (also bounded by RLIMIT_NOFILE - 256)",
     .invalid = "must be a positive integer",
     .apply = set_integer<&C::max_subscribers, 1, kIntMax>},
    {.env = "CONNECTORS_REQUEST_DEADLINE_MS",
     .fallback = "10000",
     .help = "milliseconds a whole request head may take",
     .invalid = "must be a positive integer",
     .apply = set_integer<Nested{&C::hardening, &HardeningOptions::request_deadline}, 1, kIntMax>},
    {.env = "CONNECTORS_KEEPALIVE_TIMEOUT_MS",
     .fallback = "5000",
     .help = "milliseconds a keep-alive connection may idle between requests",
     .invalid = "must be a positive integer",
     .apply =
         set_integer<Nested{&C::hardening, &HardeningOptions::keep_alive_timeout}, 1, kIntMax>},
    {.env = "CONNECTORS_WORKER_THREADS",
     .fallback = "one per CPU the process may run on",
     .help = "request workers, 1-4096 (neither an idle connection nor a client that does not "
             "read holds one); more workers than CPUs adds tail latency under saturation",
     .invalid = "must be 1-4096",
     .apply = set_integer<Nested{&C::hardening, &HardeningOptions::worker_threads}, 1, 4096>},
    {.env = "CONNECTORS_POLL_INTERVAL_MS",
     .fallback = "1000",
     .help = "milliseconds between manifest polls where inotify cannot watch",
     .invalid = "must be a positive integer",
     .apply = set_integer<&C::poll_interval, 1, kIntMax>},
    {.flag = "--state-dir",
     .env = "CONNECTORS_STATE_DIR",
     .metavar = "DIR",
     .fallback = "$STATE_DIRECTORY (systemd's StateDirectory=), else "
                 "$XDG_STATE_HOME/cortex-connectors, else ~/.local/state/cortex-connectors, else "
                 "./state",
     .help = "the snapshot history's directory (history.sqlite3; docs/history.md); one per "
             "server: a store belongs to one manifest and one process",
     .apply = set_text<&C::state_dir>},
    {.flag = "--no-history",
     .env = "CONNECTORS_HISTORY",
     .fallback = "on",
     .help = "off: the history is kept in memory only, and versions start at the wall "
             "clock's milliseconds",
     .invalid = "must be on or off",
     .apply = set_on_off<&C::history>},
    {.flag = "--no-fast-path",
     .env = "CONNECTORS_FAST_PATH",
     .fallback = "on",
     .help = "off: every request goes through cpp-httplib's parser and router, including the "
             "hot routes the connection loop otherwise answers itself (the service map, "
             "/health, /ready, the dashboard's files); same responses, lower throughput",
     .invalid = "must be on or off",
     .apply = set_on_off<&C::fast_path>},
    {.flag = "--history-max-entries",
     .env = "CONNECTORS_HISTORY_MAX_ENTRIES",
     .metavar = "N",
     .fallback = "100",
     .help = "history retention by count (0: unlimited; the newest always stays)",
     .invalid = "must be an integer >= 0",
     .apply = set_integer<&C::history_max_entries, 0, kCountMax>},
    {.flag = "--history-max-age-seconds",
     .env = "CONNECTORS_HISTORY_MAX_AGE_SECONDS",
     .metavar = "N",
     .fallback = "2592000 (30 days)",
     .help = "history retention by age (0: unlimited)",
     .invalid = "must be an integer >= 0",
     .apply = set_integer<&C::history_max_age, 0, kCountMax>},
    {.flag = "--signing-key-file",
     .env = "CONNECTORS_SIGNING_KEY_FILE",
     .metavar = "FILE",
     .help = "an Ed25519 key file (cortex-connectors keygen, mode 0600): every body also carries "
             "its signature",
     .apply = set_text<&C::signing_key_file>},
    {.flag = "--previous-key-file",
     .env = "CONNECTORS_PREVIOUS_KEY_FILES",
     .metavar = "FILE",
     .help = "key files only published in /v1/connectors/keys during a rotation (the variable "
             "is comma-separated, the flag repeatable)",
     .apply = add_previous_key_files},
    {.flag = "--previous-keys-not-after",
     .env = "CONNECTORS_PREVIOUS_KEYS_NOT_AFTER",
     .metavar = "RFC3339",
     .help = "the end of the overlap for published-only keys whose file has no notAfter",
     .apply = set_text<&C::previous_keys_not_after>},
    {.flag = "--trusted-keys",
     .env = "CONNECTORS_TRUSTED_KEYS_FILE",
     .metavar = "KEYS.json",
     .help = "replica only: a keys document (the publisher's /v1/connectors/keys); every snapshot "
             "from Redis must carry an Ed25519 signature by one of its keys, and "
             "CONNECTORS_SIGNATURE_KEY becomes optional; not with key files",
     .apply = set_text<&C::trusted_keys_file>},
    {.flag = "--role",
     .env = "CONNECTORS_ROLE",
     .metavar = "ROLE",
     .fallback = "single",
     .help = "single, publisher or replica: horizontal scale over Redis (docs/scaling.md)",
     .apply = set_pending<&P::role_text>},
    {.flag = "--redis",
     .env = "CONNECTORS_REDIS_URL",
     .metavar = "URL",
     .help = "redis://[:password@]host[:port][/db]; required by publisher and replica, refused by "
             "single",
     .apply = set_pending<&P::redis_url>},
    {.flag = "--redis-prefix",
     .env = "CONNECTORS_REDIS_PREFIX",
     .metavar = "PREFIX",
     .fallback = "cortex:connectors",
     .help = "the prefix of every Redis key (one per deployment)",
     .apply = set_text<&C::redis_prefix>},
    {.flag = "--envelope-refresh-seconds",
     .env = "CONNECTORS_ENVELOPE_REFRESH_SECONDS",
     .metavar = "N",
     .fallback = "60",
     .help = "publisher only: re-sign the envelope of the current snapshot this often, so that "
             "replicas with a maximum age see it fresh (docs/scaling.md)",
     .invalid = "must be 1-86400",
     .apply = set_given_integer<&C::envelope_refresh, 1, 86400, &P::envelope_refresh_given>},
    {.flag = "--max-snapshot-age",
     .env = "CONNECTORS_MAX_SNAPSHOT_AGE",
     .metavar = "SECONDS",
     .fallback = "0 (no limit)",
     .help = "replica only: refuse a snapshot envelope published longer ago than this (e.g. 300 "
             "with the default refresh); the last good snapshot stays served",
     .invalid = "must be 0-31536000 seconds",
     .apply = set_given_integer<&C::max_snapshot_age, 0, 31536000, &P::max_snapshot_age_given>},
    {.env = kOtlpEndpointVariable,
     .fallback = "unset: no span export",
     .help = "OTLP/HTTP JSON span export to this base URL + /v1/traces (docs/observability.md)",
     .apply = set_otlp_endpoint<&C::otel_endpoint>},
    {.env = kOtlpTracesEndpointVariable,
     .fallback = "unset",
     .help = "the full URL spans are sent to, used as given; wins over "
             "OTEL_EXPORTER_OTLP_ENDPOINT",
     .apply = set_otlp_endpoint<&C::otel_traces_endpoint>},
    {.env = "OTEL_EXPORTER_OTLP_HEADERS",
     .fallback = "none",
     .help = "headers sent with every export: name=value,... with percent-encoded values; "
             "never logged",
     .apply = set_otlp_headers<&P::otel_headers>},
    {.env = "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
     .fallback = "none",
     .help = "the same for traces; wins per name over OTEL_EXPORTER_OTLP_HEADERS",
     .apply = set_otlp_headers<&P::otel_traces_headers>},
    {.env = "OTEL_SERVICE_NAME",
     .fallback = "cortex-connectors",
     .help = "the resource attribute service.name of exported spans",
     .apply = set_text<Nested{&C::otlp, &OtlpExporterOptions::service_name}>},
    {.env = "OTEL_EXPORTER_OTLP_TIMEOUT",
     .fallback = "10000",
     .help = "milliseconds per export request",
     .invalid = "must be a positive integer (milliseconds)",
     .apply = set_integer<Nested{&C::otlp, &OtlpExporterOptions::timeout}, 1, kIntMax>},
    {.env = "OTEL_BSP_SCHEDULE_DELAY",
     .fallback = "5000",
     .help = "milliseconds between exports of a partial batch",
     .invalid = "must be a positive integer (milliseconds)",
     .apply = set_integer<Nested{&C::otlp, &OtlpExporterOptions::schedule_delay}, 1, kIntMax>},
    {.env = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
     .fallback = "512",
     .help = "spans per export request",
     .invalid = "must be a positive integer",
     .apply = set_integer<Nested{&C::otlp, &OtlpExporterOptions::max_batch}, 1, kIntMax>},
    {.env = "OTEL_BSP_MAX_QUEUE_SIZE",
     .fallback = "2048",
     .help = "spans waiting to be sent; beyond it new spans are dropped and counted",
     .invalid = "must be a positive integer",
     .apply = set_integer<Nested{&C::otlp, &OtlpExporterOptions::max_queue}, 1, kIntMax>},
    {.env = "OTEL_TRACES_SAMPLER",
     .fallback = "parentbased_always_on",
     .help = "always_on, always_off, traceidratio, parentbased_always_on, "
             "parentbased_always_off or parentbased_traceidratio; unknown: a warning and the "
             "default",
     .apply = set_text<&C::otel_sampler>},
    {.env = "OTEL_TRACES_SAMPLER_ARG",
     .fallback = "1",
     .help = "the ratio samplers' probability, in [0, 1]",
     .apply = set_text<&C::otel_sampler_arg>},
};

// A flag as given on the command line, with its value.
struct FlagUse {
  const Option* option;
  std::string_view name;
  std::string_view value;
};

// Reads the arguments against the table; stops after a command (--help, --version).
Result<std::vector<FlagUse>> read_arguments(std::span<char* const> args) {
  std::vector<FlagUse> uses;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    std::optional<std::string_view> value;
    if (const auto eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    const Option* option = nullptr;
    for (const Option& o : kOptions) {
      if (!a.empty() && (a == o.flag || a == o.short_flag)) option = &o;
    }
    if (option == nullptr) {
      return usage(fmt::format("unknown argument \"{}\" (see --help)", a.substr(0, 64)));
    }
    if (option->metavar.empty()) {
      if (value) return usage(fmt::format("{} takes no value", a));
    } else if (!value && i + 1 < args.size()) {
      value = args[++i];
    }
    if (!option->metavar.empty() && (!value || value->empty())) {
      return usage(fmt::format("{} needs a value", a));
    }
    uses.push_back({option, a, value.value_or(std::string_view{})});
    if (option->command) break;
  }
  return uses;
}

// `from` merged into `into`: a header of the same name (any case) is replaced.
void merge_headers(std::vector<OtlpHeader>& into, std::vector<OtlpHeader> from) {
  for (auto& h : from) {
    bool replaced = false;
    for (auto& existing : into) {
      if (ascii_iequals(existing.name, h.name)) {
        existing.value = std::move(h.value);
        replaced = true;
      }
    }
    if (!replaced) into.push_back(std::move(h));
  }
}

// The role and the Redis endpoint, checked together.
Status check_role(ParseState& s) {
  ServerConfig& c = s.config;
  if (s.role_text) {
    if (*s.role_text == "single") {
      c.role = Role::kSingle;
    } else if (*s.role_text == "publisher") {
      c.role = Role::kPublisher;
    } else if (*s.role_text == "replica") {
      c.role = Role::kReplica;
    } else {
      return usage("--role / CONNECTORS_ROLE must be single, publisher or replica");
    }
  }
  if (s.redis_url) {
    auto endpoint = parse_redis_url(*s.redis_url);
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
  if (s.envelope_refresh_given && c.role != Role::kPublisher) {
    return usage(
        "--envelope-refresh-seconds / CONNECTORS_ENVELOPE_REFRESH_SECONDS is for --role publisher");
  }
  if (s.max_snapshot_age_given && c.role != Role::kReplica) {
    return usage("--max-snapshot-age / CONNECTORS_MAX_SNAPSHOT_AGE is for --role replica");
  }
  return {};
}

// Whether `path` names a file inside `dir` (both resolved; false when either cannot be).
bool is_inside(const std::string& path, const std::string& dir) {
  std::error_code ec;
  const auto file = std::filesystem::weakly_canonical(path, ec);
  if (ec) return false;
  const auto base = std::filesystem::canonical(dir, ec);
  if (ec) return false;
  const auto relative = file.lexically_relative(base);
  return !relative.empty() && *relative.begin() != "..";
}

// A secret given as a value, as a file, or as a systemd credential.
struct SecretSlot {
  std::string_view variable;    // "CONNECTORS_API_KEY"
  std::string_view credential;  // "api-key": $CREDENTIALS_DIRECTORY/api-key
  std::optional<std::pair<std::string, std::string>> ParseState::*file;
  bool api_key;  // an API key (else the signature key)
};

// Reads the secrets given as files: a --*-key-file flag or *_FILE variable, else the systemd
// credential of the same name when $CREDENTIALS_DIRECTORY holds one (LoadCredential=). A
// secret given two ways (a value and a file, or a file and another credential) is refused.
Status resolve_secrets(ParseState& s, const EnvLookup& env) {
  constexpr SecretSlot kSlots[] = {
      {"CONNECTORS_SIGNATURE_KEY", "signature-key", &P::signature_key_file, false},
      {"CONNECTORS_API_KEY", "api-key", &P::api_key_file, true},
      {"MCP_API_KEY", "mcp-api-key", &P::mcp_api_key_file, true},
  };
  std::optional<std::string> credentials_dir = env("CREDENTIALS_DIRECTORY");
  if (credentials_dir && credentials_dir->empty()) credentials_dir.reset();
  for (const SecretSlot& slot : kSlots) {
    const std::string variable(slot.variable);
    const auto value = env(variable.c_str());
    const bool value_set = value && !value->empty();
    auto file = s.*slot.file;
    std::optional<std::string> credential;
    if (credentials_dir) {
      const std::string path = *credentials_dir + "/" + std::string(slot.credential);
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0) credential = path;
    }
    if (file && value_set) {
      return usage(fmt::format("{} and {} are both set: give the secret one way", slot.variable,
                               file->second));
    }
    if (credential) {
      std::error_code ec;
      if (value_set) {
        return usage(fmt::format(
            "{} is set and so is the systemd credential {} ({}): give the secret one way",
            slot.variable, slot.credential, *credential));
      }
      if (file && !std::filesystem::equivalent(file->first, *credential, ec)) {
        return usage(fmt::format(
            "{} and the systemd credential {} ({}) are both set: give the secret one way",
            file->second, slot.credential, *credential));
      }
      if (!file) file = {*credential, fmt::format("the systemd credential {}", slot.credential)};
    }
    if (!file) {
      if (value_set) s.config.secret_sources.push_back(fmt::format("{}: environment", variable));
      continue;
    }
    auto secret = read_secret_file(file->second, file->first, credentials_dir);
    if (!secret) return std::move(secret).error();
    if (slot.api_key) {
      s.config.api_keys.push_back(std::move(*secret));
    } else {
      s.config.signing_key = std::move(*secret);
    }
    s.config.secret_sources.push_back(fmt::format("{}: file {}", variable, file->first));
  }
  return {};
}

// The checks across options, once every option is read; --dev makes the keys it lacks.
Status check_across(ParseState& s) {
  if (auto ok = check_role(s); !ok) return ok;
  ServerConfig& c = s.config;
  if (c.dev) {
    // Loopback only: generated keys are printed on the terminal.
    if (!is_loopback_host(c.host)) {
      return usage("--dev binds loopback only; drop --host or use 127.0.0.1");
    }
    if (c.signing_key.empty()) {
      // Never generate_request_id(): its ids share a per-thread prefix and count up.
      c.signing_key = generate_secret_hex(32);
      c.dev_generated_signing_key = true;
    }
    if (c.api_keys.empty() && !c.no_auth) {
      c.api_keys.push_back(generate_secret_hex(16));
      c.dev_generated_api_key = true;
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
  merge_headers(c.otlp.headers, std::move(s.otel_headers));
  merge_headers(c.otlp.headers, std::move(s.otel_traces_headers));
  return {};
}

// "--port PORT", "-h, --help", "" for a variable only.
std::string flag_text(const Option& o) {
  std::string out;
  if (!o.short_flag.empty()) out.append(o.short_flag).append(", ");
  out.append(o.flag);
  if (!o.metavar.empty()) out.append(" ").append(o.metavar);
  return o.flag.empty() ? std::string() : out;
}

// Appends `text` wrapped at 100 columns: its first line indented by `first` spaces, the others
// by `indent`.
void append_wrapped(std::string& out, std::string_view text, std::size_t first,
                    std::size_t indent) {
  constexpr std::size_t kWidth = 100;
  std::size_t column = 0;
  std::size_t lines = 0;
  while (!text.empty()) {
    const auto space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    if (column > 0 && column + 1 + word.size() > kWidth) {
      out.push_back('\n');
      column = 0;
    }
    if (column == 0) {
      const std::size_t spaces = lines++ == 0 ? first : indent;
      out.append(spaces, ' ');
      column = spaces;
    } else {
      out.push_back(' ');
      ++column;
    }
    out.append(word);
    column += word.size();
  }
  out.push_back('\n');
}

}  // namespace

std::string default_state_dir(const std::function<std::optional<std::string>(const char*)>& env) {
  // systemd's StateDirectory= (a list when it names several): the directory itself.
  if (auto v = env("STATE_DIRECTORY"); v && !v->empty() && (*v)[0] == '/') {
    return v->substr(0, v->find(':'));
  }
  if (auto v = env("XDG_STATE_HOME"); v && !v->empty() && (*v)[0] == '/') {
    return *v + "/cortex-connectors";
  }
  if (auto v = env("HOME"); v && !v->empty() && (*v)[0] == '/') {
    return *v + "/.local/state/cortex-connectors";
  }
  return "state";
}

Result<ServerConfig> parse_server_config(std::span<char* const> args, const EnvLookup& env) {
  auto uses = read_arguments(args);
  if (!uses) return std::move(uses).error();
  ParseState s;
  if (!uses->empty() && uses->back().option->command) {
    (void)uses->back().option->apply(s, *uses->back().option, {});
    return std::move(s.config);
  }
  s.config.state_dir = default_state_dir(env);
  for (const Option& o : kOptions) {
    if (o.env.empty()) continue;
    const std::string name(o.env);
    const auto v = env(name.c_str());
    if (!v || v->empty()) continue;
    if (auto ok = o.apply(s, o, Value{o.env, *v, true}); !ok) return ok.error();
  }
  for (const FlagUse& use : *uses) {
    if (auto ok = use.option->apply(s, *use.option, Value{use.name, use.value, false}); !ok) {
      return ok.error();
    }
  }
  if (auto ok = resolve_secrets(s, env); !ok) return ok.error();
  if (auto ok = check_across(s); !ok) return ok.error();
  return std::move(s.config);
}

Result<std::string> read_secret_file(std::string_view name, const std::string& path,
                                     const std::optional<std::string>& credentials_dir) {
  auto refused = [&](std::string_view what) {
    return usage(fmt::format("{} {} {}", name, path, what));
  };
  // systemd writes credentials readable by the service's group too (and guards their
  // directory): the mode of a file there says nothing about who else can read it.
  const bool credential = credentials_dir && is_inside(path, *credentials_dir);
  auto read = internal::read_secret_file(
      path, {.owner_only = !credential, .max_bytes = kMaxSecretFileBytes, .refuse_larger = true});
  if (const auto* failure = std::get_if<internal::SecretFileFailure>(&read)) {
    using Kind = internal::SecretFileFailure::Kind;
    switch (failure->kind) {
      case Kind::kOpen:
        return refused(fmt::format("cannot be opened: {}", std::strerror(failure->error_number)));
      case Kind::kStat:
      case Kind::kRead:
        return refused(fmt::format("cannot be read: {}", std::strerror(failure->error_number)));
      case Kind::kNotRegular:
        return refused("is not a regular file");
      case Kind::kOpenToOthers:
        return refused(fmt::format(
            "is open to group or others (mode {:04o}): make it 0600 (chmod 600), or pass it as "
            "a systemd credential (LoadCredential=)",
            failure->mode));
      case Kind::kTooLarge:
        break;
    }
    return refused(fmt::format("is larger than {} bytes", kMaxSecretFileBytes));
  }
  std::string secret = std::move(std::get<std::string>(read));
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (secret.empty()) return refused("is empty");
  return secret;
}

std::string server_usage() {
  std::string out =
      "usage: cortex-connectors-server [options]\n\n"
      "Serves the signed service map of a connectors manifest over HTTP (docs/server.md).\n"
      "Options are environment variables and flags; a flag overrides the variable beside it, and\n"
      "an empty variable counts as unset. In parentheses: the default.\n\n";
  for (const Option& o : kOptions) {
    std::string line = flag_text(o);
    if (!o.env.empty()) line.append(line.empty() ? "" : ", ").append(o.env);
    if (!o.fallback.empty()) line.append(" (").append(o.fallback).append(")");
    append_wrapped(out, line, 2, 4);
    append_wrapped(out, o.help, 6, 6);
  }
  return out;
}

std::string server_options_markdown() {
  // A table cell: '|' would end it, and "<exe>" would read as an HTML tag.
  auto cell = [](std::string_view text) {
    std::string out;
    for (char c : text) {
      if (c == '<') {
        out.append("&lt;");
      } else if (c == '>') {
        out.append("&gt;");
      } else {
        if (c == '|') out.push_back('\\');
        out.push_back(c);
      }
    }
    return out;
  };
  std::string out =
      "| variable | flag | default | meaning |\n"
      "|---|---|---|---|\n";
  for (const Option& o : kOptions) {
    const std::string flag = flag_text(o);
    out.append("| ")
        .append(o.env.empty() ? std::string() : fmt::format("`{}`", o.env))
        .append(" | ")
        .append(flag.empty() ? std::string() : fmt::format("`{}`", flag))
        .append(" | ")
        .append(cell(o.fallback))
        .append(" | ")
        .append(cell(o.help))
        .append(" |\n");
  }
  return out;
}

bool is_loopback_host(std::string_view host) {
  if (ascii_iequals(host, "localhost")) return true;
  const std::string text(host);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.y.z
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

Result<std::vector<OtlpHeader>> parse_otlp_headers(std::string_view variable,
                                                   std::string_view list) {
  std::vector<OtlpHeader> out;
  std::size_t position = 0;
  for (std::size_t start = 0; start <= list.size();) {
    const auto comma = list.find(',', start);
    const auto end = comma == std::string_view::npos ? list.size() : comma;
    const std::string_view entry = trim(list.substr(start, end - start));
    start = end + 1;
    ++position;
    if (entry.empty()) continue;
    auto bad = [&](std::string_view what) {
      return usage(
          fmt::format("{}: entry {} {} (the list is name=value,... with percent-encoded values)",
                      variable, position, what));
    };
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) return bad("is not name=value");
    const std::string_view name = trim(entry.substr(0, eq));
    if (name.empty()) return bad("has an empty name");
    if (!is_header_token(name)) return bad("has a name that is not an HTTP header name");
    for (std::string_view reserved :
         {"content-type", "content-length", "host", "connection", "transfer-encoding"}) {
      if (ascii_iequals(name, reserved)) return bad("names a header the exporter sets itself");
    }
    auto value = percent_decode(trim(entry.substr(eq + 1)));
    if (!value) return bad("has a bad %-escape in its value");
    for (char c : *value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) return bad("has a control character in its value");
    }
    merge_headers(out, {OtlpHeader{std::string(name), std::move(*value)}});
  }
  return out;
}

std::optional<std::string> otlp_traces_url(const ServerConfig& config) {
  if (config.otel_traces_endpoint) return config.otel_traces_endpoint;
  if (!config.otel_endpoint) return std::nullopt;
  auto [base, path] = split_otlp_endpoint(*config.otel_endpoint);
  while (!path.empty() && path.back() == '/') path.pop_back();
  return base + path + "/v1/traces";
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
      auto n = to_integer(db);
      if (!n || *n < 0 || *n > kIntMax) {
        return usage("the Redis URL's database (/N) must be an integer >= 0");
      }
      e.db = static_cast<int>(*n);
    }
  }
  // An IPv6 address is bracketed: redis://[::1]:6379.
  const auto bracket = authority.starts_with('[') ? authority.find(']') : std::string_view::npos;
  if (authority.starts_with('[') && bracket == std::string_view::npos) {
    return usage("the Redis URL's IPv6 address needs a closing ]");
  }
  if (const auto colon = authority.rfind(':');
      colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    auto p = to_integer(authority.substr(colon + 1));
    if (!p || *p < 1 || *p > 65535) return usage("the Redis URL's port must be 1-65535");
    e.port = static_cast<int>(*p);
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
  return {std::move(base), std::move(path)};
}

Status check_otlp_endpoint(std::string_view endpoint, std::string_view variable) {
  if (!endpoint.starts_with("http://") && !endpoint.starts_with("https://")) {
    return usage(fmt::format("{} must start with http:// or https://", variable));
  }
  const auto [base, path] = split_otlp_endpoint(endpoint);
  if (base.size() <= base.find("://") + 3) {
    return usage(fmt::format("{} needs a host", variable));
  }
  if (endpoint.find_first_of("?# \t\r\n") != std::string_view::npos) {
    return usage(fmt::format("{} must not carry a query, fragment or spaces", variable));
  }
  return {};
}

}  // namespace cortex_connectors::server
