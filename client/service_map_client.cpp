#include "cortex_connectors/service_map_client.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include <httplib.h>

#include "cortex_connectors/json.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/sse.h"
#include "sse_parser.h"

namespace cortex_connectors {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

Error io_error(std::string message) {
  return Error{ErrorCode::kIo, "[brAInwav] " + std::move(message), {}, {}};
}

Error usage_error(const char* message) {
  return Error{ErrorCode::kUsage, std::string("[brAInwav] ") + message, {}, {}};
}

// httplib::Client throws for schemes it does not know; start() reports those instead.
bool usable_url(const std::string& url) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) return false;
  try {
    return httplib::Client(url).is_valid();
  } catch (...) {
    return false;
  }
}

// The wire form of a failure of httplib itself, without any request detail.
std::string describe_transport(httplib::Error error) { return httplib::to_string(error); }

// What one stream connection ended with.
struct StreamOutcome {
  bool connected = false;       // 200 text/event-stream
  bool verified_event = false;  // at least one event verified
  std::optional<Error> error;
};

}  // namespace

struct ServiceMapClient::Impl {
  explicit Impl(ServiceMapClientOptions o)
      : options(std::move(o)),
        cache(options.public_keys.empty()
                  ? ServiceMapCache(as_bytes(options.signing_key), options.expiry_base)
                  : ServiceMapCache(options.public_keys, options.expiry_base)),
        fetch_client(usable_url(options.base_url) ? make_client(options.read_timeout) : nullptr),
        rng(std::random_device{}()) {}

  ServiceMapClientOptions options;
  ServiceMapCache cache;

  // Stop and wake-up state of the worker.
  mutable std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  bool stopping = false;
  bool worker_done = false;
  std::atomic<bool> stop_flag{false};
  httplib::Client* stream_client = nullptr;  // the stream in flight, guarded by mu
  std::thread worker;
  std::thread::id worker_id;

  // GETs: one at a time (fetch_mu), sharing one keep-alive connection. The pointer itself never
  // changes (null only for an unusable base_url), so stop() may use it without the lock.
  std::mutex fetch_mu;
  const std::unique_ptr<httplib::Client> fetch_client;
  std::string etag;

  // Offers and callbacks are serialised, so callbacks see versions in order.
  std::recursive_mutex update_mu;

  mutable std::mutex stats_mu;
  ServiceMapClientStats stats;

  // The worker's stream state.
  std::mt19937_64 rng;
  std::optional<milliseconds> server_retry;
  std::optional<Json> base_payload;  // delta mode: the payload the next delta applies to
  std::uint64_t base_version = 0;

  template <class F>
  void bump(F f) {
    std::lock_guard lock(stats_mu);
    f(stats);
  }

  void report(const Error& error) {
    bump([](ServiceMapClientStats& s) { ++s.errors; });
    if (!options.on_error) return;
    try {
      options.on_error(error);
    } catch (...) {  // NOLINT(bugprone-empty-catch): callbacks must not throw; dropped
    }
  }

  // Offers through `offer`, then runs on_update for a new version. Rejections are reported.
  // `account` records an accepted offer in the stats before on_update runs, so that a callback
  // (or whoever it wakes) sees the stats of the version it is given.
  template <class F, class G = void (*)(ServiceMapClientStats&)>
  Result<CacheUpdate> deliver(
      F offer, G account = [](ServiceMapClientStats&) {}) {
    std::lock_guard lock(update_mu);
    Result<CacheUpdate> r = offer();
    if (!r) {
      bump([](ServiceMapClientStats& s) { ++s.rejected; });
      report(r.error());
      return r;
    }
    const bool replaced = *r == CacheUpdate::kReplaced;
    bump([&](ServiceMapClientStats& s) {
      account(s);
      if (replaced) ++s.updates;
    });
    if (replaced) {
      if (options.on_update) {
        try {
          options.on_update(cache.current());
        } catch (...) {  // NOLINT(bugprone-empty-catch): callbacks must not throw; dropped
        }
      }
    }
    return r;
  }

  std::unique_ptr<httplib::Client> make_client(milliseconds read_timeout) const {
    auto cli = std::make_unique<httplib::Client>(options.base_url);
    cli->set_connection_timeout(options.connect_timeout);
    cli->set_read_timeout(read_timeout);
    cli->set_write_timeout(options.read_timeout);
    cli->set_keep_alive(true);
    cli->set_follow_location(false);
    return cli;
  }

  httplib::Headers auth_headers() const {
    httplib::Headers h;
    if (!options.api_key.empty()) h.emplace("Authorization", "Bearer " + options.api_key);
    return h;
  }

  Result<CacheUpdate> fetch() {
    if (!fetch_client) return usage_error("base_url must be http:// or https://host[:port]");
    const auto fetched = std::chrono::system_clock::now();
    // fetch_mu covers the request only: callbacks below may call fetch_now() again.
    auto res = [&] {
      std::lock_guard lock(fetch_mu);
      httplib::Headers headers = auth_headers();
      headers.emplace("Accept", "application/json");
      headers.emplace("Accept-Encoding", "br, gzip");
      if (!etag.empty() && cache.current()) headers.emplace("If-None-Match", etag);
      return fetch_client->Get(options.service_map_path, headers);
    }();
    if (!res) {
      Error e = io_error("GET " + options.service_map_path +
                         " failed: " + describe_transport(res.error()));
      report(e);
      return e;
    }
    if (res->status == 304) {
      bump([](ServiceMapClientStats& s) {
        ++s.fetches;
        ++s.not_modified;
      });
      cache.confirm(fetched);
      return CacheUpdate::kUnchanged;
    }
    if (res->status != 200) {
      Error e =
          io_error("GET " + options.service_map_path + " answered " + std::to_string(res->status));
      report(e);
      return e;
    }
    bump([](ServiceMapClientStats& s) { ++s.fetches; });
    auto r = deliver([&] { return cache.offer(res->body, fetched); });
    // A new map from a GET: the last event's id no longer names what this client holds.
    if (r && *r == CacheUpdate::kReplaced) forget_last_event_id();
    std::lock_guard lock(fetch_mu);
    etag = r && *r != CacheUpdate::kOlder ? res->get_header_value("ETag") : std::string();
    return r;
  }

  void forget_last_event_id() {
    bump([](ServiceMapClientStats& s) { s.last_event_id.clear(); });
  }

  // Handles one complete SSE event; false ends the connection.
  bool on_event(const SseEvent& ev, StreamOutcome& out) {
    const auto now = std::chrono::system_clock::now();
    const std::uint64_t version = parse_last_event_id(ev.id).value_or(0);
    auto reject = [&](Error e) {
      bump([](ServiceMapClientStats& s) { ++s.rejected; });
      report(e);
      out.error = std::move(e);
      return false;
    };
    // A verified event, counted with the update it delivers.
    const auto account = [&](ServiceMapClientStats& s) {
      ++s.events;
      if (ev.type == "delta") ++s.deltas;
      if (!ev.id.empty()) s.last_event_id = ev.id;
    };
    if (ev.type == "status") {
      auto data = parse_json(ev.data);
      if (!data) return reject(std::move(data).error());
      Json* body = data->find("payload");
      const bool signed_body =
          body != nullptr && (body->find("signature") != nullptr || body->find("signatures"));
      Json* payload = body != nullptr ? body->find("payload") : nullptr;
      if (payload == nullptr || !signed_body) {
        return reject(Error{ErrorCode::kInvalid,
                            "[brAInwav] status event without a signed service-map body",
                            {},
                            {}});
      }
      std::optional<Json> keep;
      if (options.delta) keep = *payload;
      auto r = deliver(
          [&] {
            Json owned = std::move(*payload);
            return cache.offer_signed(std::move(owned), *body, now, version);
          },
          account);
      if (!r) {
        out.error = r.error();
        return false;
      }
      base_payload = std::move(keep);
      base_version = version;
    } else if (ev.type == "delta") {
      auto delta = parse_json(ev.data);
      if (!delta) return reject(std::move(delta).error());
      const Json* from = delta->find("from");
      if (!base_payload || from == nullptr || !from->is_number() ||
          from->as_number() != static_cast<double>(base_version) ||
          (delta->find("signature") == nullptr && delta->find("signatures") == nullptr)) {
        // Not applicable to what this connection holds: reconnect for a full event.
        forget_last_event_id();
        return reject(Error{
            ErrorCode::kInvalid, "[brAInwav] delta event does not follow the last event", {}, {}});
      }
      auto rebuilt = apply_delta(*base_payload, *delta);
      if (!rebuilt) {
        forget_last_event_id();
        return reject(std::move(rebuilt).error());
      }
      Json next_base = *rebuilt;
      auto r = deliver(
          [&] { return cache.offer_signed(std::move(*rebuilt), *delta, now, version); }, account);
      if (!r) {
        forget_last_event_id();
        out.error = r.error();
        return false;
      }
      base_payload = std::move(next_base);
      base_version = version;
    } else {
      return true;  // other event types are not ours
    }
    out.verified_event = true;
    return true;
  }

  StreamOutcome run_stream(bool send_last_event_id) {
    StreamOutcome out;
    auto cli = make_client(options.stream_idle_timeout);
    {
      std::lock_guard lock(mu);
      if (stopping) return out;
      stream_client = cli.get();
    }
    httplib::Headers headers = auth_headers();
    headers.emplace("Accept", "text/event-stream");
    headers.emplace("Cache-Control", "no-cache");
    const std::string last = stats_copy().last_event_id;
    const bool resume = send_last_event_id && !last.empty();
    if (resume) headers.emplace("Last-Event-ID", last);
    const std::string target = options.stream_path + (options.delta ? "?mode=delta" : "");
    // A resumed stream may begin with the delta from that id: it applies to the payload of the
    // event that had it. (A GET that replaced the map forgot the id, so nothing stale resumes.)
    if (!resume || parse_last_event_id(last).value_or(0) != base_version) base_payload.reset();
    SseParser parser;
    int status = 0;
    bool wrong_type = false;
    auto res = cli->Get(
        target, headers,
        [&](const httplib::Response& response) {
          status = response.status;
          if (status != 200) return false;
          if (response.get_header_value("Content-Type").rfind("text/event-stream", 0) != 0) {
            wrong_type = true;
            return false;
          }
          out.connected = true;
          bump([](ServiceMapClientStats& s) {
            ++s.stream_connects;
            s.streaming = true;
          });
          return !stop_flag.load();
        },
        [&](const char* data, std::size_t size) {
          if (stop_flag.load()) return false;
          const bool ok = parser.feed(
              std::string_view(data, size), [&](const SseEvent& ev) { return on_event(ev, out); },
              [&] {
                bump([](ServiceMapClientStats& s) { ++s.heartbeats; });
                cache.confirm();
              });
          if (parser.retry()) server_retry = milliseconds(*parser.retry());
          if (!ok && !out.error) out.error = io_error("stream: an event line exceeds the limit");
          return ok && !stop_flag.load();
        });
    {
      std::lock_guard lock(mu);
      stream_client = nullptr;
    }
    bump([](ServiceMapClientStats& s) { s.streaming = false; });
    if (stop_flag.load() || out.error) return out;
    if (wrong_type) {
      out.error = io_error("GET " + options.stream_path + " is not an event stream");
    } else if (status != 0 && status != 200) {
      out.error = io_error("GET " + options.stream_path + " answered " + std::to_string(status));
    } else if (!res) {
      out.error =
          io_error("stream " + options.stream_path + " ended: " + describe_transport(res.error()));
    } else {
      out.error = io_error("stream " + options.stream_path + " ended");
    }
    report(*out.error);
    return out;
  }

  ServiceMapClientStats stats_copy() const {
    std::lock_guard lock(stats_mu);
    return stats;
  }

  // Waits until `deadline` or stop(); true when stopping.
  bool wait_until(Clock::time_point deadline) {
    std::unique_lock lock(mu);
    return cv.wait_until(lock, deadline, [&] { return stopping; });
  }

  milliseconds jitter(milliseconds delay, double low) {
    std::uniform_real_distribution<double> d(low, 1.0);
    return milliseconds(static_cast<std::int64_t>(static_cast<double>(delay.count()) * d(rng)));
  }

  milliseconds poll_delay() {
    milliseconds interval = options.poll_interval;
    if (auto cur = cache.current()) {
      interval = std::min<milliseconds>(interval, cur->ttl);
    }
    return std::max(milliseconds(1), jitter(interval, 0.8));
  }

  milliseconds backoff(int failures) {
    milliseconds base = options.reconnect_initial;
    if (options.honor_server_retry && server_retry) base = *server_retry;
    base = std::clamp(base, milliseconds(1), std::max(milliseconds(1), options.reconnect_max));
    milliseconds delay = base;
    for (int i = 1; i < failures && delay < options.reconnect_max; ++i) delay *= 2;
    return jitter(std::min(delay, std::max(base, options.reconnect_max)), 0.5);
  }

  void run() {
    int failures = 0;
    bool first = true;
    while (!stop_flag.load()) {
      if (!options.use_stream) {
        (void)fetch();
        if (wait_until(Clock::now() + poll_delay())) break;
        continue;
      }
      // Before every reconnect, a conditional GET (cheap when unchanged): covers what the
      // stream cannot resume, e.g. a restarted server whose version counter began again. The
      // Last-Event-ID is sent only when that GET answered: after a failed one (a server still
      // loading, say) this attempt goes without it, since a restarted server may number another
      // payload with the same id and send nothing. (A GET that brought a new map has already
      // forgotten the id.)
      const bool send_last_event_id = first || fetch().has_value();
      first = false;
      if (stop_flag.load()) break;
      const StreamOutcome o = run_stream(send_last_event_id);
      if (stop_flag.load()) break;
      failures = o.verified_event ? 1 : failures + 1;
      // While the stream is down, poll (the polling fallback) until the next attempt.
      const auto next_attempt = Clock::now() + backoff(failures);
      auto next_poll = Clock::now() + poll_delay();
      while (Clock::now() < next_attempt) {
        if (wait_until(std::min(next_attempt, next_poll))) return;
        if (Clock::now() >= next_poll && Clock::now() < next_attempt) {
          (void)fetch();
          next_poll = Clock::now() + poll_delay();
        }
      }
    }
  }
};

ServiceMapClient::ServiceMapClient(ServiceMapClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ServiceMapClient::~ServiceMapClient() { stop(); }

Status ServiceMapClient::start() {
  const auto& o = impl_->options;
  if (o.signing_key.empty() && o.public_keys.empty()) {
    return usage_error("the client needs the signing key or pinned public keys");
  }
  if (!impl_->fetch_client) {
    return usage_error("base_url must be http:// or https://host[:port]");
  }
  std::lock_guard lock(impl_->mu);
  if (impl_->started) return usage_error("the client was already started");
  impl_->started = true;
  impl_->worker = std::thread([impl = impl_.get()] {
    impl->run();
    std::lock_guard done(impl->mu);
    impl->worker_done = true;
    impl->cv.notify_all();
  });
  impl_->worker_id = impl_->worker.get_id();
  return {};
}

void ServiceMapClient::stop() {
  Impl& impl = *impl_;
  std::unique_lock lock(impl.mu);
  impl.stopping = true;
  impl.stop_flag.store(true);
  impl.cv.notify_all();
  if (!impl.worker.joinable()) return;
  if (std::this_thread::get_id() == impl.worker_id) return;  // from a callback: just request it
  // Interrupt blocking reads until the worker notices; stop() is safe on an idle client too.
  while (!impl.worker_done) {
    if (impl.stream_client != nullptr) impl.stream_client->stop();
    lock.unlock();
    {
      std::unique_lock fetch_lock(impl.fetch_mu, std::try_to_lock);
      // A GET in flight holds fetch_mu; httplib's stop() is meant for exactly that case.
      if (!fetch_lock.owns_lock() && impl.fetch_client) impl.fetch_client->stop();
    }
    lock.lock();
    impl.cv.wait_for(lock, milliseconds(20), [&] { return impl.worker_done; });
  }
  lock.unlock();
  impl.worker.join();
}

Result<CacheUpdate> ServiceMapClient::fetch_now() { return impl_->fetch(); }

std::shared_ptr<const VerifiedServiceMap> ServiceMapClient::current() const {
  return impl_->cache.current();
}

std::shared_ptr<const VerifiedServiceMap> ServiceMapClient::fresh() const {
  return impl_->cache.fresh();
}

ServiceMapClientStats ServiceMapClient::stats() const { return impl_->stats_copy(); }

}  // namespace cortex_connectors
