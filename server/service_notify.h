// The systemd service protocol (sd_notify(3)) as the server speaks it under a Type=notify unit
// (packaging/cortex-connectors.service.in, docs/deploying.md):
//   READY=1      once the first snapshot is published (what GET /ready means), and again after a
//                reload; STATUS= with it
//   STATUS=...   one line a person reads in `systemctl status`: the version, what is served,
//                whether the server is degraded and why
//   RELOADING=1  when a SIGHUP asks for a reload (then READY=1 when it is done)
//   STOPPING=1   on SIGTERM / SIGINT
//   WATCHDOG=1   while the watchdog is on (WatchdogSec=, WATCHDOG_USEC), every half interval,
//                only after the server has answered its own GET /health
// Built without libsystemd (CORTEX_CONNECTORS_HAVE_SYSTEMD unset), or run outside systemd (no
// NOTIFY_SOCKET), every call does nothing. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "cortex_connectors/registry.h"
#include "log.h"

namespace cortex_connectors::server {

class ScalingRole;  // redis_scaling.h

class ServiceNotifier {
 public:
  // Logs to `log` (once, when libsystemd cannot be loaded), which must outlive it.
  explicit ServiceNotifier(const Log& log) : log_(log) {}

  // Whether the sd_notify calls are compiled in (libsystemd was found at build time).
  static bool compiled_in() noexcept;

  // READY=1 with STATUS=`status`.
  void ready(std::string_view status);
  // STATUS=`status`, unless it is the one sent last.
  void status(std::string_view status);
  // RELOADING=1 (with MONOTONIC_USEC, as systemd 253 and later expect).
  void reloading();
  // STOPPING=1; from then on stopping_sent() is true.
  void stopping();
  bool stopping_sent() const noexcept { return stopping_.load(); }
  // WATCHDOG=1.
  void watchdog();
  // The watchdog interval systemd expects pings within (WATCHDOG_USEC, for this process when
  // WATCHDOG_PID is set); nullopt when the watchdog is off or not compiled in.
  static std::optional<std::chrono::microseconds> watchdog_interval();

 private:
  void send(const std::string& state);
  const Log& log_;
  std::atomic<bool> load_failure_logged_{false};
  std::mutex mutex_;
  std::string last_status_;
  std::atomic<bool> stopping_{false};
};

// One line on what the server does, for STATUS=: "cortex-connectors 1.2.3: serving version 7
// (12 connectors) on 127.0.0.1:3026", "...: starting, loading /etc/.../connectors.manifest.json",
// with "; degraded: ..." when the last load failed, the history is in memory only or the
// scaling role `role` (null for a single server) cannot do its job. Never a secret.
std::string service_status(const Registry& registry, std::string_view address,
                           std::string_view source, const ScalingRole* role);

// The thread that keeps `systemctl status` current and, when the watchdog is on, pings it:
// every `period` (half the watchdog interval, else 5 s) it sends `status_line()` if it changed,
// and WATCHDOG=1 when `alive(timeout)` says the server answered within `timeout`. A server whose
// workers are stuck stops being pinged, and systemd restarts it. It ends once the notifier has
// said STOPPING=1 (a server shutting down no longer answers, and need not).
class ServiceMonitor {
 public:
  struct Options {
    ServiceNotifier* notifier = nullptr;
    const Log* log = nullptr;                           // where the watchdog's lines go
    std::optional<std::chrono::microseconds> watchdog;  // nullopt: status lines only
    std::function<std::string()> status_line;
    std::function<bool(std::chrono::milliseconds timeout)> alive;
  };
  explicit ServiceMonitor(Options options);
  ~ServiceMonitor();  // stop()
  ServiceMonitor(const ServiceMonitor&) = delete;
  ServiceMonitor& operator=(const ServiceMonitor&) = delete;

  void start();
  // Returns promptly: a probe in flight is bounded by its timeout.
  void stop();

 private:
  void run();
  Options options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cortex_connectors::server
