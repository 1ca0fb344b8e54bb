// cortex-connectors-server: serves the signed service map of a connectors manifest over HTTP.
// See --help (server_usage() in config.cpp) and docs/server.md.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "context.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/sqlite_history.h"
#include "cortex_connectors/trace_context.h"
#include "cortex_connectors/version.h"
#include "fast_routes.h"
#include "http_server.h"
#include "log.h"
#include "redis_scaling.h"
#include "routes.h"
#include "service_notify.h"
#include "sse_hub.h"
#include "static_files.h"
#include "tracing.h"

namespace cc = cortex_connectors;
namespace srv = cortex_connectors::server;

namespace {

constexpr int kExitConfig = 2;

// Debian's libcpp-httplib is built with OpenSSL, and a static constructor in it calls
// OPENSSL_init_ssl() asking for libcrypto's and libssl's error strings and for OpenSSL's
// configuration file: thousands of hash-table inserts and a parsed file before main(), ~3.3 M of
// the ~13 M instructions a start spent before main() (callgrind, `--version`). The server speaks
// plain HTTP; the only TLS it may speak is to an https:// OTLP endpoint. This runs before any
// library's constructor (an executable's .preinit_array), so what it declines here the
// constructor's request does not load:
// - the error strings, always: the server logs no OpenSSL error text;
// - the configuration (and the legacy cipher and digest name tables that TLS may look up), unless
//   an OTLP endpoint variable names an https:// URL or OPENSSL_CONF names a configuration. The
//   server's own digests fetch SHA-256 from the default provider either way.
// Not under the sanitizers, whose runtimes start from the same array.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
bool may_need_openssl_config(char** envp) {
  auto value_of = [](std::string_view entry,
                     std::string_view name) -> std::optional<std::string_view> {
    if (entry.size() <= name.size() || !entry.starts_with(name) || entry[name.size()] != '=') {
      return std::nullopt;
    }
    return entry.substr(name.size() + 1);
  };
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (value_of(entry, "OPENSSL_CONF")) return true;
    for (const auto name : {srv::kOtlpEndpointVariable, srv::kOtlpTracesEndpointVariable}) {
      const auto value = value_of(entry, name);
      if (value && value->starts_with("https://")) return true;
    }
  }
  return false;
}

void decline_openssl_extras(int /*argc*/, char** /*argv*/, char** envp) {
  std::uint64_t crypto = OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS;
  if (!may_need_openssl_config(envp)) {
    crypto |= OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
              OPENSSL_INIT_NO_ADD_ALL_DIGESTS;
  }
  OPENSSL_init_crypto(crypto, nullptr);
  OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS, nullptr);
}
[[gnu::section(".preinit_array"),
  gnu::used]] void (*const kPreinit)(int, char**, char**) = decline_openssl_extras;
#endif

// The example manifest --dev serves when no manifest is configured: the installed copy beside
// the executable (<exe>/../share/cortex_connectors/), else, in a build tree, the source tree's.
std::string bundled_example_manifest() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const auto installed =
      exe.parent_path().parent_path() / "share/cortex_connectors/connectors.manifest.json";
  if (!ec && std::filesystem::exists(installed, ec)) return installed.string();
  const std::filesystem::path source = CORTEX_CONNECTORS_SOURCE_EXAMPLE_MANIFEST;
  if (std::filesystem::exists(source, ec)) return source.string();
  return installed.string();
}

cc::Json fields(std::initializer_list<cc::Json::Member> members) {
  return cc::Json(cc::Json::Object(members));
}

// The history: the SQLite store in the state directory, or memory when history is off or the
// store cannot be used (a clear log line and the /health flag; never a refused start). The
// store belongs to this server's manifest and this process (SqliteHistoryStore::open): one
// that belongs to another manifest, or that another process holds, is used by neither.
std::shared_ptr<cc::HistoryRecorder> open_history(const srv::ServerConfig& config,
                                                  const srv::Log& log) {
  cc::HistoryRecorderOptions options;
  options.retention.max_entries = config.history_max_entries;
  options.retention.max_age = config.history_max_age;
  options.on_degraded = [&log](const cc::Error& e) {
    log(srv::LogLevel::kError, "history store failed: history continues in memory",
        fields({{"error", e.message}}));
  };
  // In memory (history off, or no usable store) every entry costs RAM (~8.4 MB at 10 000
  // connectors): keep at most 16, and at most 32 MiB of them (the newest always).
  constexpr std::size_t kMemoryEntries = 16;
  constexpr std::size_t kMemoryBytes = std::size_t{32} << 20;
  options.memory_max_bytes = kMemoryBytes;
  auto memory_retention = [&options] {
    if (options.retention.max_entries == 0 || options.retention.max_entries > kMemoryEntries) {
      options.retention.max_entries = kMemoryEntries;
    }
  };
  if (!config.history) {
    memory_retention();
    options.ephemeral = true;  // versions from the wall clock: never backwards across restarts
    log(srv::LogLevel::kInfo, "history off: kept in memory only");
    return std::make_shared<cc::HistoryRecorder>(
        std::make_shared<cc::MemoryHistoryStore>(kMemoryBytes), std::move(options));
  }
  const std::filesystem::path dir = config.state_dir;
  const std::string db_path = (dir / cc::kHistoryDatabaseName).string();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string reason;
  std::shared_ptr<cc::HistoryStore> store;
  if (ec) {
    reason = fmt::format("[brAInwav] cannot create the state directory {}: {}", dir.string(),
                         ec.message());
  } else if (auto opened = cc::SqliteHistoryStore::open(
                 db_path, {.read_only = false,
                           .manifest_path = config.manifest_path.value_or(
                               std::string(cc::kDefaultManifestPath))})) {
    store = std::move(*opened);
  } else {
    reason = opened.error().message;
  }
  if (!store) {
    log(srv::LogLevel::kError,
        "history store unavailable: history is kept in memory only (see /health)",
        fields({{"path", db_path}, {"error", reason}}));
    options.degraded_reason = reason;
    memory_retention();
    store = std::make_shared<cc::MemoryHistoryStore>(kMemoryBytes);
  }
  auto recorder = std::make_shared<cc::HistoryRecorder>(std::move(store), std::move(options));
  const auto st = recorder->status();
  log(srv::LogLevel::kInfo, "history",
      fields({{"store", st.store},
              {"path", db_path},
              {"degraded", st.degraded},
              {"latest_version", st.latest_version},
              {"next_version", recorder->next_version()}}));
  return recorder;
}

// Snapshot-sized buffers (bodies, manifest text, the rebuild's temporaries) are freed on other
// threads than the ones that allocated them; with glibc's dynamic thresholds each thread's arena
// then keeps them resident (~8 MB at 10 000 connectors). Fixed thresholds: buffers of 256 KiB
// and more come from mmap and go back when freed, and arenas give back free tops above 1 MiB.
void tune_allocator() {
  ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  ::mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

// --help, --version, --help-markdown: printed on standard output, exit 0.
int print_command(srv::Command command) {
  switch (command) {
    case srv::Command::kHelp:
      std::fputs(srv::server_usage().c_str(), stdout);
      break;
    case srv::Command::kHelpMarkdown:
      std::fputs(srv::server_options_markdown().c_str(), stdout);
      break;
    case srv::Command::kVersion:
      std::printf("cortex-connectors-server %s\n", std::string(cc::version_string()).c_str());
      break;
    case srv::Command::kServe:
      break;
  }
  return 0;
}

// Reads the configuration from the command line and the environment. Returns the exit code
// when the process is done: a configuration error (printed on stderr), --help, --version.
std::optional<int> configure(int argc, char** argv, srv::ServerConfig& config, srv::Log& log) {
  auto parsed = srv::parse_server_config(
      std::span<char* const>(argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0)),
      [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        return v ? std::optional<std::string>(v) : std::nullopt;
      });
  if (!parsed) {
    std::fprintf(stderr, "%s\n", parsed.error().message.c_str());
    return kExitConfig;
  }
  config = std::move(*parsed);
  if (config.command != srv::Command::kServe) return print_command(config.command);
  const auto level = srv::parse_log_level(config.log_level);
  if (!level) {
    std::fprintf(stderr, "[brAInwav] LOG_LEVEL must be debug, info, warning or error\n");
    return kExitConfig;
  }
  log.set_level(*level);
  if (config.dev && !config.manifest_path) config.manifest_path = bundled_example_manifest();
  return std::nullopt;
}

// Signals go to one thread that sigwait()s: blocks them, before any thread starts. SIGHUP asks
// for a reload (systemd's ExecReload=).
sigset_t block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// A publisher connects to Redis first, so that versions start above the stored one
// (docs/scaling.md). Returns the first version to publish (1 for the other roles), or nullopt
// when SIGTERM or SIGINT came while waiting for Redis.
std::optional<std::uint64_t> prepare_publisher(const srv::ServerConfig& config,
                                               const sigset_t& signals,
                                               const std::vector<cc::Ed25519Key>& active_keys,
                                               std::unique_ptr<srv::RedisPublisher>& publisher,
                                               std::optional<cc::SignedSnapshot>& stored_snapshot,
                                               const srv::Log& log) {
  if (config.role != srv::Role::kPublisher) return 1;
  publisher = std::make_unique<srv::RedisPublisher>(config, active_keys, log);
  auto stored = publisher->prepare([&signals] {
    sigset_t pending;
    sigemptyset(&pending);
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
  });
  if (!stored) return std::nullopt;
  const std::uint64_t first = stored->version + 1;
  // What Redis holds: an unchanged body keeps its version (RegistryOptions::resume_from).
  if (stored->version != 0) stored_snapshot = std::move(*stored);
  return first;
}

// The exporter when an OTLP endpoint is configured (spans go out only then), started and set
// as `tracer`'s; nullptr otherwise. It outlives the registry and the hub, which record into it
// from their threads.
std::unique_ptr<srv::OtlpExporter> start_exporter(const srv::ServerConfig& config,
                                                  srv::Tracer& tracer, const srv::Log& log) {
  const auto url = srv::otlp_traces_url(config);
  if (!url) return nullptr;
  srv::OtlpExporterOptions otlp = config.otlp;
  otlp.url = *url;
  // As the OpenTelemetry SDKs do, an unknown sampler or a bad argument is a warning, and the
  // default (parentbased_always_on) applies.
  auto sampler = cc::parse_sampler(config.otel_sampler, config.otel_sampler_arg);
  if (!sampler) {
    log.always(
        srv::LogLevel::kWarning,
        "OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG not understood; using "
        "parentbased_always_on",
        fields({{"sampler", config.otel_sampler}, {"sampler_arg", config.otel_sampler_arg}}));
    sampler = cc::Sampler{};
  }
  auto exporter = std::make_unique<srv::OtlpExporter>(std::move(otlp), log);
  exporter->start();
  tracer.set(exporter.get(), *sampler);
  return exporter;
}

// RegistryOptions::on_refresh: each load that changed something is a trace (its root span, one
// span per stage and, on success, the publication: see the registry listener in main()) and a
// log line.
void on_refresh(const cc::RefreshReport& r, const srv::Tracer& tracer,
                srv::PendingRefreshTrace& pending, const srv::Log& log) {
  if (r.result == cc::ReloadResult::kUnchanged) return;
  auto trace = std::make_shared<srv::RefreshTrace>(r, tracer);
  const srv::ScopedLogIds ids({{}, trace->trace_id, trace->root_span_id});
  auto ms = [](std::chrono::nanoseconds ns) {
    return std::chrono::duration<double, std::milli>(ns).count();
  };
  if (r.result == cc::ReloadResult::kSuccess) {
    log(srv::LogLevel::kInfo, "manifest loaded",
        fields({{"path", r.path},
                {"version", r.version},
                {"read_ms", ms(r.timings.read)},
                {"parse_ms", ms(r.timings.parse)},
                {"validate_ms", ms(r.timings.validate)},
                {"build_ms", ms(r.timings.build)},
                {"sign_ms", ms(r.timings.sign)},
                {"compress_ms", ms(r.timings.compress)}}));
    pending.set(std::move(trace));  // finished by the registry listener (start_hub())
  } else if (r.result == cc::ReloadResult::kFailure && r.error != nullptr) {
    cc::Json::Array issues;
    for (const auto& i : r.error->issues) issues.emplace_back(i.pointer + ": " + i.message);
    log(srv::LogLevel::kError, r.error->message,
        fields({{"path", r.path}, {"version", r.version}, {"issues", issues}}));
    trace->finish(std::chrono::system_clock::now());
  }
}

cc::RegistryOptions registry_options(const srv::ServerConfig& config,
                                     std::shared_ptr<cc::HistoryRecorder> history,
                                     std::uint64_t first_version,
                                     std::optional<cc::SignedSnapshot> stored_snapshot,
                                     std::vector<cc::Ed25519Key> active_keys) {
  cc::RegistryOptions options;
  options.history = std::move(history);
  options.first_version = first_version;
  options.resume_from = std::move(stored_snapshot);
  options.manifest_path = config.manifest_path;
  options.signing_key = config.signing_key;
  options.ed25519_keys = std::move(active_keys);
  // Routes serve the pre-built bytes only.
  options.keep_manifest = false;
  return options;
}

// Starts what fills the registry: the replica's Redis reader, or the first load and the
// manifest watcher (and the publisher's writer).
void start_loading(const srv::ServerConfig& config, cc::Registry& registry,
                   srv::RedisReplica* replica, srv::RedisPublisher* publisher,
                   const srv::Log& log) {
  if (replica != nullptr) {
    replica->start();
    return;
  }
  if (publisher != nullptr) publisher->start(registry);
  registry.refresh_async();
  if (auto watching = registry.start_watching(config.poll_interval); !watching) {
    log(srv::LogLevel::kWarning, "manifest watcher unavailable",
        fields({{"error", watching.error().message}}));
  }
}

srv::HardeningOptions hardening_options(const srv::ServerConfig& config,
                                        const srv::ServerContext& context) {
  srv::HardeningOptions hardening = config.hardening;
  hardening.on_refused = [&context](int status) { srv::log_refused_request(context, status); };
  return hardening;
}

// The dashboard: loaded once here, with the compressed files the build wrote beside it; what a
// bundle lacks is compressed after the port is bound (start_dashboard_compression()). A missing
// bundle is served as 503.
std::shared_ptr<srv::BundleSlot> load_dashboard(const srv::ServerConfig& config,
                                                const srv::Log& log) {
  const std::filesystem::path apps_dir =
      config.apps_dir ? std::filesystem::path(*config.apps_dir) : srv::default_apps_dir();
  std::string apps_problem;
  std::vector<std::string> apps_skipped;
  auto bundle = srv::StaticBundle::load(apps_dir, apps_problem, &apps_skipped, {},
                                        srv::MissingCompression::kLater);
  if (bundle) {
    log(srv::LogLevel::kInfo, "dashboard bundle loaded",
        fields({{"dir", apps_dir.string()},
                {"files", bundle->file_count()},
                {"bytes", bundle->total_bytes()},
                {"uncompressed", bundle->uncompressed_count()}}));
  } else {
    log(srv::LogLevel::kWarning, "dashboard unavailable (503)",
        fields({{"dir", apps_dir.string()}, {"reason", apps_problem}}));
  }
  for (const auto& name : apps_skipped) {
    log(srv::LogLevel::kWarning, "dashboard file skipped: symlink leaves the bundle",
        fields({{"file", name}}));
  }
  return std::make_shared<srv::BundleSlot>(std::move(bundle));
}

// Compresses what the dashboard bundle lacks (an operator's own bundle without .gz and .br
// files), on a thread of its own: served identity until then.
void start_dashboard_compression(srv::BundleCompression& compression,
                                 std::shared_ptr<srv::BundleSlot> slot, const srv::Log& log) {
  compression.start(std::move(slot), [&log](std::size_t files) {
    log(srv::LogLevel::kInfo, "dashboard bundle compressed", fields({{"files", files}}));
  });
}

// Every SSE subscriber holds a descriptor: raises the soft limit to the hard one; returns it.
rlim_t raise_nofile_limit() {
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  return nofile.rlim_cur;
}

// The SSE hub, told of every snapshot the registry publishes. Shared with the registry's
// listener: the first load runs on its own thread and may still be publishing when a SIGTERM
// makes main() return; the hub then lives until the registry (which joins that thread) has
// gone. A stopped hub ignores what it is given. nullptr when it cannot start.
std::shared_ptr<srv::SseHub> start_hub(const srv::ServerConfig& config, cc::Registry& registry,
                                       std::shared_ptr<cc::HistoryRecorder> history, rlim_t nofile,
                                       const srv::Tracer& tracer,
                                       srv::PendingRefreshTrace& pending) {
  srv::SseHubOptions hub_options;
  hub_options.tracer = &tracer;
  hub_options.heartbeat = std::chrono::seconds(config.heartbeat_seconds);
  hub_options.history = std::move(history);
  // Leave room for workers, the manifest and the listening sockets.
  const auto fd_room = nofile > 256 ? nofile - 256 : 1;
  hub_options.max_subscribers =
      std::min<std::size_t>(config.max_subscribers, static_cast<std::size_t>(fd_room));
  auto hub = std::make_shared<srv::SseHub>(hub_options, registry.metrics());
  if (!hub->start()) return nullptr;
  registry.subscribe([hub, &pending](const std::shared_ptr<const cc::Snapshot>& s) {
    // Runs right after on_refresh on the same thread: the publication joins that load's trace.
    auto trace = pending.take(s->version);
    if (!trace || !trace->sampled) {
      hub->publish(s, {}, {}, trace != nullptr);
      if (trace) trace->finish(std::chrono::system_clock::now());
      return;
    }
    const auto start = std::chrono::system_clock::now();
    const std::string publish_span = cc::generate_span_id();
    hub->publish(s, trace->trace_id, publish_span);
    trace->publish_span(publish_span, start, std::chrono::system_clock::now());
  });
  return hub;
}

// A loopback listener's log lines say so, and which setting opens it to other machines: the
// Python service listened on 0.0.0.0, this one on 127.0.0.1 unless told otherwise.
void add_bind_note(cc::Json& line, const std::string& host, std::string_view variable,
                   std::string_view flag) {
  if (!srv::is_loopback_host(host)) return;
  line.set("bind_note", fmt::format("loopback only; set {}=0.0.0.0 or {} to listen on all "
                                    "interfaces",
                                    variable, flag));
}

// The "listening" line: what an operator (and the tests) read the bound port from; and a
// warning when nobody needs a key.
void log_listening(const srv::ServerConfig& config, int port, const srv::SigningKeys& keys,
                   std::size_t max_subscribers, rlim_t nofile, const srv::Log& log) {
  const bool replica = config.role == srv::Role::kReplica;
  cc::Json line = fields(
      {{"host", config.host},
       {"port", port},
       {"version", std::string(cc::version_string())},
       {"role", config.role == srv::Role::kSingle      ? "single"
                : config.role == srv::Role::kPublisher ? "publisher"
                                                       : "replica"},
       {"manifest", replica ? std::string("(redis)")
                            : config.manifest_path.value_or(std::string(cc::kDefaultManifestPath))},
       {"max_subscribers", max_subscribers},
       {"ed25519_kid", keys.active.empty() ? std::string() : keys.active.front().kid()},
       // What a replica checks every snapshot from Redis with.
       {"verifies_with", !replica ? std::string()
                         : config.signing_key.empty()
                             ? fmt::format("{} Ed25519 key(s), no HMAC key", keys.published.size())
                         : keys.published.empty() ? std::string("HMAC key")
                                                  : fmt::format("HMAC key and {} Ed25519 key(s)",
                                                                keys.published.size())},
       {"nofile_limit", static_cast<std::uint64_t>(nofile)},
       // Where each secret came from (environment, file, systemd credential); never a value.
       {"secrets", [&config] {
          cc::Json::Array sources;
          for (const auto& s : config.secret_sources) sources.emplace_back(s);
          return cc::Json(std::move(sources));
        }()}});
  add_bind_note(line, config.host, "CONNECTORS_HOST", "--host");
  log.always(srv::LogLevel::kInfo, "listening", line);
  if (config.no_auth) {
    log(srv::LogLevel::kWarning,
        "NO_AUTH=true: authentication is DISABLED, every client can read the service map");
  }
}

// --dev: where it listens, and the keys it made, once on standard output (never logged).
void print_dev_banner(const srv::ServerConfig& config, int port) {
  const std::string url = fmt::format("http://{}:{}", config.host, port);
  std::string out = fmt::format(
      "\ncortex-connectors-server --dev on {}\n"
      "  listening on {} only (loopback): other machines cannot connect. Outside --dev,\n"
      "  CONNECTORS_HOST=0.0.0.0 (or --host 0.0.0.0) listens on all interfaces.\n",
      url, config.host);
  if (config.dev_generated_signing_key) {
    out += fmt::format("  signing key (CONNECTORS_SIGNATURE_KEY): {}\n", config.signing_key);
  }
  std::string auth;
  if (config.dev_generated_api_key) {
    out += fmt::format("  API key     (CONNECTORS_API_KEY):       {}\n", config.api_keys.front());
    auth = fmt::format("-H 'Authorization: Bearer {}' ", config.api_keys.front());
  } else if (!config.api_keys.empty()) {
    auth = "-H \"Authorization: Bearer $CONNECTORS_API_KEY\" ";
  }
  out += fmt::format("  try: curl {}{}/v1/connectors/service-map\n\n", auth, url);
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
}

// The metrics listener (--metrics-port): its own hardened server with /metrics and /health
// only, without auth, served from its own thread.
struct MetricsListener {
  std::unique_ptr<srv::HardenedServer> server;
  std::thread thread;
  std::atomic<bool> done{false};

  // Serves on the thread; returns once it accepts (or failed), so that a later shutdown()
  // cannot come before httplib's accept loop and be lost.
  void start() {
    if (!server) return;
    thread = std::thread([this] {
      server->listen_after_bind();
      done = true;
    });
    while (!server->is_running() && !done) std::this_thread::yield();
  }
  void stop() {
    if (!server) return;
    server->shutdown();
    if (thread.joinable()) thread.join();
  }
};

// Binds the metrics listener when one is configured and logs its address; false (with a line
// on stderr) when it cannot listen.
bool bind_metrics_listener(MetricsListener& listener, const srv::ServerContext& context) {
  const srv::ServerConfig& config = context.config;
  const srv::Log& log = context.log;
  if (!config.metrics_port) return true;
  srv::HardeningOptions options = hardening_options(config, context);
  options.worker_threads =
      std::min<std::size_t>(srv::worker_thread_count(options), 2);  // a scraper
  listener.server = std::make_unique<srv::HardenedServer>(std::move(options));
  srv::install_metrics_listener_routes(*listener.server, context);
  const int port =
      listener.server->bind(config.metrics_host, *config.metrics_port, config.listen_backlog);
  if (port < 0) {
    std::fprintf(stderr, "[brAInwav] cannot listen for metrics on %s:%d: %s\n",
                 config.metrics_host.c_str(), *config.metrics_port, std::strerror(errno));
    return false;
  }
  cc::Json line = fields({{"host", config.metrics_host},
                          {"port", port},
                          {"routes", cc::Json::Array{"/metrics", "/health"}},
                          {"auth", false}});
  add_bind_note(line, config.metrics_host, "METRICS_HOST", "--metrics-host");
  log.always(srv::LogLevel::kInfo, "metrics listening", line);
  return true;
}

// The scaling role's object: a replica reads snapshots from Redis (created here); a publisher
// was made by prepare_publisher(). Either is set as the role /health and /metrics report.
std::unique_ptr<srv::RedisReplica> set_up_scaling_role(srv::ServerContext& context,
                                                       const srv::SigningKeys& keys,
                                                       srv::RedisPublisher* publisher) {
  std::unique_ptr<srv::RedisReplica> replica;
  if (context.config.role == srv::Role::kReplica) {
    replica = std::make_unique<srv::RedisReplica>(context.config, context.registry, keys.published,
                                                  context.log);
    context.set_scaling_role(replica.get());
  } else if (publisher != nullptr) {
    context.set_scaling_role(publisher);
  }
  return replica;
}

// What the signal thread and the service monitor report to systemd (service_notify.h).
struct ServiceReporting {
  explicit ServiceReporting(const srv::Log& server_log) : log(server_log), notifier(server_log) {}
  const srv::Log& log;
  srv::ServiceNotifier notifier;
  std::string address;  // host:port, once bound
  std::string source;   // the manifest, or Redis for a replica
  const srv::ServerContext* context = nullptr;
  std::string status_line() const {
    return context != nullptr
               ? srv::service_status(context->registry, address, source, context->scaling_role())
               : std::string();
  }
};

// SIGHUP: reload the manifest now (where inotify is unavailable, or to retry a failed load),
// between RELOADING=1 and READY=1. A replica has no manifest: it says so and goes on.
void reload_on_sighup(const srv::ServerConfig& config, cc::Registry& registry,
                      ServiceReporting& reporting) {
  const srv::Log& log = reporting.log;
  if (config.role == srv::Role::kReplica) {
    log.always(srv::LogLevel::kInfo,
               "reload requested (SIGHUP): ignored, a replica has no manifest (it follows "
               "Redis)");
    return;
  }
  log.always(srv::LogLevel::kInfo, "reload requested (SIGHUP)",
             fields({{"manifest", reporting.source}}));
  reporting.notifier.reloading();
  auto refreshed = registry.refresh();
  if (!refreshed) {
    log(srv::LogLevel::kWarning, "reload (SIGHUP) failed: the current snapshot stays",
        fields({{"error", refreshed.error().message}}));
  }
  if (registry.has_snapshot()) {
    reporting.notifier.ready(reporting.status_line());
  } else {
    reporting.notifier.status(reporting.status_line());
  }
}

// The thread that waits for signals: SIGHUP reloads; SIGTERM or SIGINT stops the listeners and
// the hub.
std::thread start_signal_thread(const sigset_t& signals, const srv::ServerConfig& config,
                                cc::Registry& registry, ServiceReporting& reporting,
                                srv::HardenedServer& server, MetricsListener& metrics,
                                srv::SseHub& hub) {
  return std::thread([&config, &registry, &reporting, &server, &metrics, &hub, signals] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
      reload_on_sighup(config, registry, reporting);
    }
    reporting.notifier.stopping();
    reporting.log.always(srv::LogLevel::kInfo, "shutting down", fields({{"signal", sig}}));
    server.shutdown();
    if (metrics.server) metrics.server->shutdown();
    hub.stop();
  });
}

// The watchdog's question: does the server answer its own GET /health within `timeout`? It goes
// through the listener, the connection loop and a worker, as a client's request does.
bool answers_health(const std::string& host, int port, std::chrono::milliseconds timeout) {
  // A wildcard address is reached on loopback.
  const std::string target = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host;
  httplib::Client client(target, port);
  const auto sec = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(timeout - sec);
  client.set_connection_timeout(sec.count(), usec.count());
  client.set_read_timeout(sec.count(), usec.count());
  client.set_write_timeout(sec.count(), usec.count());
  client.set_keep_alive(false);
  const auto res = client.Get("/health", {{"User-Agent", "cortex-connectors-watchdog"}});
  return res && res->status == 200;
}

// The server's life in four steps: configure (flags and environment), build (keys, Redis,
// history, tracing, the registry, routes and SSE hub), run (bind, start loading, serve until
// SIGTERM or SIGINT) and drain (stop every part, in order). Members are declared in the order
// they are made, so that they are destroyed in reverse.
class ServerApp {
 public:
  ServerApp() = default;
  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;
  // The registry goes first: its destructor waits for a load still running (a stop right after
  // start, before the first snapshot), whose listeners use the context, the hub and the
  // reporting below; they must outlive that wait.
  ~ServerApp() { registry_.reset(); }

  // Each step returns the process's exit code when it is done: --help, --version, a setting
  // that cannot be used, a port that cannot be bound, a signal while waiting for Redis.
  std::optional<int> configure(int argc, char** argv);
  std::optional<int> build();
  std::optional<int> run();
  // After run(): stops the monitor, the listeners, the hub, the watcher, the Redis roles, the
  // signal thread and the exporter, and logs the last line.
  void drain();

 private:
  // A failed load shows in `systemctl status` at once (a success does, through the listener).
  cc::RegistryOptions make_registry_options();
  // READY=1 once the first snapshot is served (GET /ready turns 200 at the same moment); every
  // later one updates the status line.
  void report_readiness();

  srv::Log log_;  // first: every part below logs to it
  srv::ServerConfig config_;
  sigset_t signals_{};
  std::optional<srv::SigningKeys> signing_keys_;
  std::unique_ptr<srv::RedisPublisher> publisher_;
  std::optional<cc::SignedSnapshot> stored_snapshot_;
  std::uint64_t first_version_ = 1;
  std::shared_ptr<cc::HistoryRecorder> history_;
  srv::Tracer tracer_;
  srv::PendingRefreshTrace pending_refresh_;
  std::unique_ptr<srv::OtlpExporter> exporter_;
  ServiceReporting reporting_{log_};
  std::unique_ptr<cc::Registry> registry_;
  std::unique_ptr<srv::ServerContext> context_;
  std::unique_ptr<srv::FastRoutes> fast_routes_;  // used by server_: goes after it
  std::unique_ptr<srv::HardenedServer> server_;
  std::shared_ptr<srv::BundleSlot> dashboard_;
  rlim_t nofile_ = 0;
  std::shared_ptr<srv::SseHub> hub_;
  std::unique_ptr<srv::RedisReplica> replica_;
  MetricsListener metrics_;
  int port_ = -1;
  srv::BundleCompression dashboard_compression_;
  std::thread signal_thread_;
  std::optional<srv::ServiceMonitor> monitor_;
};

std::optional<int> ServerApp::configure(int argc, char** argv) {
  if (auto done = ::configure(argc, argv, config_, log_)) return done;
  signals_ = block_signals();
  auto keys = srv::load_signing_keys(config_);
  if (!keys) {
    std::fprintf(stderr, "%s\n", keys.error().message.c_str());
    return kExitConfig;
  }
  signing_keys_ = std::move(*keys);
  return std::nullopt;
}

cc::RegistryOptions ServerApp::make_registry_options() {
  auto options = registry_options(config_, history_, first_version_, std::move(stored_snapshot_),
                                  signing_keys_->active);
  options.on_refresh = [this](const cc::RefreshReport& r) {
    on_refresh(r, tracer_, pending_refresh_, log_);
    if (r.result == cc::ReloadResult::kFailure) {
      reporting_.notifier.status(reporting_.status_line());
    }
  };
  return options;
}

std::optional<int> ServerApp::build() {
  const auto first_version = prepare_publisher(config_, signals_, signing_keys_->active, publisher_,
                                               stored_snapshot_, log_);
  if (!first_version) return 0;  // SIGTERM while waiting for Redis
  first_version_ = *first_version;
  // The history store and the dashboard bundle are read at once: each costs about 2 ms of a
  // start (SQLite's open; the files and libcrypto's first digest), and neither needs the other.
  // A replica has no manifest and no history of its own: it serves the publisher's versions.
  std::future<std::shared_ptr<cc::HistoryRecorder>> history;
  if (config_.role != srv::Role::kReplica) {
    history = std::async(std::launch::async, [this] { return open_history(config_, log_); });
  }
  dashboard_ = load_dashboard(config_, log_);
  if (history.valid()) history_ = history.get();
  exporter_ = start_exporter(config_, tracer_, log_);
  reporting_.source = config_.role == srv::Role::kReplica
                          ? std::string("the snapshot from Redis")
                          : config_.manifest_path.value_or(std::string(cc::kDefaultManifestPath));
  registry_ = std::make_unique<cc::Registry>(make_registry_options());
  context_ = std::make_unique<srv::ServerContext>(config_, *registry_, tracer_, log_);
  reporting_.context = context_.get();

  server_ = std::make_unique<srv::HardenedServer>(hardening_options(config_, *context_));
  srv::install_routes(*server_, *context_);
  srv::install_keys_route(*server_, signing_keys_->published);
  srv::install_dashboard_route(*server_, dashboard_);
  if (config_.fast_path) {
    fast_routes_ = std::make_unique<srv::FastRoutes>(*context_, dashboard_);
    srv::install_fast_routes(*server_, *fast_routes_);
  }
  nofile_ = raise_nofile_limit();
  hub_ = start_hub(config_, *registry_, history_, nofile_, tracer_, pending_refresh_);
  if (!hub_) {
    std::fprintf(stderr, "[brAInwav] cannot start the SSE hub: %s\n", std::strerror(errno));
    return kExitConfig;
  }
  srv::install_stream(*server_, *hub_, *context_);
  replica_ = set_up_scaling_role(*context_, *signing_keys_, publisher_.get());
  return std::nullopt;
}

void ServerApp::report_readiness() {
  reporting_.address = fmt::format("{}:{}", config_.host, port_);
  reporting_.notifier.status(reporting_.status_line());
  registry_->subscribe([this, first = std::make_shared<std::atomic<bool>>(true)](
                           const std::shared_ptr<const cc::Snapshot>&) {
    if (first->exchange(false)) {
      reporting_.notifier.ready(reporting_.status_line());
    } else {
      reporting_.notifier.status(reporting_.status_line());
    }
  });
}

std::optional<int> ServerApp::run() {
  if (!bind_metrics_listener(metrics_, *context_)) return kExitConfig;
  port_ = server_->bind(config_.host, config_.port, config_.listen_backlog);
  if (port_ < 0) {
    std::fprintf(stderr, "[brAInwav] cannot listen on %s:%d: %s\n", config_.host.c_str(),
                 config_.port, std::strerror(errno));
    return kExitConfig;
  }
  log_listening(config_, port_, *signing_keys_, hub_->max_subscribers(), nofile_, log_);
  if (config_.dev) print_dev_banner(config_, port_);
  report_readiness();
  start_loading(config_, *registry_, replica_.get(), publisher_.get(), log_);
  start_dashboard_compression(dashboard_compression_, std::move(dashboard_), log_);
  metrics_.start();
  signal_thread_ =
      start_signal_thread(signals_, config_, *registry_, reporting_, *server_, metrics_, *hub_);
  monitor_.emplace(
      srv::ServiceMonitor::Options{.notifier = &reporting_.notifier,
                                   .log = &log_,
                                   .watchdog = srv::ServiceNotifier::watchdog_interval(),
                                   .status_line = [this] { return reporting_.status_line(); },
                                   .alive =
                                       [this](std::chrono::milliseconds timeout) {
                                         return answers_health(config_.host, port_, timeout);
                                       }});
  if (std::getenv("NOTIFY_SOCKET") != nullptr) monitor_->start();

  server_->listen_after_bind();
  return std::nullopt;
}

void ServerApp::drain() {
  monitor_->stop();
  metrics_.stop();
  hub_->stop();
  registry_->stop_watching();
  context_->set_scaling_role(nullptr);
  if (replica_) replica_->stop();
  if (publisher_) publisher_->stop();  // releases the lease
  // Wake the signal thread if the server stopped for another reason.
  if (signal_thread_.joinable()) {
    pthread_kill(signal_thread_.native_handle(), SIGTERM);
    signal_thread_.join();
  }
  if (exporter_) exporter_->stop();  // queued spans get a bounded last attempt
  log_.always(srv::LogLevel::kInfo, "stopped",
              exporter_ ? fields({{"spans_exported", exporter_->exported()},
                                  {"spans_dropped", exporter_->dropped()}})
                        : cc::Json());
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
  ServerApp app;
  if (auto done = app.configure(argc, argv)) return *done;
  if (auto done = app.build()) return *done;
  if (auto done = app.run()) return *done;
  app.drain();
  return 0;
}
