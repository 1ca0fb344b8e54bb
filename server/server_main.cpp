// cortex-connectors-server: serves the signed service map of a connectors manifest over HTTP.
// See server_usage() in config.cpp and docs/server.md.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "cortex_connectors/http.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/sqlite_history.h"
#include "cortex_connectors/version.h"
#include "http_server.h"
#include "log.h"
#include "redis_scaling.h"
#include "routes.h"
#include "sse_hub.h"
#include "static_files.h"
#include "tracing.h"

namespace cc = cortex_connectors;
namespace srv = cortex_connectors::server;

namespace {

constexpr int kExitConfig = 2;

// The example manifest --dev serves when no manifest is configured: the source tree's copy in a
// build tree, the installed copy otherwise.
std::string bundled_example_manifest() {
  const std::filesystem::path source = CORTEX_CONNECTORS_SOURCE_EXAMPLE_MANIFEST;
  if (std::filesystem::exists(source)) return source.string();
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path().parent_path() / "share/cortex_connectors/connectors.manifest.json")
      .string();
}

cc::Json fields(std::initializer_list<cc::Json::Member> members) {
  return cc::Json(cc::Json::Object(members));
}

// The history: the SQLite store in the state directory, or memory when history is off or the
// store cannot be used (a clear log line and the /health flag; never a refused start). The
// store belongs to this server's manifest and this process (SqliteHistoryStore::open): one
// that belongs to another manifest, or that another process holds, is used by neither.
std::shared_ptr<cc::HistoryRecorder> open_history(const srv::ServerConfig& config) {
  cc::HistoryRecorderOptions options;
  options.retention.max_entries = config.history_max_entries;
  options.retention.max_age = config.history_max_age;
  options.on_degraded = [](const cc::Error& e) {
    srv::log(srv::LogLevel::kError, "history store failed: history continues in memory",
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
    srv::log(srv::LogLevel::kInfo, "history off: kept in memory only");
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
    srv::log(srv::LogLevel::kError,
             "history store unavailable: history is kept in memory only (see /health)",
             fields({{"path", db_path}, {"error", reason}}));
    options.degraded_reason = reason;
    memory_retention();
    store = std::make_shared<cc::MemoryHistoryStore>(kMemoryBytes);
  }
  auto recorder = std::make_shared<cc::HistoryRecorder>(std::move(store), std::move(options));
  const auto st = recorder->status();
  srv::log(srv::LogLevel::kInfo, "history",
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

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
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
  srv::ServerConfig config = std::move(*parsed);
  if (!srv::set_log_level(config.log_level)) {
    std::fprintf(stderr, "[brAInwav] LOG_LEVEL must be debug, info, warning or error\n");
    return kExitConfig;
  }
  if (config.dev && !config.manifest_path) config.manifest_path = bundled_example_manifest();

  // Signals go to one thread that sigwait()s; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto signing_keys = srv::load_signing_keys(config);
  if (!signing_keys) {
    std::fprintf(stderr, "%s\n", signing_keys.error().message.c_str());
    return kExitConfig;
  }

  // Publisher: Redis first, so that versions start above the stored one (docs/scaling.md).
  std::unique_ptr<srv::RedisPublisher> publisher;
  std::uint64_t first_version = 1;
  std::optional<cc::SignedSnapshot> stored_snapshot;
  if (config.role == srv::Role::kPublisher) {
    publisher = std::make_unique<srv::RedisPublisher>(config, signing_keys->active);
    auto stored = publisher->prepare([&signals] {
      sigset_t pending;
      sigemptyset(&pending);
      return sigpending(&pending) == 0 &&
             (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
    });
    if (!stored) return 0;  // SIGTERM while waiting for Redis
    first_version = stored->version + 1;
    if (stored->version != 0) stored_snapshot = std::move(*stored);
  }

  // A replica has no manifest and no history of its own: it serves the publisher's versions.
  const bool replica = config.role == srv::Role::kReplica;
  auto history = replica ? nullptr : open_history(config);
  // Spans go out only with an endpoint; the exporter outlives the registry and the hub, which
  // record into it from their threads.
  std::unique_ptr<srv::OtlpExporter> exporter;
  if (config.otel_endpoint) {
    srv::OtlpExporterOptions otlp;
    otlp.endpoint = *config.otel_endpoint;
    otlp.service_name = config.otel_service_name;
    otlp.max_queue = config.otel_max_queue;
    otlp.max_batch = config.otel_max_batch;
    otlp.schedule_delay = config.otel_schedule_delay;
    otlp.timeout = config.otel_timeout;
    // As the OpenTelemetry SDKs do, an unknown sampler or a bad argument is a warning, and the
    // default (parentbased_always_on) applies.
    auto sampler = srv::parse_sampler(config.otel_sampler, config.otel_sampler_arg);
    if (!sampler) {
      srv::log_always(
          srv::LogLevel::kWarning,
          "OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG not understood; using "
          "parentbased_always_on",
          fields({{"sampler", config.otel_sampler}, {"sampler_arg", config.otel_sampler_arg}}));
      sampler = srv::Sampler{};
    }
    srv::set_sampler(*sampler);
    exporter = std::make_unique<srv::OtlpExporter>(std::move(otlp));
    exporter->start();
    srv::set_span_exporter(exporter.get());
  }

  cc::RegistryOptions options;
  options.history = history;
  options.first_version = first_version;
  options.resume_from = std::move(stored_snapshot);
  options.manifest_path = config.manifest_path;
  options.signing_key = config.signing_key;
  options.ed25519_keys = signing_keys->active;
  // Routes serve the pre-built bytes only; on_refresh gets the manifest for its spans.
  options.keep_manifest = false;
  options.on_refresh = [](const cc::RefreshReport& r) {
    if (r.result == cc::ReloadResult::kUnchanged) return;
    // Each load that changed something is a trace: its root span, one span per stage and, on
    // success, the publication (see on_publish below).
    auto trace = std::make_shared<srv::RefreshTrace>(r);
    const srv::ScopedLogIds ids({{}, trace->trace_id, trace->root_span_id});
    auto ms = [](std::chrono::nanoseconds ns) {
      return std::chrono::duration<double, std::milli>(ns).count();
    };
    if (r.result == cc::ReloadResult::kSuccess) {
      srv::log(srv::LogLevel::kInfo, "manifest loaded",
               fields({{"path", r.path},
                       {"version", r.version},
                       {"read_ms", ms(r.timings.read)},
                       {"parse_ms", ms(r.timings.parse)},
                       {"validate_ms", ms(r.timings.validate)},
                       {"build_ms", ms(r.timings.build)},
                       {"sign_ms", ms(r.timings.sign)},
                       {"compress_ms", ms(r.timings.compress)}}));
      srv::RefreshTrace::set_pending(std::move(trace));  // finished by on_publish
    } else if (r.result == cc::ReloadResult::kFailure && r.error != nullptr) {
      cc::Json::Array issues;
      for (const auto& i : r.error->issues) issues.emplace_back(i.pointer + ": " + i.message);
      srv::log(srv::LogLevel::kError, r.error->message,
               fields({{"path", r.path}, {"version", r.version}, {"issues", issues}}));
      trace->finish(std::chrono::system_clock::now());
    }
  };
  cc::Registry registry(options);

  srv::HardeningOptions hardening;
  hardening.request_deadline = config.request_deadline;
  hardening.keep_alive_timeout = config.keep_alive_timeout;
  hardening.keep_alive_max_requests = config.keep_alive_max_requests;
  hardening.header_budget_bytes = config.header_budget_bytes;
  hardening.max_header_count = config.max_header_count;
  hardening.worker_threads = config.worker_threads;
  hardening.on_refused = [&registry](int status) { srv::log_refused_request(registry, status); };
  srv::HardenedServer server(hardening);
  srv::install_routes(server, registry, config);
  srv::install_keys_route(server, signing_keys->published);

  // The dashboard: loaded (and compressed) once here; a missing bundle is served as 503.
  const std::filesystem::path apps_dir =
      config.apps_dir ? std::filesystem::path(*config.apps_dir) : srv::default_apps_dir();
  std::string apps_problem;
  std::vector<std::string> apps_skipped;
  auto bundle = srv::StaticBundle::load(apps_dir, apps_problem, &apps_skipped);
  if (bundle) {
    srv::log(srv::LogLevel::kInfo, "dashboard bundle loaded",
             fields({{"dir", apps_dir.string()},
                     {"files", bundle->file_count()},
                     {"bytes", bundle->total_bytes()}}));
  } else {
    srv::log(srv::LogLevel::kWarning, "dashboard unavailable (503)",
             fields({{"dir", apps_dir.string()}, {"reason", apps_problem}}));
  }
  for (const auto& name : apps_skipped) {
    srv::log(srv::LogLevel::kWarning, "dashboard file skipped: symlink leaves the bundle",
             fields({{"file", name}}));
  }
  srv::install_dashboard_route(server, std::move(bundle));

  // Every SSE subscriber holds a descriptor: raise the soft limit to the hard one.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  srv::SseHubOptions hub_options;
  hub_options.heartbeat = std::chrono::seconds(config.heartbeat_seconds);
  hub_options.history = history;
  // Leave room for workers, the manifest and the listening socket.
  const auto fd_room = nofile.rlim_cur > 256 ? nofile.rlim_cur - 256 : 1;
  hub_options.max_subscribers =
      std::min<std::size_t>(config.max_subscribers, static_cast<std::size_t>(fd_room));
  // Shared with the registry's listener: the first load runs on its own thread and may still
  // be publishing when a SIGTERM makes main() return; the hub then lives until the registry
  // (which joins that thread) has gone. A stopped hub ignores what it is given.
  auto hub_owner = std::make_shared<srv::SseHub>(hub_options, registry.metrics());
  srv::SseHub& hub = *hub_owner;
  if (!hub.start()) {
    std::fprintf(stderr, "[brAInwav] cannot start the SSE hub: %s\n", std::strerror(errno));
    return kExitConfig;
  }
  registry.subscribe([hub_owner](const std::shared_ptr<const cc::Snapshot>& s) {
    // Runs right after on_refresh on the same thread: the publication joins that load's trace.
    auto trace = srv::RefreshTrace::take_pending();
    if (!trace || !trace->sampled) {
      hub_owner->publish(s, {}, {}, trace != nullptr);
      if (trace) trace->finish(std::chrono::system_clock::now());
      return;
    }
    const auto start = std::chrono::system_clock::now();
    const std::string publish_span = cc::generate_span_id();
    hub_owner->publish(s, trace->trace_id, publish_span);
    trace->publish_span(publish_span, start, std::chrono::system_clock::now());
  });
  srv::install_stream(server, hub, registry, config);

  std::unique_ptr<srv::RedisReplica> replica_role;
  if (replica) {
    replica_role = std::make_unique<srv::RedisReplica>(config, registry, signing_keys->published);
    srv::set_scaling_role(replica_role.get());
  } else if (publisher) {
    srv::set_scaling_role(publisher.get());
  }

  const int port = server.bind(config.host, config.port, config.listen_backlog);
  if (port < 0) {
    std::fprintf(stderr, "[brAInwav] cannot listen on %s:%d: %s\n", config.host.c_str(),
                 config.port, std::strerror(errno));
    return kExitConfig;
  }
  srv::log_always(
      srv::LogLevel::kInfo, "listening",
      fields({{"host", config.host},
              {"port", port},
              {"version", std::string(cc::version_string())},
              {"role", config.role == srv::Role::kSingle      ? "single"
                       : config.role == srv::Role::kPublisher ? "publisher"
                                                              : "replica"},
              {"manifest",
               replica ? std::string("(redis)")
                       : config.manifest_path.value_or(std::string(cc::kDefaultManifestPath))},
              {"max_subscribers", hub.max_subscribers()},
              {"ed25519_kid",
               signing_keys->active.empty() ? std::string() : signing_keys->active.front().kid()},
              // What a replica checks every snapshot from Redis with.
              {"verifies_with",
               !replica ? std::string()
               : config.signing_key.empty()
                   ? fmt::format("{} Ed25519 key(s), no HMAC key", signing_keys->published.size())
               : signing_keys->published.empty()
                   ? std::string("HMAC key")
                   : fmt::format("HMAC key and {} Ed25519 key(s)", signing_keys->published.size())},
              {"nofile_limit", static_cast<std::uint64_t>(nofile.rlim_cur)}}));
  if (config.no_auth) {
    srv::log(srv::LogLevel::kWarning,
             "NO_AUTH=true: authentication is DISABLED, every client can read the service map");
  }
  if (config.dev_generated_keys) {
    // Printed once, on standard output, never logged.
    std::printf(
        "\ncortex-connectors-server --dev on http://%s:%d\n"
        "  signing key (CONNECTORS_SIGNATURE_KEY): %s\n"
        "  API key     (CONNECTORS_API_KEY):       %s\n"
        "  try: curl -H 'Authorization: Bearer %s' http://%s:%d/v1/connectors/service-map\n\n",
        config.host.c_str(), port, config.signing_key.c_str(),
        config.api_keys.empty() ? "(none: NO_AUTH)" : config.api_keys.front().c_str(),
        config.api_keys.empty() ? "" : config.api_keys.front().c_str(), config.host.c_str(), port);
    std::fflush(stdout);
  }

  if (replica_role) {
    replica_role->start();
  } else {
    if (publisher) publisher->start(registry);
    registry.refresh_async();
    if (auto watching = registry.start_watching(config.poll_interval); !watching) {
      srv::log(srv::LogLevel::kWarning, "manifest watcher unavailable",
               fields({{"error", watching.error().message}}));
    }
  }

  std::thread signal_thread([&server, &hub, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    srv::log_always(srv::LogLevel::kInfo, "shutting down", fields({{"signal", sig}}));
    server.shutdown();
    hub.stop();
  });

  server.listen_after_bind();
  hub.stop();
  registry.stop_watching();
  srv::set_scaling_role(nullptr);
  if (replica_role) replica_role->stop();
  if (publisher) publisher->stop();  // releases the lease
  // Wake the signal thread if the server stopped for another reason.
  if (signal_thread.joinable()) {
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
  }
  if (exporter) exporter->stop();  // queued spans get a bounded last attempt
  srv::log_always(srv::LogLevel::kInfo, "stopped",
                  exporter ? fields({{"spans_exported", exporter->exported()},
                                     {"spans_dropped", exporter->dropped()}})
                           : cc::Json());
  return 0;
}
