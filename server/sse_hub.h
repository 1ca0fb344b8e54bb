// SseHub: one epoll thread that owns every SSE subscriber.
//
// A worker thread authenticates the request, then hands the socket over with adopt(); from then
// on the hub writes shared, pre-framed event bytes with non-blocking sends, resumes partial
// writes on EPOLLOUT, notices closed peers (EPOLLRDHUP), writes heartbeat comments on a timer,
// and conflates: a subscriber that cannot keep up is sent the newest snapshot once it drains,
// never a queue of every intermediate one. A subscriber whose socket has not drained for
// `stall_timeout` is evicted; beyond `max_subscribers` adopt() refuses. Event bytes are built
// once per snapshot in publish(), not once per subscriber.
//
// Thread-safety: publish(), adopt(), subscribers() and stop() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cortex_connectors/metrics.h"
#include "cortex_connectors/snapshot.h"

namespace cortex_connectors::server {

struct SseHubOptions {
  std::chrono::milliseconds heartbeat{15000};
  std::size_t max_subscribers = 20000;
  std::chrono::milliseconds stall_timeout{30000};
  std::uint32_t retry_ms = 3000;  // the client's reconnection delay ("retry:" field)
};

class SseHub {
 public:
  SseHub(SseHubOptions options, Metrics& metrics);
  ~SseHub();  // stop()
  SseHub(const SseHub&) = delete;
  SseHub& operator=(const SseHub&) = delete;

  // Starts the epoll thread. Returns false when the kernel refuses epoll/eventfd.
  bool start();
  // Ends every stream (the sockets are shut down and closed) and joins the thread.
  void stop();

  // Builds the status and delta events of `snapshot` and sends them to every subscriber.
  void publish(std::shared_ptr<const Snapshot> snapshot);

  // Takes ownership of connected socket `fd`: writes `preamble` (the response head), a retry
  // field, then the current status event unless `last_event_id` names the current version, and
  // every change afterwards (delta events in `delta_mode` after the first full one).
  // Returns false, leaving `fd` to the caller, when the hub is full or stopping.
  bool adopt(int fd, std::string preamble, bool delta_mode,
             std::optional<std::uint64_t> last_event_id);

  std::size_t subscribers() const noexcept { return count_.load(); }
  std::size_t max_subscribers() const noexcept { return options_.max_subscribers; }

 private:
  struct Published;
  struct Subscriber;
  struct Adoption;

  void run();
  void take_adoptions();
  void on_publish();
  void enqueue_latest(Subscriber& s);
  void flush(Subscriber& s);
  void close_subscriber(int fd);
  // One subscriber finished (or abandoned) the latest version; records the broadcast time
  // once the last one has.
  void settle_latest();
  void heartbeat_and_evict();
  void wake();

  SseHubOptions options_;
  Metrics& metrics_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> count_{0};

  std::mutex mutex_;  // guards the three below
  std::shared_ptr<const Published> latest_;
  std::vector<Adoption> adoptions_;
  bool published_ = false;

  // Loop-thread state.
  std::shared_ptr<const Published> loop_latest_;
  std::vector<std::unique_ptr<Subscriber>> by_fd_;
  std::size_t pending_latest_ = 0;  // subscribers still writing the latest event
  bool broadcast_open_ = false;     // the latest version's broadcast is not yet recorded
  std::chrono::steady_clock::time_point next_heartbeat_;

  // publish() state: the snapshot the last delta is computed from.
  std::mutex publish_mutex_;  // serialises publish(); guards previous_snapshot_
  std::shared_ptr<const Snapshot> previous_snapshot_;
};

}  // namespace cortex_connectors::server
