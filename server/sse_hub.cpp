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
#include "cortex_connectors/trace_context.h"
#include "tracing.h"

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
  // Earlier versions of the same signed bytes (a replica adopted the version its publisher gave
  // them anew, Registry::publish_signed), newest last: a client holding one of them is current.
  std::vector<std::uint64_t> same_as;
  Bytes full;  // status event
  // Delta events from the previous version and from each of its `same_as` (they differ only
  // in "from", which a client checks against the id it holds); empty when none.
  std::vector<std::pair<std::uint64_t, Bytes>> deltas;
  // The signed payload of this version, a view into `full` (or into `payload_copy`), and its
  // layout: what deltas from and to it are computed from. The hub keeps no Snapshot: the
  // registry replaces a large one with its compressed copy after publishing, and a Snapshot
  // held here would keep the first copy (~4 MB at 10 000 connectors) alive as long as this
  // version is the newest.
  std::string_view payload;
  std::string payload_copy;  // only if `full` does not hold the body verbatim
  std::shared_ptr<const PayloadLayout> layout;
  std::string signature;
  std::string signatures;
  SteadyClock::time_point at;
  std::chrono::system_clock::time_point at_wall;
  std::string trace_id;  // of the broadcast span
  std::string parent_span_id;
  // Broadcast accounting across loops (see SseHub::loop_settled).
  mutable std::atomic<std::size_t> loops_pending{0};
  mutable std::atomic<bool> had_subscribers{false};

  PayloadView payload_view() const { return {payload, layout.get()}; }
  // True when a client holding version `v` has these bytes.
  bool current_for(std::uint64_t v) const {
    return v == version || std::find(same_as.begin(), same_as.end(), v) != same_as.end();
  }
  // The delta event for a client holding version `v`, or null.
  Bytes delta_from(std::uint64_t v) const {
    for (const auto& [from, bytes] : deltas) {
      if (from == v) return bytes;
    }
    return nullptr;
  }
};

struct SseHub::Subscriber {
  struct Chunk {
    Bytes data;
    std::size_t offset = 0;
    bool latest_event = false;  // completes the latest version for this subscriber
  };
  int fd = -1;
  bool delta_mode = false;
  std::uint64_t sent_version = 0;   // the version queued or sent last (0: none)
  std::uint64_t last_event_id = 0;  // the client's, until something is sent
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
  std::shared_ptr<const std::string> resume;  // delta from last_event_id to resume_to
  std::uint64_t resume_to = 0;
};

// One epoll thread and the subscribers it owns.
class SseHub::Loop {
 public:
  explicit Loop(SseHub& hub) : hub_(hub) {}
  ~Loop() { stop(); }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  bool start() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epoll_fd_ < 0 || wake_fd_ < 0) return false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    next_heartbeat_ = SteadyClock::now() + hub_.options_.heartbeat;
    thread_ = std::thread([this] { run(); });
    return true;
  }

  // REQUIRES: hub_.stopping_ is set.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;  // offer() and add() write to wake_fd_ no more
    }
    if (wake_fd_ >= 0) wake();
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

  void offer(std::shared_ptr<const Published> p) {
    std::lock_guard lock(mutex_);
    if (closed_ || (offered_ && offered_->version >= p->version)) return;
    offered_ = std::move(p);
    wake();
  }

  // Returns false (the caller keeps `a.fd`) once the loop is stopping.
  bool add(Adoption a) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    adoptions_.push_back(std::move(a));
    wake();
    return true;
  }

 private:
  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
  }

  void run() {
    std::vector<epoll_event> events(1024);
    while (!hub_.stopping_) {
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
        if (static_cast<std::size_t>(fd) >= by_fd_.size() ||
            !by_fd_[static_cast<std::size_t>(fd)]) {
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
      if (hub_.stopping_) break;
      on_publish();
      take_adoptions();
      if (SteadyClock::now() >= next_heartbeat_) heartbeat_and_evict();
    }
    for (std::size_t fd = 0; fd < by_fd_.size(); ++fd) {
      if (by_fd_[fd]) close_subscriber(static_cast<int>(fd));
    }
  }

  void take_adoptions() {
    std::vector<Adoption> incoming;
    {
      std::lock_guard lock(mutex_);
      incoming.swap(adoptions_);
    }
    if (incoming.empty()) return;
    // A client may reconnect through this loop with the id another loop has just sent it,
    // before this loop has seen that version's offer: catch up with the hub first.
    apply(hub_.latest());
    for (auto& a : incoming) {
      const int flags = ::fcntl(a.fd, F_GETFL, 0);
      ::fcntl(a.fd, F_SETFL, flags | O_NONBLOCK);
      auto s = std::make_unique<Subscriber>();
      s->fd = a.fd;
      s->delta_mode = a.delta_mode;
      s->last_progress = SteadyClock::now();
      s->queue.push_back({std::make_shared<const std::string>(std::move(a.preamble) +
                                                              sse_retry(hub_.options_.retry_ms)),
                          0, false});
      s->last_event_id = a.last_event_id.value_or(0);
      if (a.last_event_id && latest_ && latest_->current_for(*a.last_event_id)) {
        s->sent_version = *a.last_event_id;  // the client has it: nothing to resend
      } else if (a.resume && latest_ && latest_->version >= a.resume_to) {
        // Resuming from an older version: its delta, then the newest if that moved on.
        s->queue.push_back({std::move(a.resume), 0, latest_->version == a.resume_to});
        s->sent_version = a.resume_to;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = a.fd;
      if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, a.fd, &ev) != 0) {
        ::close(a.fd);
        hub_.count_.fetch_sub(1);
        continue;
      }
      if (static_cast<std::size_t>(a.fd) >= by_fd_.size()) {
        by_fd_.resize(static_cast<std::size_t>(a.fd) + 1);
      }
      Subscriber& ref = *s;
      by_fd_[static_cast<std::size_t>(a.fd)] = std::move(s);
      hub_.metrics_.set_sse_subscribers(static_cast<std::int64_t>(hub_.count_.load()));
      if (latest_) enqueue_latest(ref);
      flush(ref);
    }
  }

  void on_publish() {
    std::shared_ptr<const Published> offered;
    {
      std::lock_guard lock(mutex_);
      offered = std::move(offered_);
    }
    apply(std::move(offered));
  }

  // Makes `offered` this loop's latest version, if it is newer, and starts sending it.
  void apply(std::shared_ptr<const Published> offered) {
    if (!offered || (latest_ && latest_->version >= offered->version)) return;
    latest_ = std::move(offered);
    // Every connected subscriber owes this version; this loop's share of the broadcast ends
    // when the last of them has written it (or left).
    pending_latest_ = 0;
    for (auto& s : by_fd_) {
      if (!s) continue;
      // A subscriber holding the same bytes under an earlier version is owed nothing.
      s->counts_for_latest = !latest_->current_for(holds(*s));
      if (s->counts_for_latest) ++pending_latest_;
    }
    if (pending_latest_ == 0) {
      hub_.loop_settled(*latest_);
      return;
    }
    latest_->had_subscribers = true;
    for (std::size_t fd = 0; fd < by_fd_.size(); ++fd) {
      Subscriber* s = by_fd_[fd].get();
      if (s == nullptr || !s->queue.empty()) continue;  // busy ones get it once drained
      enqueue_latest(*s);
      flush(*s);
    }
  }

  void settle_latest() {
    if (pending_latest_ > 0 && --pending_latest_ == 0) hub_.loop_settled(*latest_);
  }

  // Until something is sent, the version the client has is its Last-Event-ID: one that
  // reconnects with version N while N + 1 reaches the hub (adopt() saw N as the newest, this
  // loop already has N + 1) is owed N + 1's delta, not a status event.
  static std::uint64_t holds(const Subscriber& s) {
    return s.sent_version != 0 ? s.sent_version : s.last_event_id;
  }

  void enqueue_latest(Subscriber& s) {
    const auto& p = latest_;
    if (!p) return;
    const std::uint64_t has = holds(s);
    // The client's id stays what it was sent: a later delta must name it as "from".
    if (has != 0 && p->current_for(has)) {
      s.sent_version = has;
      return;
    }
    if (s.sent_version >= p->version) return;
    Bytes delta = s.delta_mode && has != 0 ? p->delta_from(has) : nullptr;
    s.queue.push_back({delta ? std::move(delta) : p->full, 0, true});
    s.sent_version = p->version;
  }

  void flush(Subscriber& s) {
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
      if (finished_latest && s.counts_for_latest && latest_ &&
          latest_->current_for(s.sent_version)) {
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

  void close_subscriber(int fd) {
    auto& slot = by_fd_[static_cast<std::size_t>(fd)];
    if (!slot) return;
    const bool owed_latest = slot->counts_for_latest;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    slot.reset();
    hub_.count_.fetch_sub(1);
    hub_.metrics_.set_sse_subscribers(static_cast<std::int64_t>(hub_.count_.load()));
    if (owed_latest) settle_latest();
  }

  void heartbeat_and_evict() {
    const auto now = SteadyClock::now();
    next_heartbeat_ = now + hub_.options_.heartbeat;
    for (auto& s : by_fd_) {
      if (!s) continue;
      if (!s->queue.empty()) {
        if (now - s->last_progress > hub_.options_.stall_timeout) close_subscriber(s->fd);
        continue;
      }
      s->queue.push_back({heartbeat_bytes(), 0, false});
      flush(*s);
    }
  }

  SseHub& hub_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;

  std::mutex mutex_;  // guards the three below
  std::shared_ptr<const Published> offered_;
  std::vector<Adoption> adoptions_;
  bool closed_ = false;

  // Loop-thread state.
  std::shared_ptr<const Published> latest_;
  std::vector<std::unique_ptr<Subscriber>> by_fd_;
  std::size_t pending_latest_ = 0;  // subscribers still writing the latest event
  SteadyClock::time_point next_heartbeat_;
};

SseHub::SseHub(SseHubOptions options, Metrics& metrics) : options_(options), metrics_(metrics) {}

SseHub::~SseHub() { stop(); }

bool SseHub::start() {
  std::size_t n = options_.loops;
  if (n == 0) n = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 4);
  for (std::size_t i = 0; i < n; ++i) {
    loops_.push_back(std::make_unique<Loop>(*this));
    if (!loops_.back()->start()) return false;
  }
  return true;
}

void SseHub::stop() {
  if (stopping_.exchange(true)) return;
  for (auto& loop : loops_) loop->stop();
}

void SseHub::publish(std::shared_ptr<const Snapshot> snapshot, std::string trace_id,
                     std::string parent_span_id, bool unsampled) {
  if (!snapshot || loops_.empty() || stopping_) return;
  std::lock_guard publish_lock(publish_mutex_);
  if (previous_ && previous_->version >= snapshot->version) return;
  auto p = std::make_shared<Published>();
  p->version = snapshot->version;
  auto status =
      sse_status_event_with_body(*snapshot, format_rfc3339(std::chrono::system_clock::now()));
  p->full = std::make_shared<const std::string>(std::move(status.bytes));
  p->signature = snapshot->signature;
  p->signatures = snapshot->signatures;
  p->layout = snapshot->shared_layout();
  // The status event carries the body verbatim, with a copy of the payload as the fallback.
  if (status.body_offset != std::string::npos) {
    p->payload =
        snapshot->canonical_payload_in(std::string_view(*p->full).substr(status.body_offset));
  } else {
    p->payload_copy = std::string(snapshot->canonical_payload());
    p->payload = p->payload_copy;
  }
  p->at = SteadyClock::now();
  p->at_wall = std::chrono::system_clock::now();
  if (!unsampled && options_.tracer != nullptr && options_.tracer->enabled()) {
    if (trace_id.empty()) {
      trace_id = generate_trace_id();
      if (!options_.tracer->sample(trace_id, std::nullopt)) trace_id.clear();
    }
    p->trace_id = std::move(trace_id);
    p->parent_span_id = std::move(parent_span_id);
  }
  p->loops_pending = loops_.size();
  if (previous_ && snapshot->canonical_payload() == previous_->payload &&
      snapshot->signature == previous_->signature &&
      snapshot->signatures == previous_->signatures) {
    // The same bytes under a higher version: no event for anyone; new subscribers and later
    // events carry the new id. At most a few earlier ids are remembered.
    p->same_as = previous_->same_as;
    p->same_as.push_back(previous_->version);
    constexpr std::size_t kSameAsKept = 8;
    if (p->same_as.size() > kSameAsKept) p->same_as.erase(p->same_as.begin());
  } else if (previous_) {
    // Deltas from the previous snapshot we published, one per id it went by.
    std::vector<std::uint64_t> froms = previous_->same_as;
    froms.push_back(previous_->version);
    for (const std::uint64_t from : froms) {
      if (auto delta =
              sse_delta_event(previous_->payload_view(), from, snapshot->payload_view(),
                              snapshot->version, snapshot->signature, snapshot->signatures)) {
        p->deltas.emplace_back(from, std::make_shared<const std::string>(std::move(*delta)));
      }
    }
  }
  previous_ = p;
  {
    std::lock_guard lock(latest_mutex_);
    latest_ = p;
  }
  for (auto& loop : loops_) loop->offer(p);
}

std::uint64_t SseHub::latest_version() const {
  const auto p = latest();
  return p ? p->version : 0;
}

std::shared_ptr<const SseHub::Published> SseHub::latest() const {
  std::lock_guard lock(latest_mutex_);
  return latest_;
}

std::shared_ptr<const std::string> SseHub::resume_delta(std::uint64_t from,
                                                        const std::shared_ptr<const Published>& p) {
  if (!options_.history) return nullptr;
  std::lock_guard lock(resume_mutex_);
  if (resume_to_ != p->version) {
    resume_cache_.clear();
    resume_to_ = p->version;
  }
  if (auto it = resume_cache_.find(from); it != resume_cache_.end()) return it->second;
  auto entry = options_.history->load(from);
  if (!entry) return nullptr;
  // A recorded payload's layout is found by scanning it (an entry recorded by an older server
  // included); a payload of another shape is diffed as trees (sse.h).
  auto event = sse_delta_event(PayloadView{entry->payload, nullptr}, from, p->payload_view(),
                               p->version, p->signature, p->signatures);
  if (!event) return nullptr;
  auto bytes = std::make_shared<const std::string>(std::move(*event));
  // Bounded: clients resume from a few versions at a time, but ids are the client's to choose.
  if (resume_cache_.size() >= 64) resume_cache_.erase(resume_cache_.begin());
  resume_cache_.emplace(from, bytes);
  return bytes;
}

void SseHub::loop_settled(const Published& p) {
  // A loop that never saw this version (a newer one came first) never settles it: a superseded
  // broadcast is not recorded, as with a single loop.
  if (p.loops_pending.fetch_sub(1) == 1 && p.had_subscribers) {
    const auto elapsed = SteadyClock::now() - p.at;
    metrics_.observe_sse_broadcast(elapsed);
    if (!p.trace_id.empty()) {
      Span span;
      span.trace_id = p.trace_id;
      span.span_id = generate_span_id();
      span.parent_span_id = p.parent_span_id;
      span.name = "sse.broadcast";
      span.start_ns = unix_nanos(p.at_wall);
      span.end_ns = span.start_ns +
                    static_cast<std::uint64_t>(
                        std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
      span.attributes = {{"snapshot.version", p.version},
                         {"sse.subscribers", count_.load()},
                         {"sse.loops", loops_.size()}};
      options_.tracer->record(std::move(span));
    }
  }
}

bool SseHub::adopt(int fd, std::string preamble, bool delta_mode,
                   std::optional<std::uint64_t> last_event_id) {
  if (stopping_ || loops_.empty()) return false;
  // Reserve a place first, so that concurrent adoptions cannot pass the cap.
  if (count_.fetch_add(1) >= options_.max_subscribers) {
    count_.fetch_sub(1);
    return false;
  }
  const auto newest = latest();
  // Before this process has published anything, an id can only come from an earlier process,
  // whose version 1 may be other content than ours (a new state directory, --no-history): the
  // client gets the full status event, as without an id.
  if (!newest) last_event_id.reset();
  Adoption a{fd, std::move(preamble), delta_mode, last_event_id, nullptr, 0};
  if (delta_mode && last_event_id) {
    if (const auto& p = newest;
        p && *last_event_id < p->version && !p->current_for(*last_event_id)) {
      a.resume = p->delta_from(*last_event_id);
      if (!a.resume) a.resume = resume_delta(*last_event_id, p);
      if (a.resume) a.resume_to = p->version;
    }
  }
  Loop& loop = *loops_[next_loop_.fetch_add(1) % loops_.size()];
  if (!loop.add(std::move(a))) {
    count_.fetch_sub(1);
    return false;
  }
  return true;
}

}  // namespace cortex_connectors::server
