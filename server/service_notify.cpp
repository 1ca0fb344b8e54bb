#include "service_notify.h"

#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

#include "cortex_connectors/version.h"
#include "log.h"
#include "redis_scaling.h"

#if CORTEX_CONNECTORS_HAVE_SYSTEMD
#include <dlfcn.h>
#include <systemd/sd-daemon.h>
#endif

namespace cortex_connectors::server {

namespace {

// A STATUS= value is one line: a newline would start another assignment.
std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

#if CORTEX_CONNECTORS_HAVE_SYSTEMD
// libsystemd, loaded the first time the environment says systemd listens (NOTIFY_SOCKET,
// WATCHDOG_USEC) rather than linked: linked, it and the six libraries it needs cost every start
// about 1 ms of loading and relocation (bench/load/RESULTS.md), under systemd or not. Both
// functions do nothing without their variable, so nothing changes by not loading it then.
struct Systemd {
  decltype(&::sd_notify) notify = nullptr;
  decltype(&::sd_watchdog_enabled) watchdog_enabled = nullptr;
  std::string error;  // dlerror() when it could not be loaded
};

const Systemd& systemd() {
  static const Systemd loaded = [] {
    Systemd s;
    // Never closed: the process keeps it to the end, as it would a linked library.
    void* lib = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      s.error = ::dlerror();
      return s;
    }
    s.notify = reinterpret_cast<decltype(&::sd_notify)>(::dlsym(lib, "sd_notify"));
    s.watchdog_enabled =
        reinterpret_cast<decltype(&::sd_watchdog_enabled)>(::dlsym(lib, "sd_watchdog_enabled"));
    return s;
  }();
  return loaded;
}
#endif

}  // namespace

bool ServiceNotifier::compiled_in() noexcept { return CORTEX_CONNECTORS_HAVE_SYSTEMD != 0; }

void ServiceNotifier::send([[maybe_unused]] const std::string& state) {
#if CORTEX_CONNECTORS_HAVE_SYSTEMD
  // Without NOTIFY_SOCKET sd_notify() is a no-op: libsystemd is not even loaded.
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  const Systemd& lib = systemd();
  if (lib.notify != nullptr) {
    // 0: NOTIFY_SOCKET stays set; the calls that follow need it.
    (void)lib.notify(0, state.c_str());
  } else if (!load_failure_logged_.exchange(true)) {
    log_(LogLevel::kWarning, "libsystemd.so.0 cannot be loaded: no sd_notify",
         Json(Json::Object{{"error", lib.error}}));
  }
#endif
}

void ServiceNotifier::ready(std::string_view status) {
  const std::string line = one_line(status);
  {
    const std::lock_guard lock(mutex_);
    last_status_ = line;
  }
  send("READY=1\nSTATUS=" + line);
}

void ServiceNotifier::status(std::string_view status) {
  const std::string line = one_line(status);
  {
    const std::lock_guard lock(mutex_);
    if (line == last_status_) return;
    last_status_ = line;
  }
  send("STATUS=" + line);
}

void ServiceNotifier::reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                    static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
  send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", usec));
}

void ServiceNotifier::stopping() {
  stopping_ = true;
  send("STOPPING=1");
}

void ServiceNotifier::watchdog() { send("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> ServiceNotifier::watchdog_interval() {
#if CORTEX_CONNECTORS_HAVE_SYSTEMD
  // Without WATCHDOG_USEC sd_watchdog_enabled() says no: libsystemd is not even loaded.
  if (std::getenv("WATCHDOG_USEC") == nullptr) return std::nullopt;
  const auto watchdog_enabled = systemd().watchdog_enabled;
  std::uint64_t usec = 0;
  if (watchdog_enabled != nullptr && watchdog_enabled(0, &usec) > 0 && usec > 0) {
    return std::chrono::microseconds(static_cast<std::int64_t>(usec));
  }
#endif
  return std::nullopt;
}

std::string service_status(const Registry& registry, std::string_view address,
                           std::string_view source, const ScalingRole* role) {
  std::string out = fmt::format("cortex-connectors {}: ", version_string());
  const auto snapshot = registry.current();
  const auto failure = registry.last_failure();
  if (snapshot) {
    out += fmt::format("serving version {} ({} connector{}) on {}", snapshot->version,
                       snapshot->connector_count(), snapshot->connector_count() == 1 ? "" : "s",
                       address);
  } else if (failure) {
    out += fmt::format("not ready, on {}: {} (/health has the details)", address,
                       failure->error.message);
  } else {
    out += fmt::format("starting on {}, loading {}", address, source);
  }
  std::string degraded;
  auto add = [&degraded](std::string_view why) {
    degraded += degraded.empty() ? "; degraded: " : "; ";
    degraded += why;
  };
  if (snapshot && failure) {
    add(fmt::format("the last load failed ({}), the previous version is served",
                    failure->error.message));
  }
  if (const HistoryRecorder* history = registry.history()) {
    if (const auto hs = history->status(); hs.degraded) add("history kept in memory only");
  }
  if (role != nullptr && role->degraded()) {
    add("the Redis role cannot do its job (see /health)");
  }
  return one_line(out + degraded);
}

ServiceMonitor::ServiceMonitor(Options options) : options_(std::move(options)) {}

ServiceMonitor::~ServiceMonitor() { stop(); }

void ServiceMonitor::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void ServiceMonitor::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ServiceMonitor::run() {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  // Pings at half the interval, each after a probe of at most 40 % of it: two pings are never
  // further apart than 90 % of the interval while the server answers.
  const milliseconds period =
      options_.watchdog
          ? std::max(milliseconds(1), duration_cast<milliseconds>(*options_.watchdog / 2))
          : milliseconds(5000);
  const milliseconds probe_timeout =
      options_.watchdog
          ? std::max(milliseconds(1), duration_cast<milliseconds>(*options_.watchdog * 2 / 5))
          : milliseconds(0);
  bool failing = false;
  for (;;) {
    const auto next = std::chrono::steady_clock::now() + period;
    if (options_.notifier->stopping_sent()) return;
    if (options_.status_line) options_.notifier->status(options_.status_line());
    if (options_.watchdog) {
      const bool alive = !options_.alive || options_.alive(probe_timeout);
      if (options_.notifier->stopping_sent()) return;
      if (alive) {
        options_.notifier->watchdog();
        if (failing) (*options_.log)(LogLevel::kInfo, "watchdog: the server answers again");
      } else if (!failing) {
        // Once per episode: systemd restarts the server if this lasts WatchdogSec.
        options_.log->always(LogLevel::kWarning,
                             "watchdog: the server did not answer its own GET /health in time; "
                             "not pinging systemd",
                             Json(Json::Object{{"timeout_ms", probe_timeout.count()}}));
      }
      failing = !alive;
    }
    std::unique_lock lock(mutex_);
    if (wake_.wait_until(lock, next, [this] { return stopping_; })) return;
  }
}

}  // namespace cortex_connectors::server
