#include "http_server.h"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cortex_connectors/negotiation.h"

namespace cortex_connectors::server {

namespace {

using SteadyClock = std::chrono::steady_clock;

// `line` starts with `name` (lower case) in any ASCII case.
bool iequals_prefix(std::string_view line, std::string_view name) {
  return line.size() >= name.size() && ascii_iequals(line.substr(0, name.size()), name);
}

// One sendmsg() of `first` then `second` (either may be empty), MSG_NOSIGNAL and `flags`:
// the bytes sent, or -1 with errno set.
ssize_t send_two(int fd, std::string_view first, std::string_view second, int flags) {
  iovec iov[2];
  std::size_t count = 0;
  if (!first.empty()) iov[count++] = {const_cast<char*>(first.data()), first.size()};
  if (!second.empty()) iov[count++] = {const_cast<char*>(second.data()), second.size()};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL | flags);
}

// The Stream httplib reads the (already read and checked) request head from and writes the
// response to. Reads past the head return EOF: GET and HEAD carry no body here. Writes are
// gathered up to kGather bytes and handed to the connection loop (take_output()), which sends
// them without blocking, so a small response leaves in one send() (one TCP segment, one wake-up
// of the client). A larger one leaves here, in one writev() of the gathered head and the body,
// waiting up to the write timeout for a full socket: the only write that holds a worker (no hot
// route's: those are the fast path's). The peer's and our own address are looked up once per
// connection.
class ConnectionStream final : public httplib::Stream {
 public:
  static constexpr std::size_t kGather = 64 * 1024;

  ConnectionStream(int fd, std::chrono::milliseconds write_timeout)
      : fd_(fd), write_timeout_(write_timeout) {}

  void set_head(std::string head) {
    head_ = std::move(head);
    head_pos_ = 0;
    failed_ = false;
  }

  // Hands what write() gathered (and has not sent) to `into`, for the connection loop to send
  // without blocking; false when an earlier send failed.
  bool take_output(std::string& into) {
    into.clear();
    out_.swap(into);
    if (out_.capacity() > kGather) std::string().swap(out_);
    return !failed_;
  }

  bool is_readable() const override { return head_pos_ < head_.size(); }
  bool is_writable() const override { return !failed_; }
  ssize_t read(char* ptr, size_t size) override {
    const std::size_t n = std::min(size, head_.size() - head_pos_);
    std::memcpy(ptr, head_.data() + head_pos_, n);
    head_pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (failed_) return -1;
    if (out_.size() + size <= kGather) {
      out_.append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    if (!send_gathered(std::string_view(ptr, size))) {
      failed_ = true;
      return -1;
    }
    out_.clear();
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    if (!remote_.known) remote_ = lookup(::getpeername);
    ip = remote_.ip;
    port = remote_.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    if (!local_.known) local_ = lookup(::getsockname);
    ip = local_.ip;
    port = local_.port;
  }
  socket_t socket() const override { return fd_; }

 private:
  struct Address {
    bool known = false;
    std::string ip;
    int port = 0;
  };

  template <class F>
  Address lookup(F f) const {
    Address out;
    out.known = true;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (f(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return out;  // NOLINT
    char host[64] = {};
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);  // NOLINT
      ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      out.port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);  // NOLINT
      ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      out.port = ntohs(a->sin6_port);
    }
    out.ip = host;
    return out;
  }

  // Sends out_ then `more`.
  bool send_gathered(std::string_view more) { return send_pair(out_, more); }

  // Sends `first` then `more`, with one writev() per round; waits up to the write timeout
  // whenever the socket buffer is full.
  bool send_pair(std::string_view first, std::string_view more) {
    while (!first.empty() || !more.empty()) {
      const ssize_t n = send_two(fd_, first, more, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_writable()) continue;
        return false;
      }
      auto sent = static_cast<std::size_t>(n);
      const std::size_t from_first = std::min(sent, first.size());
      first.remove_prefix(from_first);
      sent -= from_first;
      more.remove_prefix(std::min(sent, more.size()));
    }
    return true;
  }

  bool wait_writable() const {
    pollfd p{fd_, POLLOUT, 0};
    return ::poll(&p, 1, static_cast<int>(write_timeout_.count())) > 0 &&
           (p.revents & (POLLERR | POLLHUP)) == 0;
  }

  int fd_;
  std::chrono::milliseconds write_timeout_;
  std::string head_;
  std::size_t head_pos_ = 0;
  std::string out_;
  bool failed_ = false;
  mutable Address remote_;
  mutable Address local_;
};

}  // namespace

std::size_t worker_thread_count(const HardeningOptions& options) {
  if (options.worker_threads > 0) return options.worker_threads;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 2;
  return static_cast<std::size_t>(std::max(CPU_COUNT(&set), 1));
}

HeadResult check_head(std::string& head, const HardeningOptions& options) {
  const std::string_view h = head;
  const auto first_sp = h.find(' ');
  if (first_sp == std::string_view::npos) return HeadResult::kBad;
  const std::string_view method = h.substr(0, first_sp);
  if (method != "GET" && method != "HEAD") return HeadResult::kMethod;
  // Swapped with `head` at the end: both buffers keep their capacity for the next request.
  thread_local std::string out;
  out.clear();
  std::size_t pos = 0;
  std::size_t count = 0;
  std::size_t authorizations = 0;
  bool first = true;
  while (pos < h.size()) {
    const auto eol = h.find("\r\n", pos);
    const std::string_view line = h.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;
    if (!first) {
      if (++count > options.max_header_count) return HeadResult::kTooManyHeaders;
      // RFC 9112 section 5: no whitespace before the colon, no obsolete line folding (a line
      // starting with whitespace). Parsers disagree on both, so both are refused.
      const auto colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0 ||
          line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
        return HeadResult::kBad;
      }
      if (iequals_prefix(line, "range:") || iequals_prefix(line, "if-range:")) continue;
      if (iequals_prefix(line, "transfer-encoding:")) return HeadResult::kBody;
      if (iequals_prefix(line, "authorization:") && ++authorizations > 1) {
        return HeadResult::kDuplicateAuthorization;
      }
      if (iequals_prefix(line, "content-length:")) {
        std::string_view v = line.substr(15);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
        if (v != "0") return HeadResult::kBody;
      }
    }
    first = false;
    out.append(line).append("\r\n");
  }
  out.append("\r\n");
  head.swap(out);
  return HeadResult::kOk;
}

namespace {

// Answers a refused request directly and closes: httplib never sees it.
void refuse(int fd, int status, std::string_view detail, std::string_view extra_headers = {}) {
  const std::string body = detail_body(detail);
  const std::string response =
      status_line(status) +
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n" + body;
  send_all(fd, response);
}

}  // namespace

std::string status_line(int status) {
  std::string_view reason = "Service Unavailable";
  switch (status) {
    case 200:
      reason = "OK";
      break;
    case 304:
      reason = "Not Modified";
      break;
    case 400:
      reason = "Bad Request";
      break;
    case 401:
      reason = "Unauthorized";
      break;
    case 403:
      reason = "Forbidden";
      break;
    case 405:
      reason = "Method Not Allowed";
      break;
    case 431:
      reason = "Request Header Fields Too Large";
      break;
    default:
      break;
  }
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
}

RequestHead parse_head(std::string_view head) {
  RequestHead h;
  parse_head(head, h);
  return h;
}

void parse_head(std::string_view head, RequestHead& h) {
  auto eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const auto sp1 = line.find(' ');
  const auto sp2 = line.find(' ', sp1 + 1);
  h.method = line.substr(0, sp1);
  h.target =
      line.substr(sp1 + 1, sp2 == std::string_view::npos ? std::string_view::npos : sp2 - sp1 - 1);
  h.version = sp2 == std::string_view::npos ? std::string_view{} : line.substr(sp2 + 1);
  const auto q = h.target.find('?');
  h.path = h.target.substr(0, q);
  h.query = q == std::string_view::npos ? std::string_view{} : h.target.substr(q + 1);
  h.headers.clear();
  std::size_t pos = eol + 2;
  while (pos < head.size()) {
    eol = head.find("\r\n", pos);
    const std::string_view l = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (l.empty()) break;
    const auto colon = l.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = l.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    h.headers.emplace_back(l.substr(0, colon), value);
  }
}

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 1000) > 0 && (p.revents & (POLLERR | POLLHUP)) == 0) continue;
      return;
    }
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string_view RequestHead::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n.size() == name.size() && iequals_prefix(n, name)) return v;
  }
  return {};
}

std::string_view RequestHead::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view item = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = item.find('=');
    if (item.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
    }
  }
  return {};
}

// One client connection. Owned by exactly one place at a time: the worker serving it, or
// parked_ while it waits in the epoll set.
struct HardenedServer::Connection {
  Connection(int fd_in, std::uint64_t id_in, const HardeningOptions& options)
      : fd(fd_in), id(id_in), stream(fd_in, options.write_timeout) {}

  int fd;
  std::uint64_t id;     // epoll data: never reused, unlike descriptors
  std::string pending;  // bytes read and not yet part of a served request
  std::size_t served = 0;
  SteadyClock::time_point deadline;  // of the request being read, or of the idle wait
  bool in_request = true;            // the first request's deadline runs from accept
  bool registered = false;           // fd is in the epoll set
  ConnectionStream stream;
  // Reused for every request, so that their buffers keep their capacity.
  std::string head;
  RequestHead parsed;
  // The response being sent (either path's): `fast.head`, then `fast.body`, `sent` bytes of
  // them so far. While `writing`, the connection waits for the socket to take the rest.
  FastResponse fast;
  std::size_t sent = 0;
  bool writing = false;
};

// The TaskQueue httplib's accept loop hands accepted sockets to. Its threads wait in epoll_wait
// on the server's set: a job (an accepted socket), a parked connection that became readable, the
// sweep timer, or the stop signal. One event per epoll_wait, so the kernel wakes one worker per
// ready connection.
class HardenedServer::WorkerPool final : public httplib::TaskQueue {
 public:
  static constexpr std::uint64_t kJobId = 1;
  static constexpr std::uint64_t kStopId = 2;
  static constexpr std::uint64_t kTimerId = 3;

  WorkerPool(HardenedServer& server, std::size_t threads)
      : server_(server), job_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE)) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kJobId;
    ::epoll_ctl(server_.epoll_fd_, EPOLL_CTL_ADD, job_fd_, &ev);
    for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }

  ~WorkerPool() override {
    shutdown();
    ::epoll_ctl(server_.epoll_fd_, EPOLL_CTL_DEL, job_fd_, nullptr);
    ::close(job_fd_);
  }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(fn));
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(job_fd_, &one, sizeof one);
  }

  // httplib calls this when its accept loop ends: every worker stops; jobs still queued run
  // here (with the server stopping, they close their sockets).
  void shutdown() override {
    server_.begin_stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
    while (auto job = pop()) (*job)();
  }

 private:
  std::optional<std::function<void()>> pop() {
    std::lock_guard lock(mutex_);
    if (jobs_.empty()) return std::nullopt;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    return job;
  }

  void run() {
    for (;;) {
      epoll_event ev{};
      const int n = ::epoll_wait(server_.epoll_fd_, &ev, 1, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      std::uint64_t count = 0;
      switch (ev.data.u64) {
        case kJobId:
          // Semaphore eventfd: one successful read per enqueued job.
          if (::read(job_fd_, &count, sizeof count) == sizeof count) {
            if (auto job = pop()) (*job)();
          }
          break;
        case kStopId:
          while (auto job = pop()) (*job)();
          server_.sweep(true);
          return;
        case kTimerId:
          if (::read(server_.timer_fd_, &count, sizeof count) == sizeof count) {
            server_.sweep(false);
          }
          break;
        default:
          server_.on_ready(ev.data.u64);
          break;
      }
    }
  }

  HardenedServer& server_;
  int job_fd_;
  std::mutex mutex_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
};

void HardenedServer::set_takeover(std::string path, TakeoverHook hook) {
  takeover_path_ = std::move(path);
  takeover_ = std::move(hook);
}

HardenedServer::HardenedServer(HardeningOptions options)
    : options_(options),
      epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      timer_fd_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) {
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second instance share
  // the port silently.
  set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  set_tcp_nodelay(true);
  // Only for the Keep-Alive response header: serve() enforces both.
  set_keep_alive_max_count(options_.keep_alive_max_requests);
  set_keep_alive_timeout(
      std::chrono::duration_cast<std::chrono::seconds>(options_.keep_alive_timeout).count());

  // The stop eventfd stays readable once written (level-triggered): it wakes every worker.
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = WorkerPool::kStopId;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
  // Deadlines are checked a few times per shortest timeout: a connection is closed at most a
  // quarter of that (and never more than 250 ms) after its deadline.
  const auto shortest = std::min(options_.request_deadline, options_.keep_alive_timeout);
  const auto period =
      std::clamp(shortest / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
  itimerspec spec{};
  spec.it_interval.tv_sec = static_cast<time_t>(period.count() / 1000);
  spec.it_interval.tv_nsec = static_cast<long>((period.count() % 1000) * 1000000);
  spec.it_value = spec.it_interval;
  ::timerfd_settime(timer_fd_, 0, &spec, nullptr);
  ev.data.u64 = WorkerPool::kTimerId;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev);

  new_task_queue = [this] { return new WorkerPool(*this, worker_thread_count(options_)); };
}

HardenedServer::~HardenedServer() {
  begin_stop();
  sweep(true);
  for (int fd : {timer_fd_, stop_fd_, epoll_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

int HardenedServer::bind(const std::string& host, int port, int backlog) {
  if (epoll_fd_ < 0 || stop_fd_ < 0 || timer_fd_ < 0) return -1;
  int bound = port;
  if (port == 0) {
    bound = bind_to_any_port(host);
  } else if (!bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound < 0) return -1;
  // httplib listens with a backlog of 5; listen() again raises it.
  ::listen(svr_sock_.load(), backlog);
  return bound;
}

void HardenedServer::begin_stop() {
  if (stopping_.exchange(true)) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof one);
}

void HardenedServer::shutdown() {
  begin_stop();
  // httplib's stop() closes the listening socket only once its accept loop runs, so a
  // shutdown() between bind() and listen_after_bind() (a SIGTERM right after start) was lost and
  // the loop then ran forever. Closing the bound socket here ends a running loop as stop() does
  // (the loop runs while svr_sock_ is valid) and makes one that has not started return at once.
  const socket_t sock = svr_sock_.exchange(INVALID_SOCKET);
  if (sock != INVALID_SOCKET) {
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }
}

std::size_t HardenedServer::parked_connections() const {
  std::lock_guard lock(parked_mutex_);
  return parked_.size();
}

bool HardenedServer::process_and_close_socket(socket_t sock) {
  // Non-blocking: no send (sendmsg, sendfile) may hold a worker; a full socket parks the
  // connection (finish_response()).
  ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL, 0) | O_NONBLOCK);
  auto c = std::make_unique<Connection>(sock, next_id_.fetch_add(1), options_);
  c->deadline = SteadyClock::now() + options_.request_deadline;
  serve(std::move(c));
  return true;
}

void HardenedServer::close_connection(std::unique_ptr<Connection> c) {
  ::shutdown(c->fd, SHUT_RDWR);
  ::close(c->fd);  // also removes it from the epoll set
}

void HardenedServer::park(std::unique_ptr<Connection> c) {
  // Under the lock, so that sweep() cannot close the descriptor (and a new connection reuse
  // its number) between the insertion and epoll_ctl().
  std::unique_lock lock(parked_mutex_);
  if (stopping_) {
    lock.unlock();
    close_connection(std::move(c));
    return;
  }
  epoll_event ev{};
  ev.events = (c->writing ? EPOLLOUT : EPOLLIN) | EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u64 = c->id;
  const int fd = c->fd;
  const int op = c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  c->registered = true;
  auto [it, inserted] = parked_.emplace(c->id, std::move(c));
  if (::epoll_ctl(epoll_fd_, op, fd, &ev) != 0) {
    auto failed = std::move(it->second);
    parked_.erase(it);
    lock.unlock();
    close_connection(std::move(failed));
  }
}

void HardenedServer::on_ready(std::uint64_t id) {
  std::unique_ptr<Connection> c;
  {
    std::lock_guard lock(parked_mutex_);
    const auto it = parked_.find(id);
    if (it == parked_.end()) return;  // swept meanwhile
    c = std::move(it->second);
    parked_.erase(it);
  }
  serve(std::move(c));
}

void HardenedServer::sweep(bool all) {
  std::vector<std::unique_ptr<Connection>> expired;
  {
    const auto now = SteadyClock::now();
    std::lock_guard lock(parked_mutex_);
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (all || it->second->deadline <= now) {
        expired.push_back(std::move(it->second));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : expired) close_connection(std::move(c));
}

namespace {

// Reads without blocking until `c.pending` holds a whole request head, then checks it.
template <class C>
HeadResult read_head(C& c, std::string& head, const HardeningOptions& options) {
  for (;;) {
    if (const auto end = c.pending.find("\r\n\r\n"); end != std::string::npos) {
      if (end + 4 > options.header_budget_bytes) return HeadResult::kTooLarge;
      head.assign(c.pending, 0, end + 4);
      c.pending.erase(0, end + 4);
      return check_head(head, options);
    }
    if (c.pending.size() > options.header_budget_bytes) return HeadResult::kTooLarge;
    const auto now = SteadyClock::now();
    if (now >= c.deadline) return HeadResult::kTimeout;
    char buf[4096];
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      if (!c.in_request) {  // the first byte of a request: its deadline starts
        c.in_request = true;
        c.deadline = now + options.request_deadline;
      }
      c.pending.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return c.pending.empty() ? HeadResult::kClosed : HeadResult::kBad;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return HeadResult::kNeedMore;
    return HeadResult::kClosed;
  }
}

}  // namespace

namespace {

// Answers a head check_head() refused, directly: httplib never sees it. Returns the status.
int refuse_head(int fd, HeadResult r) {
  switch (r) {
    case HeadResult::kMethod:
      refuse(fd, 405, "method not allowed", "Allow: GET, HEAD\r\n");
      return 405;
    case HeadResult::kTooLarge:
    case HeadResult::kTooManyHeaders:
      refuse(fd, 431, "request header fields too large");
      return 431;
    case HeadResult::kBody:
      refuse(fd, 400, "request bodies are not accepted");
      return 400;
    case HeadResult::kDuplicateAuthorization:
      refuse(fd, 400, "more than one Authorization header");
      return 400;
    default:
      refuse(fd, 400, "malformed request");
      return 400;
  }
}

}  // namespace

namespace {

enum class Sent : std::uint8_t { kAll, kBlocked, kFailed };

// Sends what is left of `c`'s response without blocking: the head and the body in one
// sendmsg(), or the head (MSG_MORE) then the body with sendfile() from its file.
template <class C>
Sent send_response(C& c) {
  const std::string_view head = c.fast.head;
  const std::string_view body = c.fast.body;
  const bool from_file = c.fast.body_file >= 0 && !body.empty();
  const std::size_t total = head.size() + body.size();
  // A file body leaves in full segments (TCP_CORK, as nginx's tcp_nopush): without it, each
  // sendfile() round ends in a short segment the client wakes up for.
  const int one = 1;
  const int zero = 0;
  if (from_file && c.sent == 0) ::setsockopt(c.fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one);
  while (c.sent < total) {
    ssize_t n = 0;
    if (from_file && c.sent >= head.size()) {
      auto offset = static_cast<off_t>(c.sent - head.size());
      n = ::sendfile(c.fd, c.fast.body_file, &offset, total - c.sent);
      if (n == 0) return Sent::kFailed;  // the file is shorter than the body: never
    } else {
      const std::size_t body_sent = c.sent > head.size() ? c.sent - head.size() : 0;
      const std::string_view head_left = head.substr(std::min(c.sent, head.size()));
      const std::string_view body_left = from_file ? std::string_view() : body.substr(body_sent);
      n = send_two(c.fd, head_left, body_left, MSG_DONTWAIT | (from_file ? MSG_MORE : 0));
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Sent::kBlocked : Sent::kFailed;
    }
    c.sent += static_cast<std::size_t>(n);
  }
  if (from_file) ::setsockopt(c.fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
  return Sent::kAll;
}

}  // namespace

bool HardenedServer::finish_response(std::unique_ptr<Connection>& c) {
  switch (send_response(*c)) {
    case Sent::kBlocked:
      // A client that does not read holds a descriptor, not a worker, until the write timeout.
      c->deadline = SteadyClock::now() + options_.write_timeout;
      park(std::move(c));
      return false;
    case Sent::kFailed:
      close_connection(std::move(c));
      return false;
    case Sent::kAll:
      break;
  }
  c->writing = false;
  c->fast.body = {};
  c->fast.owner.reset();
  c->fast.body_file = -1;
  c->fast.file_owner.reset();
  if (c->fast.close) {
    close_connection(std::move(c));
    return false;
  }
  // The next request: pipelined bytes already started it; otherwise an idle wait.
  c->in_request = !c->pending.empty();
  c->deadline = SteadyClock::now() +
                (c->in_request ? options_.request_deadline : options_.keep_alive_timeout);
  return true;
}

void HardenedServer::serve(std::unique_ptr<Connection> c) {
  if (c->writing && !finish_response(c)) return;
  while (!stopping_ && c->served < options_.keep_alive_max_requests) {
    const HeadResult r = read_head(*c, c->head, options_);
    if (r == HeadResult::kNeedMore) {
      park(std::move(c));
      return;
    }
    if (r == HeadResult::kClosed || r == HeadResult::kTimeout) break;
    if (r != HeadResult::kOk) {
      const int status = refuse_head(c->fd, r);
      if (options_.on_refused) options_.on_refused(status);
      break;
    }
    if (takeover_ || fast_path_) parse_head(c->head, c->parsed);
    if (takeover_ && c->parsed.path == takeover_path_) {
      if (c->registered) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
      if (takeover_(c->fd, c->parsed) == Takeover::kAdopted) return;  // not ours any more
      break;
    }
    const bool close = ++c->served == options_.keep_alive_max_requests || stopping_;
    if (!fast_path_ || !fast_path_(c->parsed, close, c->fast)) {
      c->stream.set_head(std::move(c->head));
      bool connection_closed = false;
      const bool processed = process_request(c->stream, close, connection_closed, nullptr);
      if (!c->stream.take_output(c->fast.head)) break;
      c->fast.body = {};
      c->fast.close = !processed || connection_closed || close;
    }
    c->sent = 0;
    c->writing = true;
    if (!finish_response(c)) return;
  }
  close_connection(std::move(c));
}

}  // namespace cortex_connectors::server
