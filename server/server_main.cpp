// cortex-connectors-server: serves the signed service map of a connectors manifest over HTTP.
// See server_usage() in config.cpp and docs/server.md.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/version.h"
#include "http_server.h"
#include "log.h"
#include "routes.h"
#include "sse_hub.h"
#include "static_files.h"

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

}  // namespace

int main(int argc, char** argv) {
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

  cc::RegistryOptions options;
  options.manifest_path = config.manifest_path;
  options.signing_key = config.signing_key;
  options.ed25519_keys = signing_keys->active;
  options.on_refresh = [](const cc::RefreshReport& r) {
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
    } else if (r.result == cc::ReloadResult::kFailure && r.error != nullptr) {
      cc::Json::Array issues;
      for (const auto& i : r.error->issues) issues.emplace_back(i.pointer + ": " + i.message);
      srv::log(srv::LogLevel::kError, r.error->message,
               fields({{"path", r.path}, {"version", r.version}, {"issues", issues}}));
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
  registry.subscribe(
      [hub_owner](const std::shared_ptr<const cc::Snapshot>& s) { hub_owner->publish(s); });
  srv::install_stream(server, hub, registry, config);

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
              {"manifest", config.manifest_path.value_or(std::string(cc::kDefaultManifestPath))},
              {"max_subscribers", hub.max_subscribers()},
              {"ed25519_kid",
               signing_keys->active.empty() ? std::string() : signing_keys->active.front().kid()},
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

  registry.refresh_async();
  if (auto watching = registry.start_watching(config.poll_interval); !watching) {
    srv::log(srv::LogLevel::kWarning, "manifest watcher unavailable",
             fields({{"error", watching.error().message}}));
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
  // Wake the signal thread if the server stopped for another reason.
  if (signal_thread.joinable()) {
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
  }
  srv::log_always(srv::LogLevel::kInfo, "stopped");
  return 0;
}
