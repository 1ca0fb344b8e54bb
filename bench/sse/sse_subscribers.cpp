// sse_subscribers: C subscribers of GET /v1/connectors/stream from one process and one epoll
// loop, for the SSE speed figures of bench/sse/RESULTS.md (bench/sse/run.sh drives it).
//
// Phases, in order:
//   1. connect: opens C connections from 127.0.0.1 (or 127.0.0.1..127.0.0.N with --sources N),
//      at most --window of them not yet streaming, sends the request, and waits until every one
//      has its first `status` event (or --connect-timeout passes). Refusals (503) are counted.
//   2. publish (only with --manifest and --publish): for each size, writes a manifest with that
//      many connectors and renames it over --manifest (one warm-up publish, not counted), then
//      --publish's COUNT publishes that change one description (same size). For each it notes
//      the monotonic time just before rename(), then the time each subscriber's epoll loop read
//      the end ("\n\n") of an event with a newer id. With --metrics it also reads /metrics
//      around each publish: the reload time (stage-duration _sum deltas) and, from the
//      cortex_connectors_sse_broadcast_duration_seconds bucket deltas, an upper bound of
//      publication -> last completed write. With --server-pid, the server's CPU time per publish.
//   3. hold: writes --ready-file, then keeps every stream open (heartbeats are read) until
//      SIGTERM/SIGINT or --hold-seconds.
// Every stream is parsed incrementally: the HTTP head, then lines; a frame ends at an empty line;
// a frame with `id:` and `data:` is an event. Nothing of a 200 KB data line is kept.
//
// Build: g++ -O2 -std=c++20 bench/sse/sse_subscribers.cpp -o build-sse/sse_subscribers -lpthread
// Output: a summary on stderr and, with --json FILE, every figure as JSON.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

double ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "sse_subscribers: %s\n", msg.c_str());
  std::exit(2);
}

// ---------------------------------------------------------------------------------------------
// Options

struct SizeSpec {
  std::string name;
  int connectors = 1;
  int count = 1;
};

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string key;
  int connections = 1000;
  int sources = 1;  // source addresses 127.0.0.1 .. 127.0.0.<sources>
  int window = 512;
  double connect_timeout_s = 90;
  int server_pid = 0;
  std::string manifest;
  std::vector<SizeSpec> sizes;
  double settle_ms = 250;
  double publish_timeout_s = 30;
  bool metrics = false;
  bool delta = false;  // ?mode=delta: changes arrive as `delta` events
  std::string ready_file;
  double hold_s = 0;  // 0: exit after the publishes; <0: until a signal
  std::string json;
  std::string label;
};

void usage() {
  std::fprintf(
      stderr,
      "usage: sse_subscribers --print-manifest CONNECTORS\n"
      "       sse_subscribers --port P --key KEY [-c C] [--sources N] [--window W]\n"
      "       [--server-pid PID] [--manifest PATH --publish NAME:CONNECTORS:COUNT,...]\n"
      "         [--metrics] [--delta] [--settle-ms MS] [--ready-file F] [--hold-seconds S|-1]\n"
      "         [--json FILE] [--label TEXT] [--host 127.0.0.1]\n");
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--host")
      o.host = next();
    else if (a == "--port")
      o.port = std::atoi(next().c_str());
    else if (a == "--key")
      o.key = next();
    else if (a == "-c" || a == "--connections")
      o.connections = std::atoi(next().c_str());
    else if (a == "--sources")
      o.sources = std::atoi(next().c_str());
    else if (a == "--window")
      o.window = std::atoi(next().c_str());
    else if (a == "--connect-timeout")
      o.connect_timeout_s = std::atof(next().c_str());
    else if (a == "--server-pid")
      o.server_pid = std::atoi(next().c_str());
    else if (a == "--manifest")
      o.manifest = next();
    else if (a == "--publish") {
      std::stringstream ss(next());
      std::string item;
      while (std::getline(ss, item, ',')) {
        SizeSpec s;
        const auto c1 = item.find(':');
        const auto c2 = item.find(':', c1 == std::string::npos ? 0 : c1 + 1);
        if (c1 == std::string::npos || c2 == std::string::npos) usage();
        s.name = item.substr(0, c1);
        s.connectors = std::atoi(item.substr(c1 + 1, c2 - c1 - 1).c_str());
        s.count = std::atoi(item.substr(c2 + 1).c_str());
        if (s.connectors < 1 || s.count < 1) usage();
        o.sizes.push_back(s);
      }
    } else if (a == "--metrics")
      o.metrics = true;
    else if (a == "--delta")
      o.delta = true;
    else if (a == "--settle-ms")
      o.settle_ms = std::atof(next().c_str());
    else if (a == "--publish-timeout")
      o.publish_timeout_s = std::atof(next().c_str());
    else if (a == "--ready-file")
      o.ready_file = next();
    else if (a == "--hold-seconds")
      o.hold_s = std::atof(next().c_str());
    else if (a == "--json")
      o.json = next();
    else if (a == "--label")
      o.label = next();
    else
      usage();
  }
  if (o.port <= 0 || o.key.empty() || o.connections < 0 || o.sources < 1 || o.sources > 250 ||
      o.window < 1) {
    usage();
  }
  if (!o.sizes.empty() && o.manifest.empty()) die("--publish needs --manifest");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Manifests

// A manifest with `n` connectors; `rev` is written, fixed-width, into the first description so
// that each revision has the same size.
std::string make_manifest(int n, int rev) {
  std::string out;
  out.reserve(static_cast<std::size_t>(n) * 400 + 256);
  out +=
      R"({"id":"01J7X5MB4K1ZW0000000000000","manifestVersion":"1","generatedAt":"2025-10-10T00:00:00Z","connectors":[)";
  char buf[512];
  for (int i = 1; i <= n; ++i) {
    char desc[128];
    if (i == 1) {
      std::snprintf(desc, sizeof desc, "Benchmark connector %06d, revision %08d.", i, rev);
    } else {
      std::snprintf(desc, sizeof desc, "Benchmark connector %06d, fixed description padding.", i);
    }
    std::snprintf(
        buf, sizeof buf,
        R"(%s{"id":"c-%06d","name":"C%d","version":"1","endpoint":"https://c%d.example.invalid/mcp","auth":{"type":"none"},"scopes":["s"],"ttlSeconds":300,"description":"%s"})",
        i == 1 ? "" : ",", i, i, i, desc);
    out += buf;
  }
  out += "]}\n";
  return out;
}

// Writes `text` next to `path` and returns the temporary name (rename() it over `path`).
std::string write_temp(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".bench-tmp";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) die("cannot write " + tmp);
  return tmp;
}

// ---------------------------------------------------------------------------------------------
// Server process and metrics

struct ProcStatus {
  long rss_kb = -1;
  long hwm_kb = -1;
  int threads = -1;
  int fds = -1;
};

ProcStatus read_proc(int pid) {
  ProcStatus p;
  if (pid <= 0) return p;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      p.rss_kb = std::atol(line.c_str() + 6);
    else if (line.rfind("VmHWM:", 0) == 0)
      p.hwm_kb = std::atol(line.c_str() + 6);
    else if (line.rfind("Threads:", 0) == 0)
      p.threads = std::atoi(line.c_str() + 8);
  }
  return p;
}

// A blocking GET; returns the body ("" on failure).
std::string http_get(const Options& o, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(o.port));
  ::inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return {};
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + o.host +
                          "\r\nAuthorization: Bearer " + o.key + "\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return {};
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto p = resp.find("\r\n\r\n");
  if (p == std::string::npos || resp.compare(0, 12, "HTTP/1.1 200") != 0) return {};
  return resp.substr(p + 4);
}

struct MetricSums {
  bool ok = false;
  double broadcast_sum = 0;
  double broadcast_count = 0;
  std::map<double, double> broadcast_buckets;  // le -> cumulative count
  std::map<std::string, double> stage_sum;     // stage -> seconds
  double stage_count = 0;                      // rebuilds (stage "read")
};

MetricSums scrape(const Options& o) {
  MetricSums m;
  const std::string text = http_get(o, "/metrics");
  if (text.empty()) return m;
  std::istringstream in(text);
  std::string line;
  auto label = [](std::string_view name, std::string_view key) -> std::string {
    const auto k = name.find(key);
    if (k == std::string_view::npos) return {};
    const auto b = k + key.size();
    const auto e = name.find('"', b);
    return std::string(name.substr(b, e - b));
  };
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    const double v = std::atof(line.c_str() + sp + 1);
    const std::string_view name(line.data(), sp);
    if (name == "cortex_connectors_sse_broadcast_duration_seconds_sum") {
      m.broadcast_sum = v;
    } else if (name == "cortex_connectors_sse_broadcast_duration_seconds_count") {
      m.broadcast_count = v;
    } else if (name.starts_with("cortex_connectors_sse_broadcast_duration_seconds_bucket")) {
      const std::string le = label(name, "le=\"");
      m.broadcast_buckets[le == "+Inf" ? INFINITY : std::atof(le.c_str())] = v;
    } else if (name.starts_with("cortex_connectors_stage_duration_seconds_sum")) {
      m.stage_sum[label(name, "stage=\"")] = v;
    } else if (name.starts_with("cortex_connectors_stage_duration_seconds_count{stage=\"read\"")) {
      m.stage_count = v;
    }
  }
  m.ok = true;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Connections

enum class State : std::uint8_t { kIdle, kConnecting, kHead, kStream, kClosed };

struct Conn {
  int fd = -1;
  State state = State::kIdle;
  bool ready = false;  // has received its first event
  bool frame_has_id = false;
  bool frame_has_data = false;
  bool frame_is_comment = false;
  std::uint8_t line_kept = 0;  // bytes of the current line kept in `line`
  std::size_t line_len = 0;    // whole length of the current line
  char line[30]{};
  std::uint64_t frame_id = 0;
  std::uint64_t frame_data_bytes = 0;
  std::uint64_t last_id = 0;
  std::uint64_t last_data_bytes = 0;
  std::uint32_t events = 0;
  std::uint32_t heartbeats = 0;
  std::string head;  // the HTTP response head, until complete
};

struct Publish {
  std::string size;
  int index = 0;
  std::uint64_t prev_id = 0;
  std::int64_t t_rename = 0;
  std::vector<std::int64_t> recv;  // per connection, 0: not yet
  std::size_t received = 0;
  std::map<std::uint64_t, std::size_t> ids;  // new ids seen and how often
  std::uint64_t data_bytes = 0;
};

struct Stats {
  int status_200 = 0;
  std::map<int, int> refused;  // status -> count
  int connect_errors = 0;
  int closed_by_server = 0;
  int live = 0;   // streaming connections
  int ready = 0;  // streaming with a first event
  std::uint64_t bytes = 0;
};

class Client {
 public:
  explicit Client(const Options& o) : o_(o), conns_(static_cast<std::size_t>(o.connections)) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) die("epoll_create1 failed");
    buf_.resize(1 << 18);
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<std::uint16_t>(o.port));
    if (::inet_pton(AF_INET, o.host.c_str(), &addr_.sin_addr) != 1) die("bad --host");
    request_ = std::string("GET /v1/connectors/stream") + (o.delta ? "?mode=delta" : "") +
               " HTTP/1.1\r\nHost: " + o.host + "\r\nAuthorization: Bearer " + o.key +
               "\r\nAccept: text/event-stream\r\n\r\n";
  }

  // Phase 1. Returns the connect wall time (ns).
  std::int64_t connect_all() {
    const std::int64_t start = now_ns();
    const std::int64_t deadline = start + static_cast<std::int64_t>(o_.connect_timeout_s * 1e9);
    std::size_t next = 0;
    std::int64_t next_progress = start + 2000000000LL;
    while (!g_stop) {
      while (next < conns_.size() && pending() < o_.window) open(next++);
      if (next == conns_.size() && pending() == 0) break;
      if (now_ns() > next_progress) {
        next_progress += 2000000000LL;
        std::fprintf(stderr,
                     "sse_subscribers: %.1f s: %zu opened, %d streaming, %d refused, "
                     "%d pending\n",
                     ms(now_ns() - start) / 1e3, next, stats_.live, refused_total(), pending());
      }
      if (now_ns() > deadline) {
        std::fprintf(stderr, "sse_subscribers: connect timeout with %d pending\n", pending());
        break;
      }
      pump(50);
    }
    return now_ns() - start;
  }

  // Runs the loop for `ms` milliseconds.
  void pump_for(double ms_) {
    const std::int64_t end = now_ns() + static_cast<std::int64_t>(ms_ * 1e6);
    while (!g_stop) {
      const std::int64_t left = end - now_ns();
      if (left <= 0) break;
      pump(static_cast<int>(std::max<std::int64_t>(1, left / 1000000)));
    }
  }

  // The id every ready connection has (the largest one; a mix means some lag behind).
  std::uint64_t current_id() const {
    std::uint64_t id = 0;
    for (const auto& c : conns_) {
      if (c.state == State::kStream && c.ready) id = std::max(id, c.last_id);
    }
    return id;
  }

  // Phase 2: one publish. `tmp` is renamed over the manifest; waits for every live subscriber.
  Publish publish(const std::string& size, int index, const std::string& tmp) {
    Publish p;
    p.size = size;
    p.index = index;
    p.prev_id = current_id();
    p.recv.assign(conns_.size(), 0);
    active_ = &p;
    p.t_rename = now_ns();
    if (::rename(tmp.c_str(), o_.manifest.c_str()) != 0) die("rename failed");
    const std::int64_t deadline =
        p.t_rename + static_cast<std::int64_t>(o_.publish_timeout_s * 1e9);
    while (!g_stop && static_cast<int>(p.received) < stats_.ready && now_ns() < deadline) pump(20);
    active_ = nullptr;
    return p;
  }

  void hold(double seconds) {
    const std::int64_t end =
        seconds < 0 ? INT64_MAX : now_ns() + static_cast<std::int64_t>(seconds * 1e9);
    while (!g_stop && now_ns() < end) pump(200);
  }

  const Stats& stats() const { return stats_; }

  std::uint64_t heartbeats() const {
    std::uint64_t n = 0;
    for (const auto& c : conns_) n += c.heartbeats;
    return n;
  }

  // Resets every connection (SO_LINGER 0): no TIME_WAIT left on this side, whose ephemeral
  // ports the next run needs.
  void close_all() {
    const linger reset{1, 0};
    for (auto& c : conns_) {
      if (c.fd >= 0) {
        ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        ::close(c.fd);
      }
      c.fd = -1;
    }
  }

 private:
  int pending() const { return opened_ - settled_; }
  int refused_total() const {
    int n = 0;
    for (const auto& [status, k] : stats_.refused) n += k;
    return n;
  }

  void fail(std::size_t i) {
    Conn& c = conns_[i];
    if (c.fd >= 0) {
      ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
    }
    c.fd = -1;
    if (c.state == State::kStream) {
      --stats_.live;
      if (c.ready) {
        --stats_.ready;
        ++stats_.closed_by_server;
      }
    }
    if (!c.ready && c.state != State::kClosed) ++settled_;
    c.state = State::kClosed;
  }

  void open(std::size_t i) {
    Conn& c = conns_[i];
    ++opened_;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      ++stats_.connect_errors;
      if (stats_.connect_errors < 5) std::perror("socket");
      c.state = State::kConnecting;
      fail(i);
      return;
    }
    if (o_.sources > 1) {
      const int one = 1;
      ::setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl(0x7f000001u + static_cast<std::uint32_t>(i % o_.sources));
      if (::bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
        ++stats_.connect_errors;
        c.state = State::kConnecting;
        fail(i);
        return;
      }
    }
    c.state = State::kConnecting;
    const int r = ::connect(c.fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_);
    if (r != 0 && errno != EINPROGRESS) {
      ++stats_.connect_errors;
      if (stats_.connect_errors < 5) std::perror("connect");
      fail(i);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = i;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
  }

  void pump(int timeout_ms) {
    static std::vector<epoll_event> events(4096);
    const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0) return;                // EINTR
    const std::int64_t t = now_ns();  // one timestamp per batch; reads are stamped below
    (void)t;
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[static_cast<std::size_t>(k)].data.u64;
      const std::uint32_t ev = events[static_cast<std::size_t>(k)].events;
      Conn& c = conns_[i];
      if (c.fd < 0) continue;
      if (c.state == State::kConnecting) {
        if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) continue;
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          ++stats_.connect_errors;
          if (stats_.connect_errors < 5) std::fprintf(stderr, "connect: %s\n", std::strerror(err));
          fail(i);
          continue;
        }
        const ssize_t w = ::send(c.fd, request_.data(), request_.size(), MSG_NOSIGNAL);
        if (w != static_cast<ssize_t>(request_.size())) {
          ++stats_.connect_errors;
          fail(i);
          continue;
        }
        epoll_event mod{};
        mod.events = EPOLLIN | EPOLLRDHUP;
        mod.data.u64 = i;
        ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &mod);
        c.state = State::kHead;
        continue;
      }
      if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) read_some(i);
    }
  }

  void read_some(std::size_t i) {
    Conn& c = conns_[i];
    for (int rounds = 0; rounds < 4; ++rounds) {
      const ssize_t n = ::recv(c.fd, buf_.data(), buf_.size(), 0);
      if (n > 0) {
        stats_.bytes += static_cast<std::uint64_t>(n);
        if (!feed(i, buf_.data(), static_cast<std::size_t>(n))) return;
        if (static_cast<std::size_t>(n) < buf_.size()) return;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      fail(i);  // EOF or error
      return;
    }
  }

  // Returns false when the connection was closed.
  bool feed(std::size_t i, const char* data, std::size_t size) {
    Conn& c = conns_[i];
    if (c.state == State::kHead) {
      const std::size_t before = c.head.size();
      c.head.append(data, std::min<std::size_t>(size, 8192));
      const auto end = c.head.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (c.head.size() > 8192) {
          fail(i);
          return false;
        }
        return true;
      }
      int status = 0;
      if (c.head.size() > 12) status = std::atoi(c.head.c_str() + 9);
      if (status != 200) {
        ++stats_.refused[status];
        fail(i);
        return false;
      }
      ++stats_.status_200;
      ++stats_.live;
      c.state = State::kStream;
      const std::size_t consumed = end + 4 - before;
      std::string().swap(c.head);
      data += consumed;
      size -= consumed;
    }
    const char* p = data;
    const char* const e = data + size;
    while (p < e) {
      const char* nl =
          static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(e - p)));
      const char* stop = nl ? nl : e;
      const std::size_t len = static_cast<std::size_t>(stop - p);
      if (c.line_kept < sizeof c.line) {
        const std::size_t keep = std::min<std::size_t>(len, sizeof c.line - c.line_kept);
        std::memcpy(c.line + c.line_kept, p, keep);
        c.line_kept = static_cast<std::uint8_t>(c.line_kept + keep);
      }
      c.line_len += len;
      if (!nl) break;
      end_line(i);
      p = nl + 1;
    }
    return true;
  }

  void end_line(std::size_t i) {
    Conn& c = conns_[i];
    const std::string_view line(c.line, c.line_kept);
    if (c.line_len == 0) {
      // End of a frame.
      if (c.frame_has_id && c.frame_has_data)
        event(i);
      else if (c.frame_is_comment)
        ++c.heartbeats;
      c.frame_has_id = c.frame_has_data = c.frame_is_comment = false;
      c.frame_data_bytes = 0;
    } else if (line.starts_with(":")) {
      c.frame_is_comment = true;
    } else if (line.starts_with("id:")) {
      std::string_view v = line.substr(3);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      std::uint64_t id = 0;
      std::from_chars(v.data(), v.data() + v.size(), id);
      c.frame_id = id;
      c.frame_has_id = true;
    } else if (line.starts_with("data:")) {
      c.frame_has_data = true;
      c.frame_data_bytes += c.line_len + 1;
    }
    c.line_kept = 0;
    c.line_len = 0;
  }

  void event(std::size_t i) {
    Conn& c = conns_[i];
    ++c.events;
    c.last_id = c.frame_id;
    c.last_data_bytes = c.frame_data_bytes;
    if (!c.ready) {
      c.ready = true;
      ++stats_.ready;
      ++settled_;
    }
    if (active_ && c.frame_id > active_->prev_id && active_->recv[i] == 0) {
      active_->recv[i] = now_ns();
      ++active_->received;
      ++active_->ids[c.frame_id];
      active_->data_bytes = c.frame_data_bytes;
    }
  }

  const Options& o_;
  int epoll_ = -1;
  std::vector<Conn> conns_;
  std::vector<char> buf_;
  sockaddr_in addr_{};
  std::string request_;
  Stats stats_;
  int opened_ = 0;
  int settled_ = 0;  // connections that got their first event or failed before it
  Publish* active_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Figures

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  // Nearest rank.
  const std::size_t rank =
      static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct PublishResult {
  std::string size;
  int index = 0;
  std::size_t subscribers = 0;
  std::size_t received = 0;
  std::size_t distinct_ids = 0;
  std::uint64_t event_bytes = 0;
  double rename_to_first_ms = NAN;
  double rename_to_last_ms = NAN;
  double first_to_last_ms = NAN;
  double across_p50_ms = NAN;  // rename -> receipt, across subscribers
  double across_p99_ms = NAN;
  // From the server's histogram cortex_connectors_sse_broadcast_duration_seconds, deltas over
  // this publish. The hub observes it more than once per publish (each time its count of
  // subscribers still writing the latest event drops to 0, which happens after every subscriber
  // whose write completes at once), so: observations, their mean, and the smallest bucket
  // bound holding all of them = an upper bound of publication -> last completed write.
  double server_observations = NAN;
  double server_mean_ms = NAN;
  double server_last_write_le_ms = NAN;
  double server_reload_ms = NAN;  // metric: all rebuild stages
  double server_compress_ms = NAN;
  double client_cpu_ms = NAN;
  double server_cpu_ms = NAN;  // the server's CPU time from rename to the last receipt
};

// CPU time of process `pid` (all its threads), in ms; NAN when unavailable.
double process_cpu_ms(int pid) {
  clockid_t id{};
  timespec ts{};
  if (pid <= 0 || ::clock_getcpuclockid(pid, &id) != 0 || ::clock_gettime(id, &ts) != 0) return NAN;
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double cpu_ms() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

PublishResult summarize(const Publish& p, int subscribers) {
  PublishResult r;
  r.size = p.size;
  r.index = p.index;
  r.subscribers = static_cast<std::size_t>(subscribers);
  r.received = p.received;
  r.distinct_ids = p.ids.size();
  r.event_bytes = p.data_bytes;
  std::vector<double> lat;
  lat.reserve(p.received);
  for (const auto t : p.recv) {
    if (t != 0) lat.push_back(ms(t - p.t_rename));
  }
  if (!lat.empty()) {
    const auto [mn, mx] = std::minmax_element(lat.begin(), lat.end());
    r.rename_to_first_ms = *mn;
    r.rename_to_last_ms = *mx;
    r.first_to_last_ms = *mx - *mn;
    r.across_p50_ms = percentile(lat, 50);
    r.across_p99_ms = percentile(lat, 99);
  }
  return r;
}

std::string jnum(double v) {
  if (!std::isfinite(v)) return "null";  // +Inf bucket: see server_last_write_over_1s
  char b[64];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

std::string jstr(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  return o + "\"";
}

std::string proc_json(const ProcStatus& p) {
  return "{\"rss_kb\":" + std::to_string(p.rss_kb) + ",\"hwm_kb\":" + std::to_string(p.hwm_kb) +
         ",\"threads\":" + std::to_string(p.threads) + "}";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--print-manifest") {
    // The manifest the publishes use, with N connectors (revision 0): the starting manifest.
    const std::string m = make_manifest(std::atoi(argv[2]), 0);
    std::fwrite(m.data(), 1, m.size(), stdout);
    return 0;
  }
  Options o = parse_options(argc, argv);
  const int requested = o.connections;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGPIPE, SIG_IGN);

  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  if (nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  // One descriptor per connection, plus stdio, epoll and the metrics scrape.
  if (static_cast<rlim_t>(o.connections) + 16 > nofile.rlim_cur) {
    o.connections = static_cast<int>(nofile.rlim_cur) - 16;
    std::fprintf(stderr, "sse_subscribers: descriptor limit %lu: opening %d connections, not %d\n",
                 static_cast<unsigned long>(nofile.rlim_cur), o.connections, requested);
  }

  std::string out = "{\"label\":" + jstr(o.label) + ",\"requested\":" + std::to_string(requested) +
                    ",\"connections\":" + std::to_string(o.connections) +
                    ",\"sources\":" + std::to_string(o.sources) +
                    ",\"delta_mode\":" + (o.delta ? "true" : "false");
  const ProcStatus before = read_proc(o.server_pid);
  out += ",\"server_before\":" + proc_json(before);

  Client client(o);
  const std::int64_t connect_ns = client.connect_all();
  client.pump_for(300);  // let the server settle after the last adoption
  const ProcStatus connected = read_proc(o.server_pid);
  const Stats s0 = client.stats();
  std::string refused;
  for (const auto& [status, n] : s0.refused) {
    refused +=
        (refused.empty() ? "" : ",") + ("\"" + std::to_string(status) + "\":") + std::to_string(n);
  }
  std::fprintf(stderr,
               "[%s] C=%d: %d streaming (%d with the first event) in %.0f ms; refused {%s}, "
               "connect errors %d; server RSS %.1f MB, %d threads (before: %.1f MB, %d)\n",
               o.label.c_str(), o.connections, s0.live, s0.ready, ms(connect_ns), refused.c_str(),
               s0.connect_errors, connected.rss_kb / 1024.0, connected.threads,
               before.rss_kb / 1024.0, before.threads);
  out += ",\"connect_ms\":" + jnum(ms(connect_ns)) + ",\"streaming\":" + std::to_string(s0.live) +
         ",\"ready\":" + std::to_string(s0.ready) + ",\"refused\":{" + refused +
         "},\"connect_errors\":" + std::to_string(s0.connect_errors) +
         ",\"server_connected\":" + proc_json(connected);

  // Phase 2.
  std::vector<PublishResult> results;
  int rev = 1;
  for (const auto& size : o.sizes) {
    if (g_stop) break;
    // Warm-up: the first manifest of this size (its event is not counted).
    {
      const std::string tmp = write_temp(o.manifest, make_manifest(size.connectors, rev++));
      const Publish w = client.publish(size.name + "-warmup", 0, tmp);
      const PublishResult wr = summarize(w, client.stats().ready);
      std::fprintf(stderr,
                   "[%s] %s warm-up: %zu/%d received, event %" PRIu64
                   " bytes, rename->last %.1f ms\n",
                   o.label.c_str(), size.name.c_str(), w.received, client.stats().ready,
                   w.data_bytes, wr.rename_to_last_ms);
    }
    for (int k = 1; k <= size.count && !g_stop; ++k) {
      const std::string tmp = write_temp(o.manifest, make_manifest(size.connectors, rev++));
      client.pump_for(o.settle_ms);
      const MetricSums m0 = o.metrics ? scrape(o) : MetricSums{};
      const int subscribers = client.stats().ready;
      const double cpu0 = cpu_ms();
      const double scpu0 = process_cpu_ms(o.server_pid);
      const Publish p = client.publish(size.name, k, tmp);
      const double cpu1 = cpu_ms();
      const double scpu1 = process_cpu_ms(o.server_pid);
      PublishResult r = summarize(p, subscribers);
      r.client_cpu_ms = cpu1 - cpu0;
      r.server_cpu_ms = scpu1 - scpu0;
      if (o.metrics && m0.ok) {
        // The server observes the broadcast when its last write completes; normally before the
        // last subscriber has read it. Retry briefly if not yet there.
        for (int attempt = 0; attempt < 20; ++attempt) {
          const MetricSums m1 = scrape(o);
          if (m1.ok && m1.broadcast_count > m0.broadcast_count && m1.stage_count > m0.stage_count) {
            const double n = m1.broadcast_count - m0.broadcast_count;
            r.server_observations = n;
            r.server_mean_ms = (m1.broadcast_sum - m0.broadcast_sum) / n * 1e3;
            for (const auto& [le, cum] : m1.broadcast_buckets) {
              const auto it = m0.broadcast_buckets.find(le);
              const double before_cum = it == m0.broadcast_buckets.end() ? 0 : it->second;
              if (cum - before_cum >= n) {
                r.server_last_write_le_ms = le * 1e3;
                break;
              }
            }
            if (m1.stage_count - m0.stage_count == 1) {
              double total = 0;
              for (const auto& [stage, v] : m1.stage_sum) {
                const auto it = m0.stage_sum.find(stage);
                const double d = v - (it == m0.stage_sum.end() ? 0 : it->second);
                total += d;
                if (stage == "compress") r.server_compress_ms = d * 1e3;
              }
              r.server_reload_ms = total * 1e3;
            }
            break;
          }
          client.pump_for(50);
        }
      }
      std::fprintf(stderr,
                   "[%s] %s #%d: %zu/%zu, event %" PRIu64
                   " B, rename->first %.1f ms, ->last %.1f ms, first->last %.1f ms, "
                   "server reload %s ms (compress %s), server last write <= %s ms (%s obs), "
                   "CPU server %.0f client %.0f ms\n",
                   o.label.c_str(), r.size.c_str(), k, r.received, r.subscribers, r.event_bytes,
                   r.rename_to_first_ms, r.rename_to_last_ms, r.first_to_last_ms,
                   jnum(r.server_reload_ms).c_str(), jnum(r.server_compress_ms).c_str(),
                   jnum(r.server_last_write_le_ms).c_str(), jnum(r.server_observations).c_str(),
                   r.server_cpu_ms, r.client_cpu_ms);
      results.push_back(r);
    }
  }

  out += ",\"publishes\":[";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    out += (i ? "," : "") + std::string("{\"size\":") + jstr(r.size) +
           ",\"index\":" + std::to_string(r.index) +
           ",\"subscribers\":" + std::to_string(r.subscribers) +
           ",\"received\":" + std::to_string(r.received) +
           ",\"distinct_ids\":" + std::to_string(r.distinct_ids) +
           ",\"event_bytes\":" + std::to_string(r.event_bytes) +
           ",\"rename_to_first_ms\":" + jnum(r.rename_to_first_ms) +
           ",\"rename_to_last_ms\":" + jnum(r.rename_to_last_ms) +
           ",\"first_to_last_ms\":" + jnum(r.first_to_last_ms) +
           ",\"across_p50_ms\":" + jnum(r.across_p50_ms) +
           ",\"across_p99_ms\":" + jnum(r.across_p99_ms) +
           ",\"server_reload_ms\":" + jnum(r.server_reload_ms) +
           ",\"server_compress_ms\":" + jnum(r.server_compress_ms) +
           ",\"server_observations\":" + jnum(r.server_observations) +
           ",\"server_mean_ms\":" + jnum(r.server_mean_ms) +
           ",\"server_last_write_le_ms\":" + jnum(r.server_last_write_le_ms) +
           ",\"client_cpu_ms\":" + jnum(r.client_cpu_ms) +
           ",\"server_cpu_ms\":" + jnum(r.server_cpu_ms) + "}";
  }
  out += "]";

  // Summary per size: p50/p99/max over publishes.
  out += ",\"summary\":{";
  bool first_size = true;
  for (const auto& size : o.sizes) {
    std::vector<PublishResult> rs;
    for (const auto& r : results) {
      if (r.size == size.name) rs.push_back(r);
    }
    if (rs.empty()) continue;
    auto col = [&](double PublishResult::*f) {
      std::vector<double> v;
      for (const auto& r : rs) {
        if (!std::isnan(r.*f)) v.push_back(r.*f);
      }
      return v;
    };
    auto trio = [&](double PublishResult::*f) {
      const auto v = col(f);
      return "{\"p50\":" + jnum(percentile(v, 50)) + ",\"p99\":" + jnum(percentile(v, 99)) +
             ",\"max\":" + jnum(v.empty() ? NAN : *std::max_element(v.begin(), v.end())) +
             ",\"n\":" + std::to_string(v.size()) + "}";
    };
    std::size_t incomplete = 0;
    for (const auto& r : rs) incomplete += r.received < r.subscribers ? 1 : 0;
    out += std::string(first_size ? "" : ",") + jstr(size.name) +
           ":{\"publishes\":" + std::to_string(rs.size()) +
           ",\"incomplete\":" + std::to_string(incomplete) +
           ",\"event_bytes\":" + std::to_string(rs.back().event_bytes) +
           ",\"rename_to_first_ms\":" + trio(&PublishResult::rename_to_first_ms) +
           ",\"rename_to_last_ms\":" + trio(&PublishResult::rename_to_last_ms) +
           ",\"first_to_last_ms\":" + trio(&PublishResult::first_to_last_ms) +
           ",\"across_p50_ms\":" + trio(&PublishResult::across_p50_ms) +
           ",\"across_p99_ms\":" + trio(&PublishResult::across_p99_ms) +
           ",\"server_reload_ms\":" + trio(&PublishResult::server_reload_ms) +
           ",\"server_compress_ms\":" + trio(&PublishResult::server_compress_ms) +
           ",\"server_last_write_le_ms\":" + trio(&PublishResult::server_last_write_le_ms) +
           ",\"client_cpu_ms\":" + trio(&PublishResult::client_cpu_ms) +
           ",\"server_cpu_ms\":" + trio(&PublishResult::server_cpu_ms) + "}";
    first_size = false;
    const auto last = col(&PublishResult::rename_to_last_ms);
    const auto f2l = col(&PublishResult::first_to_last_ms);
    const auto bc = col(&PublishResult::server_last_write_le_ms);
    std::fprintf(stderr,
                 "[%s] %s (%zu publishes, %" PRIu64
                 " B): rename->last p50 %.1f max %.1f ms; "
                 "first->last p50 %.1f max %.1f ms; server last write <= p50 %.1f max %.1f ms\n",
                 o.label.c_str(), size.name.c_str(), rs.size(), rs.back().event_bytes,
                 percentile(last, 50),
                 last.empty() ? NAN : *std::max_element(last.begin(), last.end()),
                 percentile(f2l, 50), f2l.empty() ? NAN : *std::max_element(f2l.begin(), f2l.end()),
                 percentile(bc, 50), bc.empty() ? NAN : *std::max_element(bc.begin(), bc.end()));
  }
  out += "}";

  const ProcStatus after = read_proc(o.server_pid);
  const Stats s1 = client.stats();
  out += ",\"server_after_publishes\":" + proc_json(after) +
         ",\"streaming_after_publishes\":" + std::to_string(s1.live) +
         ",\"closed_by_server\":" + std::to_string(s1.closed_by_server);
  if (!o.sizes.empty()) {
    std::fprintf(stderr,
                 "[%s] after the publishes: %d streaming, server RSS %.1f MB (peak %.1f), "
                 "%d threads\n",
                 o.label.c_str(), s1.live, after.rss_kb / 1024.0, after.hwm_kb / 1024.0,
                 after.threads);
  }

  if (!o.ready_file.empty()) {
    std::ofstream f(o.ready_file);
    f << client.stats().live << "\n";
  }
  if (o.hold_s != 0) client.hold(o.hold_s);
  const Stats s2 = client.stats();
  out += ",\"streaming_at_end\":" + std::to_string(s2.live) +
         ",\"heartbeat_frames\":" + std::to_string(client.heartbeats()) + "}\n";
  client.close_all();

  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << out;
  }
  return 0;
}
