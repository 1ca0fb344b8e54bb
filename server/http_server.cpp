#include "http_server.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cortex_connectors::server {

namespace {

using SteadyClock = std::chrono::steady_clock;

int remaining_ms(SteadyClock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 60000));
}

bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char a = line[i];
    const char b = name[i];
    const char la = (a >= 'A' && a <= 'Z') ? static_cast<char>(a + 32) : a;
    if (la != b) return false;
  }
  return true;
}

// The Stream httplib reads the (already read and checked) request head from and writes the
// response to. Reads past the head return EOF: GET and HEAD carry no body here.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int fd, std::chrono::milliseconds write_timeout)
      : fd_(fd), write_timeout_(write_timeout) {}

  void set_head(std::string head) {
    head_ = std::move(head);
    head_pos_ = 0;
  }

  bool is_readable() const override { return head_pos_ < head_.size(); }
  bool is_writable() const override {
    pollfd p{fd_, POLLOUT, 0};
    return ::poll(&p, 1, static_cast<int>(write_timeout_.count())) > 0 &&
           (p.revents & (POLLERR | POLLHUP)) == 0;
  }
  ssize_t read(char* ptr, size_t size) override {
    const std::size_t n = std::min(size, head_.size() - head_pos_);
    std::memcpy(ptr, head_.data() + head_pos_, n);
    head_pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    std::size_t sent = 0;
    while (sent < size) {
      const ssize_t n = ::send(fd_, ptr + sent, size - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && is_writable()) continue;
      return -1;
    }
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    address(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address(::getsockname, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  template <class F>
  void address(F f, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (f(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;  // NOLINT
    char host[64] = {};
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);  // NOLINT
      ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);  // NOLINT
      ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
    ip = host;
  }

  int fd_;
  std::chrono::milliseconds write_timeout_;
  std::string head_;
  std::size_t head_pos_ = 0;
};

enum class HeadResult { kOk, kClosed, kTimeout, kTooLarge, kTooManyHeaders, kMethod, kBody, kBad };

// Reads one request head (request line + headers + CRLF CRLF) into `head`, keeping any bytes
// after it in `pending` for the next request.
class HeadReader {
 public:
  HeadReader(int fd, int stop_fd, const HardeningOptions& options)
      : fd_(fd), stop_fd_(stop_fd), options_(options) {}

  HeadResult read(std::string& head, std::chrono::milliseconds idle_timeout) {
    // Wait for the first byte of the request: the idle keep-alive time.
    if (pending_.empty()) {
      const auto r = wait_readable(SteadyClock::now() + idle_timeout);
      if (r != HeadResult::kOk) return r;
    }
    const auto deadline = SteadyClock::now() + options_.request_deadline;
    std::size_t end = std::string::npos;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (pending_.size() > options_.header_budget_bytes) return HeadResult::kTooLarge;
      if (auto r = wait_readable(deadline); r != HeadResult::kOk) {
        return r == HeadResult::kClosed && !pending_.empty() ? HeadResult::kBad : r;
      }
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return pending_.empty() ? HeadResult::kClosed : HeadResult::kBad;
      pending_.append(buf, static_cast<std::size_t>(n));
    }
    if (end + 4 > options_.header_budget_bytes) return HeadResult::kTooLarge;
    head.assign(pending_, 0, end + 4);
    pending_.erase(0, end + 4);
    return sanitize(head);
  }

 private:
  HeadResult wait_readable(SteadyClock::time_point deadline) {
    for (;;) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      const int ms = remaining_ms(deadline);
      if (ms == 0) return HeadResult::kTimeout;
      const int n = ::poll(p, 2, ms);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return HeadResult::kClosed;
      if (n == 0) return HeadResult::kTimeout;
      if (p[1].revents != 0) return HeadResult::kClosed;  // shutting down
      if (p[0].revents != 0) return HeadResult::kOk;
    }
  }

  // Checks the method, counts headers, refuses bodies and drops Range / If-Range.
  HeadResult sanitize(std::string& head) const {
    const std::string_view h = head;
    const auto first_sp = h.find(' ');
    if (first_sp == std::string_view::npos) return HeadResult::kBad;
    const std::string_view method = h.substr(0, first_sp);
    if (method != "GET" && method != "HEAD") return HeadResult::kMethod;
    std::string out;
    out.reserve(head.size());
    std::size_t pos = 0;
    std::size_t count = 0;
    bool first = true;
    while (pos < h.size()) {
      const auto eol = h.find("\r\n", pos);
      const std::string_view line = h.substr(pos, eol - pos);
      pos = eol + 2;
      if (line.empty()) break;
      if (!first) {
        if (++count > options_.max_header_count) return HeadResult::kTooManyHeaders;
        if (iequals_prefix(line, "range:") || iequals_prefix(line, "if-range:")) continue;
        if (iequals_prefix(line, "transfer-encoding:")) return HeadResult::kBody;
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
    head = std::move(out);
    return HeadResult::kOk;
  }

  int fd_;
  int stop_fd_;
  const HardeningOptions& options_;
  std::string pending_;
};

// Answers a refused request directly and closes: httplib never sees it.
void refuse(int fd, int status, std::string_view reason, std::string_view detail,
            std::string_view extra_headers = {}) {
  const std::string body = "{\"detail\":\"[brAInwav] " + std::string(detail) + "\"}";
  std::string response =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n" + body;
  send_all(fd, response);
}

// Splits a checked head (see HeadReader::sanitize) into its parts.
RequestHead parse_head(std::string_view head) {
  RequestHead h;
  auto eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const auto sp1 = line.find(' ');
  const auto sp2 = line.find(' ', sp1 + 1);
  h.method = line.substr(0, sp1);
  h.target =
      line.substr(sp1 + 1, sp2 == std::string_view::npos ? std::string_view::npos : sp2 - sp1 - 1);
  const auto q = h.target.find('?');
  h.path = h.target.substr(0, q);
  if (q != std::string_view::npos) h.query = h.target.substr(q + 1);
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
  return h;
}

}  // namespace

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
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

void HardenedServer::set_takeover(std::string path, TakeoverHook hook) {
  takeover_path_ = std::move(path);
  takeover_ = std::move(hook);
}

HardenedServer::HardenedServer(HardeningOptions options)
    : options_(options), stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second instance share
  // the port silently.
  set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  set_tcp_nodelay(true);
  // Only for the Keep-Alive response header: the loop below enforces both.
  set_keep_alive_max_count(options_.keep_alive_max_requests);
  set_keep_alive_timeout(
      std::chrono::duration_cast<std::chrono::seconds>(options_.keep_alive_timeout).count());
}

HardenedServer::~HardenedServer() {
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

int HardenedServer::bind(const std::string& host, int port, int backlog) {
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

void HardenedServer::shutdown() {
  stopping_ = true;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof one);
  stop();
}

bool HardenedServer::process_and_close_socket(socket_t sock) {
  HeadReader reader(sock, stop_fd_, options_);
  ConnectionStream stream(sock, options_.write_timeout);
  for (std::size_t served = 0; served < options_.keep_alive_max_requests && !stopping_; ++served) {
    std::string head;
    const auto idle = served == 0 ? options_.request_deadline : options_.keep_alive_timeout;
    const HeadResult r = reader.read(head, idle);
    if (r == HeadResult::kClosed || r == HeadResult::kTimeout) break;
    if (r == HeadResult::kMethod) {
      refuse(sock, 405, "Method Not Allowed", "method not allowed", "Allow: GET, HEAD\r\n");
      break;
    }
    if (r == HeadResult::kTooLarge || r == HeadResult::kTooManyHeaders) {
      refuse(sock, 431, "Request Header Fields Too Large", "request header fields too large");
      break;
    }
    if (r == HeadResult::kBody) {
      refuse(sock, 400, "Bad Request", "request bodies are not accepted");
      break;
    }
    if (r == HeadResult::kBad) {
      refuse(sock, 400, "Bad Request", "malformed request");
      break;
    }
    if (takeover_) {
      const RequestHead parsed = parse_head(head);
      if (parsed.path == takeover_path_) {
        if (takeover_(sock, parsed) == Takeover::kAdopted) return true;
        break;
      }
    }
    stream.set_head(std::move(head));
    const bool close = served + 1 == options_.keep_alive_max_requests || stopping_;
    bool connection_closed = false;
    if (!process_request(stream, close, connection_closed, nullptr) || connection_closed || close) {
      break;
    }
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return true;
}

}  // namespace cortex_connectors::server
