// The server under systemd without systemd (docs/deploying.md): the sd_notify protocol read from
// a unix datagram socket the test binds and names in NOTIFY_SOCKET (READY=1 once the service map
// is served, STATUS= lines, RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1,
// WATCHDOG=1 pings), SIGHUP reloading a change no watcher reported, and $STATE_DIRECTORY. The
// real server process.
#include <algorithm>
#include <functional>
#include <regex>

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cortex_connectors/version.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
namespace fs = std::filesystem;
using cc::test::ServerProcess;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kKeys{"CONNECTORS_SIGNATURE_KEY=systemd-signing-key",
                                     "CONNECTORS_API_KEY=systemd-api-key"};

// The service manager's end of sd_notify(3): a bound unix datagram socket.
class NotifySocket {
 public:
  explicit NotifySocket(fs::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = path_.string();
    REQUIRE(p.size() < sizeof addr.sun_path);
    std::copy(p.begin(), p.end(), addr.sun_path);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // NOLINT
  }
  ~NotifySocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  std::string env() const { return "NOTIFY_SOCKET=" + path_.string(); }

  // Every line received so far ("READY=1", "STATUS=..."), in order.
  const std::vector<std::string>& lines() const { return lines_; }
  void clear() { lines_.clear(); }

  // Receives until `done(lines())` holds or `timeout` passes; returns its last value.
  bool wait_for(const std::function<bool(const std::vector<std::string>&)>& done,
                std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(lines_)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) continue;
      std::string_view datagram(buffer, static_cast<std::size_t>(n));
      while (!datagram.empty()) {
        const auto nl = datagram.find('\n');
        lines_.emplace_back(datagram.substr(0, nl));
        datagram = nl == std::string_view::npos ? std::string_view{} : datagram.substr(nl + 1);
      }
    }
    return true;
  }
  // Waits for a line equal to `line`.
  bool wait_for_line(const std::string& line, std::chrono::milliseconds timeout = 10s) {
    return wait_for([&](const auto& ls) { return count(ls, line) > 0; }, timeout);
  }
  static std::size_t count(const std::vector<std::string>& ls, const std::string& line) {
    return static_cast<std::size_t>(std::count(ls.begin(), ls.end(), line));
  }
  // The last STATUS= value received, or "".
  std::string last_status() const {
    for (auto it = lines_.rbegin(); it != lines_.rend(); ++it) {
      if (it->rfind("STATUS=", 0) == 0) return it->substr(7);
    }
    return {};
  }

 private:
  fs::path path_;
  int fd_ = -1;
  std::vector<std::string> lines_;
};

httplib::Result get_map(int port) {
  httplib::Client c("127.0.0.1", port);
  return c.Get("/v1/connectors/service-map", {{"Authorization", "Bearer systemd-api-key"}});
}

// RELOADING=1, and READY=1 after it.
bool reload_pair(const std::vector<std::string>& lines) {
  const auto reloading = std::find(lines.begin(), lines.end(), "RELOADING=1");
  return reloading != lines.end() && std::find(reloading, lines.end(), "READY=1") != lines.end();
}

std::vector<std::string> with(std::vector<std::string> env, const std::vector<std::string>& more) {
  env.insert(env.end(), more.begin(), more.end());
  return env;
}

// Rewrites `from` as `to` (the same length) in the file through a shared mapping: the page
// cache changes without a write(2), so inotify reports nothing (no IN_MODIFY; the descriptor,
// opened for writing, stays open: no IN_CLOSE_WRITE either until the returned closer runs).
std::shared_ptr<void> rewrite_unseen(const fs::path& path, const std::string& from,
                                     const std::string& to) {
  REQUIRE(from.size() == to.size());
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const auto size = static_cast<std::size_t>(fs::file_size(path));
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(map != MAP_FAILED);
  char* bytes = static_cast<char*>(map);
  const std::string_view text(bytes, size);
  const auto at = text.find(from);
  REQUIRE(at != std::string_view::npos);
  std::copy(to.begin(), to.end(), bytes + at);
  REQUIRE(::msync(map, size, MS_SYNC) == 0);
  return std::shared_ptr<void>(map, [fd, size](void* m) {
    ::munmap(m, size);
    ::close(fd);
  });
}

}  // namespace

TEST_CASE("systemd: READY=1 comes once the service map is served, with a STATUS line",
          "[systemd][server]") {
  if (!CORTEX_CONNECTORS_HAVE_SYSTEMD) {
    WARN("skipped: the server is built without libsystemd (no sd_notify)");
    return;
  }
  cc::test::TempDir dir;
  NotifySocket notify(dir / "notify");
  const fs::path manifest = dir / "m.json";
  ServerProcess p({"--port", "0", "--manifest", manifest.string()},
                  with(kKeys, {notify.env(), "CONNECTORS_POLL_INTERVAL_MS=50"}));
  REQUIRE(p.port() > 0);
  // No manifest yet: the status says why it is not ready, and nothing says READY=1.
  REQUIRE(notify.wait_for(
      [&](const auto&) { return notify.last_status().find("not ready") != std::string::npos; }));
  INFO(notify.last_status());
  CHECK(notify.last_status().rfind("cortex-connectors " + std::string(cc::version_string()) +
                                       ": not ready, on 127.0.0.1:" + std::to_string(p.port()),
                                   0) == 0);
  CHECK(NotifySocket::count(notify.lines(), "READY=1") == 0);
  CHECK(get_map(p.port())->status == 503);

  cc::test::replace_file(manifest, cc::test::original_fixture());
  REQUIRE(notify.wait_for_line("READY=1"));
  // READY=1 means what /ready means: the map is served from that moment.
  const auto map = get_map(p.port());
  REQUIRE(map);
  CHECK(map->status == 200);
  const std::regex serving(
      "cortex-connectors [^:]+: serving version [0-9]+ \\(3 connectors\\) on "
      "127\\.0\\.0\\.1:" +
      std::to_string(p.port()));
  CHECK(std::regex_match(notify.last_status(), serving));

  // A failed reload: degraded, and the previous version is still served.
  cc::test::replace_file(manifest, "{\"connectors\": []}");
  REQUIRE(notify.wait_for([&](const auto&) {
    return notify.last_status().find("degraded: the last load failed") != std::string::npos;
  }));
  CHECK(notify.last_status().find("serving version") != std::string::npos);
  CHECK(get_map(p.port())->status == 200);
  // No watchdog was asked for: no pings.
  CHECK(NotifySocket::count(notify.lines(), "WATCHDOG=1") == 0);

  CHECK(p.stop(SIGTERM, 5s) == 0);
  CHECK(notify.wait_for_line("STOPPING=1", 5s));
}

// Whether the process has `library` mapped (/proc/PID/maps).
bool maps_library(pid_t pid, std::string_view library) {
  return cc::test::read_file("/proc/" + std::to_string(pid) + "/maps").find(library) !=
         std::string::npos;
}

TEST_CASE("systemd: libsystemd is loaded only when systemd listens", "[systemd][server]") {
  if (!CORTEX_CONNECTORS_HAVE_SYSTEMD) {
    WARN("skipped: the server is built without libsystemd (no sd_notify)");
    return;
  }
  cc::test::TempDir dir;
  const fs::path manifest = dir / "m.json";
  cc::test::write_file(manifest, cc::test::original_fixture());
  {
    // Outside systemd the server does not pay for loading it (about 1 ms of every start).
    ServerProcess p({"--port", "0", "--manifest", manifest.string()}, kKeys);
    REQUIRE(p.port() > 0);
    REQUIRE(cc::test::eventually_true([&] {
      const auto r = get_map(p.port());
      return r && r->status == 200;
    }));
    CHECK_FALSE(maps_library(p.pid(), "libsystemd.so"));
    CHECK(p.stop(SIGTERM, 5s) == 0);
  }
  NotifySocket notify(dir / "notify");
  ServerProcess p({"--port", "0", "--manifest", manifest.string()}, with(kKeys, {notify.env()}));
  REQUIRE(p.port() > 0);
  REQUIRE(notify.wait_for_line("READY=1"));
  CHECK(maps_library(p.pid(), "libsystemd.so"));
  CHECK(p.stop(SIGTERM, 5s) == 0);
  CHECK(notify.wait_for_line("STOPPING=1", 5s));
}

TEST_CASE("systemd: SIGHUP reloads a change no watcher reported, between RELOADING=1 and READY=1",
          "[systemd][server]") {
  cc::test::TempDir dir;
  NotifySocket notify(dir / "notify");
  const fs::path manifest = dir / "m.json";
  cc::test::write_file(manifest, cc::test::original_fixture());
  // Polling once an hour: only inotify, which a change through a mapping does not wake, or a
  // SIGHUP could bring the change in.
  ServerProcess p({"--port", "0", "--manifest", manifest.string()},
                  with(kKeys, {notify.env(), "CONNECTORS_POLL_INTERVAL_MS=3600000"}));
  REQUIRE(p.port() > 0);
  REQUIRE(cc::test::eventually_true([&] {
    auto r = get_map(p.port());
    return r && r->status == 200;
  }));
  const std::string before = get_map(p.port())->body;
  REQUIRE(before.find(R"("version":"1.0.0")") != std::string::npos);
  const bool notifies = CORTEX_CONNECTORS_HAVE_SYSTEMD != 0;
  if (notifies) REQUIRE(notify.wait_for_line("READY=1"));
  notify.clear();

  const auto mapping = rewrite_unseen(manifest, R"("version": "1.0.0")", R"("version": "1.0.9")");
  REQUIRE(::kill(p.pid(), SIGHUP) == 0);
  REQUIRE(cc::test::eventually_true([&] {
    auto r = get_map(p.port());
    return r && r->body.find(R"("version":"1.0.9")") != std::string::npos;
  }));
  INFO(p.log());
  CHECK(p.log().find(R"x("msg":"reload requested (SIGHUP)")x") != std::string::npos);
  if (notifies) {
    REQUIRE(notify.wait_for(reload_pair));
    CHECK(std::any_of(notify.lines().begin(), notify.lines().end(),
                      [](const std::string& l) { return l.rfind("MONOTONIC_USEC=", 0) == 0; }));
  }

  // Unchanged: a SIGHUP still answers with the pair, and the version stays.
  notify.clear();
  const std::string after = get_map(p.port())->body;
  REQUIRE(::kill(p.pid(), SIGHUP) == 0);
  if (notifies) {
    REQUIRE(notify.wait_for(reload_pair));
  } else {
    REQUIRE(cc::test::eventually_true([&] {
      const std::string log = p.log();
      const std::string line = R"x("msg":"reload requested (SIGHUP)")x";
      return log.find(line) != log.rfind(line);
    }));
  }
  CHECK(get_map(p.port())->body == after);
  CHECK(p.stop(SIGTERM, 5s) == 0);
}

TEST_CASE("systemd: WATCHDOG=1 comes every half WATCHDOG_USEC while the server answers",
          "[systemd][server]") {
  if (!CORTEX_CONNECTORS_HAVE_SYSTEMD) {
    WARN("skipped: the server is built without libsystemd (no sd_notify)");
    return;
  }
  cc::test::TempDir dir;
  NotifySocket notify(dir / "notify");
  cc::test::write_file(dir / "m.json", cc::test::original_fixture());
  // WATCHDOG_PID is left unset: sd_watchdog_enabled() then takes WATCHDOG_USEC as this
  // process's. Pings every 1 s: four within 5 s; pings at the full interval would need 6 s.
  ServerProcess p({"--port", "0", "--manifest", (dir / "m.json").string()},
                  with(kKeys, {notify.env(), "WATCHDOG_USEC=2000000"}));
  REQUIRE(p.port() > 0);
  CHECK(notify.wait_for([](const auto& ls) { return NotifySocket::count(ls, "WATCHDOG=1") >= 4; },
                        5s));
  // Each ping follows an answered GET /health of its own (its access line).
  CHECK(p.log().find(R"("route":"health")") != std::string::npos);
  CHECK(p.stop(SIGTERM, 5s) == 0);
}

TEST_CASE("systemd: the history goes to $STATE_DIRECTORY when no state directory is set",
          "[systemd][server]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", cc::test::original_fixture());
  const fs::path state = dir / "state-directory";
  fs::create_directory(state);
  // An empty CONNECTORS_STATE_DIR counts as unset (and keeps ServerProcess from setting one).
  ServerProcess p({"--port", "0", "--manifest", (dir / "m.json").string()},
                  with(kKeys, {"CONNECTORS_STATE_DIR=", "STATE_DIRECTORY=" + state.string(),
                               "XDG_STATE_HOME=" + (dir / "xdg").string()}));
  REQUIRE(p.port() > 0);
  REQUIRE(cc::test::eventually_true([&] {
    auto r = get_map(p.port());
    return r && r->status == 200;
  }));
  INFO(p.log());
  CHECK(fs::exists(state / "history.sqlite3"));
  CHECK_FALSE(fs::exists(dir / "xdg"));
  CHECK(p.log().find(R"("path":")" + (state / "history.sqlite3").string() + "\"") !=
        std::string::npos);
  CHECK(p.stop(SIGTERM, 5s) == 0);
}
