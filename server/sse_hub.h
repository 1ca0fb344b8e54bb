// SseHub: a few epoll threads ("loops", one per core up to SseHubOptions::loops) that own every
// SSE subscriber; each subscriber belongs to one loop, assigned round-robin.
//
// A worker thread authenticates the request, then hands the socket over with adopt(); from then
// on its loop writes shared, pre-framed event bytes with non-blocking sends, resumes partial
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
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cortex_connectors/history.h"
#include "cortex_connectors/metrics.h"
#include "cortex_connectors/snapshot.h"

namespace cortex_connectors::server {

class Tracer;  // tracing.h

struct SseHubOptions {
  std::chrono::milliseconds heartbeat{15000};
  std::size_t max_subscribers = 20000;
  std::chrono::milliseconds stall_timeout{30000};
  std::uint32_t retry_ms = 3000;  // the client's reconnection delay ("retry:" field)
  // Send threads. A send to a loopback subscriber costs ~10 us of the sender's CPU, so one
  // thread needs ~100 ms to reach 10 000 subscribers; loops split that across cores.
  // 0: one per core, at most 4.
  std::size_t loops = 0;
  // Recorded snapshots: a delta-mode subscriber whose Last-Event-ID names an older retained
  // version is sent the delta from it (also after a restart). Null: only the previous version's
  // delta is known.
  std::shared_ptr<HistoryRecorder> history;
  // Where "sse.broadcast" spans go (ServerContext::tracer); null: none. Must outlive the hub.
  const Tracer* tracer = nullptr;
};

class SseHub {
 public:
  SseHub(SseHubOptions options, Metrics& metrics);
  ~SseHub();  // stop()
  SseHub(const SseHub&) = delete;
  SseHub& operator=(const SseHub&) = delete;

  // Starts the loops. Returns false when the kernel refuses epoll/eventfd or a thread.
  bool start();
  // Ends every stream (the sockets are shut down and closed) and joins the loops.
  void stop();

  // Builds the status and delta events of `snapshot` and sends them to every subscriber. A
  // snapshot with the bytes of the previous one under a higher version (a replica adopting the
  // version its publisher gave them, Registry::publish_signed) sends nothing: later events and
  // new subscribers carry its id, and a client holding either id is current. When
  // spans are exported (tracing.h), the broadcast becomes an "sse.broadcast" span, a child of
  // span `parent_span_id` in trace `trace_id` (a new trace when empty, if the sampler samples
  // it). `unsampled`: the caller's trace is not sampled, no span.
  void publish(std::shared_ptr<const Snapshot> snapshot, std::string trace_id = {},
               std::string parent_span_id = {}, bool unsampled = false);

  // Takes ownership of connected socket `fd`: writes `preamble` (the response head), a retry
  // field, then the current status event unless `last_event_id` names the current version (or
  // an earlier id of the same bytes, see publish()), and
  // every change afterwards (delta events in `delta_mode` after the first full one). In
  // `delta_mode`, a `last_event_id` naming an older version the history retains gets the delta
  // from it instead of the status event; an unknown or pruned one gets the status event.
  // May block on the history store: call it from a worker thread.
  // Returns false, leaving `fd` to the caller, when the hub is full or stopping.
  bool adopt(int fd, std::string preamble, bool delta_mode,
             std::optional<std::uint64_t> last_event_id);

  // The newest version publish() has been given, 0 before the first.
  std::uint64_t latest_version() const;
  std::size_t subscribers() const noexcept { return count_.load(); }
  std::size_t max_subscribers() const noexcept { return options_.max_subscribers; }
  std::size_t loops() const noexcept { return loops_.size(); }

 private:
  struct Published;
  struct Subscriber;
  struct Adoption;
  class Loop;

  // A loop has written version `p` to every subscriber that owed it (or they left): the last
  // loop to do so records the broadcast time.
  void loop_settled(const Published& p);
  // The newest version publish() has built (set before any loop is offered it).
  std::shared_ptr<const Published> latest() const;
  // The delta event from recorded version `from` to `p`, or null when `from` is not retained.
  std::shared_ptr<const std::string> resume_delta(std::uint64_t from,
                                                  const std::shared_ptr<const Published>& p);

  SseHubOptions options_;
  Metrics& metrics_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> count_{0};
  std::atomic<std::size_t> next_loop_{0};
  std::vector<std::unique_ptr<Loop>> loops_;

  // publish() state: the version the next delta is computed from.
  std::mutex publish_mutex_;  // serialises publish(); guards previous_
  std::shared_ptr<const Published> previous_;
  mutable std::mutex latest_mutex_;
  std::shared_ptr<const Published> latest_;

  // Deltas to the latest version from older ones, built once for every subscriber resuming
  // from the same version (after a restart, all of them at once).
  std::mutex resume_mutex_;  // guards the two below; held while one is built
  std::uint64_t resume_to_ = 0;
  std::map<std::uint64_t, std::shared_ptr<const std::string>> resume_cache_;
};

}  // namespace cortex_connectors::server
