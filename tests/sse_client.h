// SseClient: a minimal EventSource-style reader over a raw socket to 127.0.0.1, for the tests
// that speak to the real server's stream (test_stream.cpp, test_chaos.cpp).
#pragma once

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cortex_connectors::test {

// One event block: its fields, or a comment (data holds the text after ':').
struct Event {
  std::string id;
  std::string event;
  std::string data;
  bool comment = false;
};

// Sends `GET target` with `headers` on construction; head() then next()/next_event() read.
// Not thread-safe: one thread per client.
class SseClient {
 public:
  SseClient(int port, const std::string& target, const std::vector<std::string>& headers,
            int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // NOLINT
    std::string req =
        "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
    for (const auto& h : headers) req += h + "\r\n";
    req += "\r\n";
    REQUIRE(::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  }
  ~SseClient() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads until the response head is complete; returns it.
  std::string head(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buf_.find("\r\n\r\n") == std::string::npos && fill(deadline)) {
    }
    const auto end = buf_.find("\r\n\r\n");
    if (end == std::string::npos) return {};
    std::string h = buf_.substr(0, end + 4);
    buf_.erase(0, end + 4);
    return h;
  }

  // The next event or comment within `timeout`; nullopt on timeout or EOF.
  std::optional<Event> next(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto end = buf_.find("\n\n");
      if (end != std::string::npos) {
        const std::string block = buf_.substr(0, end);
        buf_.erase(0, end + 2);
        Event e;
        std::istringstream lines(block);
        std::string line;
        bool any_field = false;
        while (std::getline(lines, line)) {
          if (line.rfind(":", 0) == 0) {
            e.comment = true;
            e.data = line.substr(1);
            continue;
          }
          const auto colon = line.find(':');
          const std::string field = line.substr(0, colon);
          std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
          if (!value.empty() && value[0] == ' ') value.erase(0, 1);
          if (field == "data") {
            if (any_field && !e.data.empty()) e.data += "\n";
            e.data += value;
            any_field = true;
          } else if (field == "id") {
            e.id = value;
          } else if (field == "event") {
            e.event = value;
          } else if (field == "retry") {
            e.event = "retry";
            e.data = value;
          }
        }
        return e;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }

  // The next non-comment, non-retry event.
  std::optional<Event> next_event(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto e = next(left);
      if (!e) return std::nullopt;
      if (!e->comment && e->event != "retry") return e;
    }
  }

  bool eof() const { return eof_; }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

}  // namespace cortex_connectors::test
