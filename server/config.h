// Configuration of cortex-connectors-server: the original service's environment variables,
// overridden by command-line flags. One table in config.cpp holds every option (flag,
// variable, value, help): parse_server_config(), server_usage() and server_options_markdown()
// (the table in docs/server.md) all read it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cortex_connectors/keys.h"
#include "cortex_connectors/result.h"
#include "hardening.h"

namespace cortex_connectors::server {

// What a server process does in a horizontally scaled deployment (docs/scaling.md).
enum class Role : std::uint8_t {
  kSingle,     // loads the manifest and serves it; no Redis (the default)
  kPublisher,  // as single, and writes every signed snapshot to Redis and announces it
  kReplica,    // no manifest: serves the verified snapshots the publisher wrote to Redis
};

// A Redis server: redis://[:password@]host[:port][/db] (port 6379, db 0 by default).
struct RedisEndpoint {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string password;  // never logged
  // The URL without the password, for logs and /health.
  std::string display() const;
};

// Parses a redis:// URL; Error (kUsage) names what is wrong, never the password.
Result<RedisEndpoint> parse_redis_url(std::string_view url);

// What the command line asks for: serve (the default), or print something and exit 0.
enum class Command : std::uint8_t {
  kServe,
  kHelp,          // -h, --help: server_usage() on stdout
  kVersion,       // --version
  kHelpMarkdown,  // --help-markdown: server_options_markdown() on stdout
};

// An HTTP header sent with every span export (OTEL_EXPORTER_OTLP_HEADERS). The value is a
// secret: never logged, never in an error.
struct OtlpHeader {
  std::string name;
  std::string value;
};

// The span exporter's settings (otlp_exporter.h), part of the configuration
// (ServerConfig::otlp).
struct OtlpExporterOptions {
  // The URL spans are POSTed to, used as given (otlp_traces_url(); not set by the parser):
  // http://host:port/path ("/" when it has no path). https:// goes through cpp-httplib's
  // OpenSSL client.
  std::string url;
  // Sent with every request (OTEL_EXPORTER_OTLP_HEADERS); the values are secrets and are never
  // logged.
  std::vector<OtlpHeader> headers;
  std::string service_name = "cortex-connectors";  // OTEL_SERVICE_NAME
  std::size_t max_queue = 2048;                    // OTEL_BSP_MAX_QUEUE_SIZE
  std::size_t max_batch = 512;                     // OTEL_BSP_MAX_EXPORT_BATCH_SIZE
  std::chrono::milliseconds schedule_delay{5000};  // OTEL_BSP_SCHEDULE_DELAY
  std::chrono::milliseconds timeout{10000};        // OTEL_EXPORTER_OTLP_TIMEOUT, per request
  // At stop(), queued spans get at most this long to leave (SIGTERM exits within ~1 s).
  std::chrono::milliseconds shutdown_budget{500};
};

struct ServerConfig {
  Command command = Command::kServe;  // with anything but kServe, nothing else is checked
  std::string host = "127.0.0.1";
  int port = 3026;  // 0: pick a free port and log it
  std::optional<std::string> manifest_path;
  // CONNECTORS_SIGNATURE_KEY, or read from CONNECTORS_SIGNATURE_KEY_FILE /
  // --signature-key-file, or from the systemd credential signature-key (read_secret_file()).
  std::string signing_key;
  // Ed25519 (keys.h): the active key file, which signs (CONNECTORS_SIGNING_KEY_FILE /
  // --signing-key-file), and key files only published in GET /v1/connectors/keys during a
  // rotation (CONNECTORS_PREVIOUS_KEY_FILES, comma-separated / repeated --previous-key-file),
  // until notAfter (the file's, or CONNECTORS_PREVIOUS_KEYS_NOT_AFTER /
  // --previous-keys-not-after when the file has none).
  std::optional<std::string> signing_key_file;
  std::vector<std::string> previous_key_files;
  std::optional<std::string> previous_keys_not_after;
  // A replica's alternative to key files and CONNECTORS_SIGNATURE_KEY: the publisher's
  // GET /v1/connectors/keys document (CONNECTORS_TRUSTED_KEYS_FILE / --trusted-keys), whose
  // public keys every snapshot from Redis must be signed by. The replica holds no secret.
  std::optional<std::string> trusted_keys_file;
  // CONNECTORS_API_KEY and/or MCP_API_KEY, or read from their *_FILE / --*-api-key-file, or
  // from the systemd credentials api-key and mcp-api-key.
  std::vector<std::string> api_keys;
  // Where each secret came from, for the log: "CONNECTORS_API_KEY: file /etc/...",
  // "CONNECTORS_SIGNATURE_KEY: environment". Never a secret.
  std::vector<std::string> secret_sources;
  bool no_auth = false;  // NO_AUTH=true
  std::string log_level = "info";
  std::optional<std::string> apps_dir;  // APPS_BUNDLE_DIR / --apps-dir
  bool enable_prometheus = false;
  // CONNECTORS_FAST_PATH / --no-fast-path: the hot routes answered by the connection loop
  // (fast_routes.h); off sends every request through cpp-httplib.
  bool fast_path = true;
  // OTEL_EXPORTER_OTLP_ENDPOINT (a base: /v1/traces is appended) and
  // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as given, and wins); see otlp_traces_url().
  std::optional<std::string> otel_endpoint;
  std::optional<std::string> otel_traces_endpoint;
  // The exporter's settings: service name, queue, batch, delay, timeout and headers
  // (OTEL_EXPORTER_OTLP_HEADERS merged with OTEL_EXPORTER_OTLP_TRACES_HEADERS, which wins per
  // name, compared without case). Its url is otlp_traces_url() of the two endpoints above.
  OtlpExporterOptions otlp;
  std::string otel_sampler;      // OTEL_TRACES_SAMPLER (read by trace_context.h's parse_sampler)
  std::string otel_sampler_arg;  // OTEL_TRACES_SAMPLER_ARG
  int heartbeat_seconds = 15;
  bool dev = false;
  // --dev made these keys (none was configured): the banner prints them once.
  bool dev_generated_signing_key = false;
  bool dev_generated_api_key = false;
  // Connection hardening (on_refused is set by the server, not the parser).
  HardeningOptions hardening;
  int listen_backlog = 1024;
  std::size_t max_subscribers = 20000;            // SSE; also bounded by RLIMIT_NOFILE
  std::chrono::milliseconds poll_interval{1000};  // watcher poll fallback
  // Snapshot history (docs/history.md): the state directory holding history.sqlite3
  // (--state-dir / CONNECTORS_STATE_DIR; default $STATE_DIRECTORY (systemd), else
  // $XDG_STATE_HOME/cortex-connectors, else $HOME/.local/state/cortex-connectors, else
  // ./state), off with --no-history /
  // CONNECTORS_HISTORY=off (in-memory history only), and its retention
  // (--history-max-entries / CONNECTORS_HISTORY_MAX_ENTRIES, --history-max-age-seconds /
  // CONNECTORS_HISTORY_MAX_AGE_SECONDS; 0 = unlimited).
  std::string state_dir;
  bool history = true;
  std::size_t history_max_entries = 100;
  std::chrono::seconds history_max_age{std::chrono::hours(24 * 30)};
  // Horizontal scale (docs/scaling.md): --role / CONNECTORS_ROLE, --redis /
  // CONNECTORS_REDIS_URL (required by publisher and replica, refused by single), and
  // --redis-prefix / CONNECTORS_REDIS_PREFIX, the prefix of every key (one per deployment).
  Role role = Role::kSingle;
  std::optional<RedisEndpoint> redis;
  std::string redis_prefix = "cortex:connectors";
  // Snapshot envelopes (docs/scaling.md): a publisher re-signs the envelope of its current
  // snapshot every --envelope-refresh-seconds / CONNECTORS_ENVELOPE_REFRESH_SECONDS (1-86400);
  // a replica refuses an envelope older than --max-snapshot-age /
  // CONNECTORS_MAX_SNAPSHOT_AGE seconds (0: no limit).
  std::chrono::seconds envelope_refresh{60};
  std::chrono::seconds max_snapshot_age{0};
  // A second listener serving only GET /metrics and GET /health, without auth, for a
  // Prometheus scraper (--metrics-port / METRICS_PORT, 0: pick a free port and log it;
  // --metrics-host / METRICS_HOST). nullopt: no such listener.
  std::optional<int> metrics_port;
  std::string metrics_host = "127.0.0.1";
};

// The state directory used when none is configured (see ServerConfig::state_dir):
// $STATE_DIRECTORY (set by systemd's StateDirectory=; its first entry), else the XDG one.
std::string default_state_dir(const std::function<std::optional<std::string>(const char*)>& env);

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;

// Builds the configuration from `env` and the flags in `args` (argv without argv[0]): the
// arguments are read first (an unknown one or a missing value is an error; -h, --help,
// --version and --help-markdown return at once with `command` set), then every variable, then
// the flags' values over them, then the secrets given as files or systemd credentials are read
// (read_secret_file()), then the checks across options. Errors (kUsage) carry one line for the
// operator; never the value of a secret.
Result<ServerConfig> parse_server_config(std::span<char* const> args, const EnvLookup& env);

// The Ed25519 keys of a configuration: the active key signs; `published` lists it first, then
// the published-only keys (rotation), for GET /v1/connectors/keys.
struct SigningKeys {
  std::vector<Ed25519Key> active;
  PublicKeySet published;
};

// Reads the key files named by `config` (keys.h: read_ed25519_key_file), or the trusted keys
// document (published only, nothing active). Errors carry one line naming the file, never a key.
Result<SigningKeys> load_signing_keys(const ServerConfig& config);

// The variables that name where spans are exported: an https:// value there is the only TLS the
// server may speak (server_main.cpp reads them before main() to decide whether OpenSSL needs its
// configuration).
inline constexpr std::string_view kOtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";
inline constexpr std::string_view kOtlpTracesEndpointVariable =
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";

// The largest secret file read_secret_file() reads.
inline constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

// Reads a secret from the file at `path`: its bytes, one trailing newline removed. Refused
// (kUsage, naming `name` and `path`, and the mode where it matters; never the content): a file
// that cannot be opened, is not a regular file, is larger than kMaxSecretFileBytes, is empty,
// or, unless it lies in `credentials_dir` ($CREDENTIALS_DIRECTORY, where systemd's
// LoadCredential= puts them), grants any access to group or others.
Result<std::string> read_secret_file(std::string_view name, const std::string& path,
                                     const std::optional<std::string>& credentials_dir);

// The usage text of the server (--help): every option of the table.
std::string server_usage();

// The options as the Markdown table docs/server.md holds between its
// `<!-- options:begin -->` and `<!-- options:end -->` markers (--help-markdown).
std::string server_options_markdown();

// Whether `host` names a loopback address (127.0.0.0/8, ::1, localhost): a listener there
// cannot be reached from other machines.
bool is_loopback_host(std::string_view host);

// Parses an OTEL_EXPORTER_OTLP_HEADERS-style list (`variable` names it in errors):
// comma-separated name=value, names and values trimmed of spaces and tabs, values
// percent-decoded, empty entries skipped, a repeated name replacing the earlier one. Error
// (kUsage) names the variable and the entry's position, never its text (it may hold a
// secret): no '=', an empty or non-token name, a name the exporter sets itself
// (Content-Type, Content-Length, Host, Connection, Transfer-Encoding), a bad %-escape or a
// control character in the value.
Result<std::vector<OtlpHeader>> parse_otlp_headers(std::string_view variable,
                                                   std::string_view list);

// The URL spans are POSTed to: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else
// OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended to its path; nullopt: no export.
std::optional<std::string> otlp_traces_url(const ServerConfig& config);

// Checks an endpoint: http:// or https://, a host, no query or fragment. Error (kUsage) names
// `variable` and what is wrong, not the value (it may carry credentials).
Status check_otlp_endpoint(std::string_view endpoint,
                           std::string_view variable = "OTEL_EXPORTER_OTLP_ENDPOINT");

// Splits a checked endpoint into scheme://host[:port] and its path as given ("" for none).
std::pair<std::string, std::string> split_otlp_endpoint(std::string_view endpoint);

}  // namespace cortex_connectors::server
