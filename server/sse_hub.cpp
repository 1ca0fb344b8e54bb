#include "sse_hub.h"

#include <algorithm>
#include <cerrno>
#include <deque>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cortex_connectors/service_map.h"
#include "cortex_connectors/sse.h"
#include "log.h"

namespace cortex_connectors::server {

namespace {

using SteadyClock = std::chrono::steady_clock;
using Bytes = std::shared_ptr<const std::string>;

const Bytes& heartbeat_bytes() {
  static const Bytes kHeartbeat = std::make_shared<const std::string>(sse_comment("heartbeat"));
  return kHeartbeat;
}

}  // namespace

struct SseHub::Published {
  std::uint64_t version = 0;
  Bytes full;   // status event
  Bytes delta;  // delta event from version - 1 (null when none)
  std::uint64_t delta_from = 0;
  SteadyClock::time_point at;
};

struct SseHub::Subscriber {
  struct Chunk {
    Bytes data;
    std::size_t offset = 0;
    bool latest_event = false;  // completes the latest version for this subscriber
  };
  int fd = -1;
  bool delta_mode = false;
  std::uint64_t sent_version = 0;  // the version queued or sent last (0: none)
  std::deque<Chunk> queue;
  bool want_out = false;
  bool counts_for_latest = false;
  SteadyClock::time_point last_progress;
};

struct SseHub::Adoption {
  int fd;
  std::string preamble;
  bool delta_mode;
  std::optional<std::uint64_t> last_event_id;
};

SseHub::SseHub(SseHubOptions options, Metrics& metrics) : options_(options), metrics_(metrics) {}

SseHub::~SseHub() { stop(); }

bool SseHub::start() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  next_heartbeat_ = SteadyClock::now() + options_.heartbeat;
  thread_ = std::thread([this] { run(); });
  return true;
}

void SseHub::stop() {
  if (stopping_.exchange(true)) return;
  wake();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mutex_);
    for (auto& a : adoptions_) ::close(a.fd);
    adoptions_.clear();
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  epoll_fd_ = wake_fd_ = -1;
}

void SseHub::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

void SseHub::publish(std::shared_ptr<const Snapshot> snapshot) {
  if (!snapshot) return;
  std::lock_guard publish_lock(publish_mutex_);
  if (previous_snapshot_ && previous_snapshot_->version >= snapshot->version) return;
  auto p = std::make_shared<Published>();
  p->version = snapshot->version;
  p->full = std::make_shared<const std::string>(
      sse_status_event(*snapshot, format_rfc3339(std::chrono::system_clock::now())));
  p->at = SteadyClock::now();
  // Delta from the previous snapshot we published; parsing both payloads happens once here.
  if (previous_snapshot_) {
    if (auto delta = sse_delta_event(*previous_snapshot_, *snapshot)) {
      p->delta = std::make_shared<const std::string>(std::move(*delta));
      p->delta_from = previous_snapshot_->version;
    }
  }
  previous_snapshot_ = snapshot;
  {
    std::lock_guard lock(mutex_);
    if (latest_ && latest_->version >= p->version) return;
    latest_ = std::move(p);
    published_ = true;
  }
  wake();
}

bool SseHub::adopt(int fd, std::string preamble, bool delta_mode,
                   std::optional<std::uint64_t> last_event_id) {
  if (stopping_) return false;
  // Reserve a place first, so that concurrent adoptions cannot pass the cap.
  if (count_.fetch_add(1) >= options_.max_subscribers) {
    count_.fetch_sub(1);
    return false;
  }
  {
    std::lock_guard lock(mutex_);
    adoptions_.push_back(Adoption{fd, std::move(preamble), delta_mode, last_event_id});
  }
  wake();
  return true;
}

void SseHub::run() {
  std::vector<epoll_event> events(1024);
  while (!stopping_) {
    const auto now = SteadyClock::now();
    const auto wait_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat_ - now).count();
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                               static_cast<int>(std::clamp<long long>(wait_ms, 0, 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      const std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
      if (fd == wake_fd_) {
        std::uint64_t v = 0;
        [[maybe_unused]] const auto r = ::read(wake_fd_, &v, sizeof v);
        continue;
      }
      if (static_cast<std::size_t>(fd) >= by_fd_.size() || !by_fd_[static_cast<std::size_t>(fd)]) {
        continue;
      }
      Subscriber& s = *by_fd_[static_cast<std::size_t>(fd)];
      if ((ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        close_subscriber(fd);
        continue;
      }
      if ((ev & EPOLLIN) != 0) {
        // Clients send nothing after the request; read and drop, notice EOF.
        char buf[1024];
        const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          close_subscriber(fd);
          continue;
        }
      }
      if ((ev & EPOLLOUT) != 0) flush(s);
    }
    if (stopping_) break;
    take_adoptions();
    on_publish();
    if (SteadyClock::now() >= next_heartbeat_) heartbeat_and_evict();
  }
  for (std::size_t fd = 0; fd < by_fd_.size(); ++fd) {
    if (by_fd_[fd]) close_subscriber(static_cast<int>(fd));
  }
}

void SseHub::take_adoptions() {
  std::vector<Adoption> incoming;
  {
    std::lock_guard lock(mutex_);
    incoming.swap(adoptions_);
  }
  for (auto& a : incoming) {
    const int flags = ::fcntl(a.fd, F_GETFL, 0);
    ::fcntl(a.fd, F_SETFL, flags | O_NONBLOCK);
    auto s = std::make_unique<Subscriber>();
    s->fd = a.fd;
    s->delta_mode = a.delta_mode;
    s->last_progress = SteadyClock::now();
    s->queue.push_back(
        {std::make_shared<const std::string>(std::move(a.preamble) + sse_retry(options_.retry_ms)),
         0, false});
    if (a.last_event_id && loop_latest_ && *a.last_event_id == loop_latest_->version) {
      s->sent_version = loop_latest_->version;  // the client has it: nothing to resend
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = a.fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, a.fd, &ev) != 0) {
      ::close(a.fd);
      count_.fetch_sub(1);
      continue;
    }
    if (static_cast<std::size_t>(a.fd) >= by_fd_.size()) {
      by_fd_.resize(static_cast<std::size_t>(a.fd) + 1);
    }
    Subscriber& ref = *s;
    by_fd_[static_cast<std::size_t>(a.fd)] = std::move(s);
    metrics_.set_sse_subscribers(static_cast<std::int64_t>(count_.load()));
    if (loop_latest_) enqueue_latest(ref);
    flush(ref);
  }
}

void SseHub::on_publish() {
  std::shared_ptr<const Published> latest;
  {
    std::lock_guard lock(mutex_);
    if (!published_) return;
    published_ = false;
    latest = latest_;
  }
  if (!latest || (loop_latest_ && loop_latest_->version >= latest->version)) return;
  loop_latest_ = std::move(latest);
  // Every connected subscriber owes this version; the broadcast ends when the last one has
  // written it (or left).
  pending_latest_ = 0;
  for (auto& s : by_fd_) {
    if (!s) continue;
    s->counts_for_latest = true;
    ++pending_latest_;
  }
  broadcast_open_ = pending_latest_ > 0;
  for (std::size_t fd = 0; fd < by_fd_.size(); ++fd) {
    Subscriber* s = by_fd_[fd].get();
    if (s == nullptr || !s->queue.empty()) continue;  // busy ones get it once drained
    enqueue_latest(*s);
    flush(*s);
  }
}

void SseHub::settle_latest() {
  if (pending_latest_ > 0 && --pending_latest_ == 0 && broadcast_open_) {
    broadcast_open_ = false;
    metrics_.observe_sse_broadcast(SteadyClock::now() - loop_latest_->at);
  }
}

void SseHub::enqueue_latest(Subscriber& s) {
  const auto& p = loop_latest_;
  if (!p || s.sent_version >= p->version) return;
  const bool delta =
      s.delta_mode && p->delta && s.sent_version != 0 && s.sent_version == p->delta_from;
  s.queue.push_back({delta ? p->delta : p->full, 0, true});
  s.sent_version = p->version;
}

void SseHub::flush(Subscriber& s) {
  while (!s.queue.empty()) {
    auto& chunk = s.queue.front();
    const std::string& data = *chunk.data;
    const ssize_t n =
        ::send(s.fd, data.data() + chunk.offset, data.size() - chunk.offset, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      close_subscriber(s.fd);
      return;
    }
    s.last_progress = SteadyClock::now();
    chunk.offset += static_cast<std::size_t>(n);
    if (chunk.offset < data.size()) break;
    const bool finished_latest = chunk.latest_event;
    s.queue.pop_front();
    if (finished_latest && s.counts_for_latest && loop_latest_ &&
        s.sent_version == loop_latest_->version) {
      s.counts_for_latest = false;
      settle_latest();
    }
    if (s.queue.empty()) enqueue_latest(s);  // conflation: only the newest, after draining
  }
  const bool want_out = !s.queue.empty();
  if (want_out != s.want_out) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0u);
    ev.data.fd = s.fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, s.fd, &ev);
    s.want_out = want_out;
  }
}

void SseHub::close_subscriber(int fd) {
  auto& slot = by_fd_[static_cast<std::size_t>(fd)];
  if (!slot) return;
  if (slot->counts_for_latest) settle_latest();
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  slot.reset();
  count_.fetch_sub(1);
  metrics_.set_sse_subscribers(static_cast<std::int64_t>(count_.load()));
}

void SseHub::heartbeat_and_evict() {
  const auto now = SteadyClock::now();
  next_heartbeat_ = now + options_.heartbeat;
  for (auto& s : by_fd_) {
    if (!s) continue;
    if (!s->queue.empty()) {
      if (now - s->last_progress > options_.stall_timeout) close_subscriber(s->fd);
      continue;
    }
    s->queue.push_back({heartbeat_bytes(), 0, false});
    flush(*s);
  }
}

}  // namespace cortex_connectors::server
