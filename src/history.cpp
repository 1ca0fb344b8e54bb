#include "cortex_connectors/history.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

namespace cortex_connectors {

namespace {

Error not_found(std::uint64_t version) {
  return Error{ErrorCode::kNotFound,
               fmt::format("[brAInwav] version {} is not in the history", version),
               {},
               {}};
}

HistoryInfo info_of(const HistoryEntry& e) {
  return HistoryInfo{e.version,   e.content_hash,    e.path,
                     e.loaded_at, e.manifest.size(), e.payload.size()};
}

}  // namespace

HistoryEntry make_history_entry(const Snapshot& snapshot, std::string manifest_text) {
  HistoryEntry e;
  e.version = snapshot.version;
  e.content_hash = snapshot.content_hash;
  e.path = snapshot.path;
  e.loaded_at = snapshot.loaded_at;
  e.manifest = std::move(manifest_text);
  e.payload = std::string(snapshot.canonical_payload());
  e.signature = snapshot.signature;
  e.signatures = snapshot.signatures;
  return e;
}

HistoryStore::~HistoryStore() = default;

Result<std::uint64_t> HistoryStore::reserved_version() { return latest_version(); }

Status HistoryStore::reserve(std::uint64_t) { return {}; }

namespace {

std::size_t entry_bytes(const HistoryEntry& e) {
  return e.manifest.size() + e.payload.size() + e.signature.size() + e.signatures.size();
}

}  // namespace

struct MemoryHistoryStore::Impl {
  explicit Impl(std::size_t max) : max_bytes(max) {}
  std::size_t max_bytes;
  std::mutex mutex;
  std::map<std::uint64_t, HistoryEntry> entries;
  std::size_t bytes = 0;  // of `entries`
};

MemoryHistoryStore::MemoryHistoryStore(std::size_t max_bytes)
    : impl_(std::make_unique<Impl>(max_bytes)) {}

MemoryHistoryStore::~MemoryHistoryStore() = default;

Status MemoryHistoryStore::record(const HistoryEntry& entry) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  if (m.entries.emplace(entry.version, entry).second) m.bytes += entry_bytes(entry);
  while (m.max_bytes > 0 && m.bytes > m.max_bytes && m.entries.size() > 1) {
    m.bytes -= entry_bytes(m.entries.begin()->second);
    m.entries.erase(m.entries.begin());
  }
  return {};
}

Result<std::uint64_t> MemoryHistoryStore::latest_version() {
  Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  return m.entries.empty() ? std::uint64_t{0} : m.entries.rbegin()->first;
}

Result<HistoryEntry> MemoryHistoryStore::load(std::uint64_t version) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  auto it = m.entries.find(version);
  if (it == m.entries.end()) return not_found(version);
  return it->second;
}

Result<std::vector<HistoryInfo>> MemoryHistoryStore::list() {
  Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  std::vector<HistoryInfo> out;
  out.reserve(m.entries.size());
  for (const auto& [v, e] : m.entries) out.push_back(info_of(e));
  return out;
}

Result<std::size_t> MemoryHistoryStore::prune(const RetentionPolicy& policy,
                                              std::chrono::system_clock::time_point now) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  std::size_t removed = 0;
  while (m.entries.size() > 1) {
    const auto& oldest = m.entries.begin()->second;
    const bool too_many = policy.max_entries > 0 && m.entries.size() > policy.max_entries;
    const bool too_old = policy.max_age.count() > 0 && oldest.loaded_at < now - policy.max_age;
    if (!too_many && !too_old) break;
    m.bytes -= entry_bytes(m.entries.begin()->second);
    m.entries.erase(m.entries.begin());
    ++removed;
  }
  return removed;
}

struct HistoryRecorder::Impl {
  struct Pending {
    std::shared_ptr<const Snapshot> snapshot;
    std::string manifest;
  };

  explicit Impl(std::shared_ptr<HistoryStore> s, HistoryRecorderOptions o)
      : options(std::move(o)), store(std::move(s)) {
    if (!options.clock) options.clock = [] { return std::chrono::system_clock::now(); };
    if (options.reserve_block == 0) options.reserve_block = 1;
    if (options.degraded_reason) {
      degraded = true;
      reason = *options.degraded_reason;
      reserved_fast = UINT64_MAX;
    }
    std::lock_guard lock(store_mutex);
    auto latest_stored = store->latest_version();
    if (!latest_stored) {
      degrade(latest_stored.error());
    } else {
      latest = *latest_stored;
      auto r = store->reserved_version();
      if (!r) {
        degrade(r.error());
      } else {
        reserved = std::max(*r, latest);
      }
    }
    // The entry of `latest` is read by the recording thread as its first task, off the
    // start-up path (~8 MB at 10 000 connectors, 15-60 ms from SQLite): it overlaps the
    // registry's first read and parse.
    first_free = reserved + 1;
    if (degraded || options.ephemeral) {
      // Nothing durable to number after: start at the wall clock's milliseconds, so that an id
      // a client kept from an earlier process never names a different snapshot here.
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(options.clock().time_since_epoch())
              .count();
      first_free = std::max<std::uint64_t>(first_free, static_cast<std::uint64_t>(ms));
    }
    // Nothing is reserved here: a restart that republishes the newest recorded snapshot needs
    // no new version, and submit() reserves (durably, before the version reaches any client)
    // when the first new one comes. Keeps the store's write and fsync off the start-up path.
    if (!degraded) reserved_fast = reserved;
    update_status();
  }

  // REQUIRES: store_mutex held. Copies what status() reports, so that /health never waits for
  // a write in progress.
  void update_status() {
    std::lock_guard lock(status_mutex);
    status.store = store->name();
    status.degraded = degraded;
    status.reason = reason;
    status.latest_version = latest;
    status.recorded = recorded;
  }

  // REQUIRES: store_mutex held. Makes versions up to `version` + a block safe to hand out.
  void extend_reservation(std::uint64_t version) {
    if (degraded) return;
    const std::uint64_t through = version + options.reserve_block - 1;
    if (auto s = store->reserve(through); !s) {
      degrade(s.error());
      return;
    }
    reserved = through;
    reserved_fast = through;
  }

  // REQUIRES: store_mutex held.
  void degrade(const Error& error) {
    if (degraded && store->name() == "memory") return;
    degraded = true;
    reserved_fast = UINT64_MAX;  // nothing to reserve in memory
    reason = error.message;
    auto memory = std::make_shared<MemoryHistoryStore>(options.memory_max_bytes);
    store = std::move(memory);
    update_status();
    if (options.on_degraded) options.on_degraded(error);
  }

  // `p` stays at the front of the queue until it is recorded, so that load() finds it in the
  // queue or in the store at every moment (the manifest text is copied, not moved, for that).
  void write(const Pending& p) {
    HistoryEntry entry = make_history_entry(*p.snapshot, p.manifest);
    std::lock_guard lock(store_mutex);
    if (auto s = store->record(entry); !s) {
      degrade(s.error());
      (void)store->record(entry);  // memory: cannot fail
    }
    latest = std::max(latest, entry.version);
    ++recorded;
    if (auto pruned = store->prune(options.retention, options.clock()); !pruned) {
      degrade(pruned.error());
    }
    // Keep a block ahead of use, off the publish path.
    if (!degraded && reserved < entry.version + options.reserve_block / 2) {
      extend_reservation(entry.version + 1);
    }
    update_status();
  }

  void load_resumable() {
    {
      std::lock_guard lock(store_mutex);
      // Before any write on this thread: `latest` is still the newest entry at start.
      if (latest > 0) {
        if (auto e = store->load(latest)) resumable = std::move(*e);
      }
      resumable_ready = true;
    }
    resumable_cv.notify_all();
  }

  void run() {
    // At the caller's priority: take_resumable() may be waiting for it.
    load_resumable();
    // Below the publishing threads: on a busy machine the copy and the write wait, not the
    // next publish. (Linux: a nice value per thread.)
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
    std::unique_lock lock(queue_mutex);
    for (;;) {
      queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping and drained
      // References to deque elements survive push_back; only this thread pops.
      const Pending& p = queue.front();
      lock.unlock();
      write(p);
      lock.lock();
      queue.pop_front();
      if (queue.empty()) idle_cv.notify_all();
    }
  }

  HistoryRecorderOptions options;

  mutable std::mutex store_mutex;  // serialises store calls; guards the fields below
  std::shared_ptr<HistoryStore> store;
  bool degraded = false;
  std::string reason;
  std::uint64_t latest = 0;
  std::uint64_t reserved = 0;
  // `reserved` (UINT64_MAX when degraded), read by submit() without waiting for a write.
  std::atomic<std::uint64_t> reserved_fast{0};
  // Set by the constructor, before the thread starts; read without the lock (the thread may
  // hold it for a while reading the resumable entry).
  std::uint64_t first_free = 1;
  std::uint64_t recorded = 0;
  std::optional<HistoryEntry> resumable;  // the newest stored entry at start, until taken
  bool resumable_ready = false;           // load_resumable() has run
  std::condition_variable resumable_cv;   // signals resumable_ready

  mutable std::mutex status_mutex;  // guards `status`
  HistoryStatus status;

  mutable std::mutex queue_mutex;  // guards the fields below
  std::condition_variable queue_cv;
  std::condition_variable idle_cv;
  std::deque<Pending> queue;
  bool stopping = false;
  std::thread thread;
};

HistoryRecorder::HistoryRecorder(std::shared_ptr<HistoryStore> store,
                                 HistoryRecorderOptions options)
    : impl_(std::make_unique<Impl>(std::move(store), std::move(options))) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

HistoryRecorder::~HistoryRecorder() {
  {
    std::lock_guard lock(impl_->queue_mutex);
    impl_->stopping = true;
  }
  impl_->queue_cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint64_t HistoryRecorder::next_version() { return impl_->first_free; }

std::optional<HistoryEntry> HistoryRecorder::take_resumable() {
  std::unique_lock lock(impl_->store_mutex);
  impl_->resumable_cv.wait(lock, [&] { return impl_->resumable_ready; });
  return std::exchange(impl_->resumable, std::nullopt);
}

void HistoryRecorder::submit(std::shared_ptr<const Snapshot> snapshot, std::string manifest_text) {
  if (!snapshot) return;
  if (snapshot->version > impl_->reserved_fast.load()) {
    // Beyond the reservation only after a burst faster than the recording thread: reserve
    // before the version reaches any client. Otherwise submit() never waits for the store.
    std::lock_guard lock(impl_->store_mutex);
    if (!impl_->degraded && snapshot->version > impl_->reserved) {
      impl_->extend_reservation(snapshot->version);
    }
  }
  {
    std::lock_guard lock(impl_->queue_mutex);
    impl_->queue.push_back({std::move(snapshot), std::move(manifest_text)});
  }
  impl_->queue_cv.notify_one();
}

void HistoryRecorder::flush() {
  std::unique_lock lock(impl_->queue_mutex);
  impl_->idle_cv.wait(lock, [&] { return impl_->queue.empty(); });
}

Result<HistoryEntry> HistoryRecorder::load(std::uint64_t version) {
  {
    std::lock_guard lock(impl_->queue_mutex);
    for (const auto& p : impl_->queue) {
      if (p.snapshot->version == version) return make_history_entry(*p.snapshot, p.manifest);
    }
  }
  std::lock_guard lock(impl_->store_mutex);
  return impl_->store->load(version);
}

Result<std::vector<HistoryInfo>> HistoryRecorder::list() {
  std::lock_guard lock(impl_->store_mutex);
  return impl_->store->list();
}

HistoryStatus HistoryRecorder::status() const {
  HistoryStatus s;
  {
    std::lock_guard lock(impl_->status_mutex);
    s = impl_->status;
  }
  std::lock_guard lock(impl_->queue_mutex);
  s.pending = impl_->queue.size();  // includes the entry being written
  return s;
}

}  // namespace cortex_connectors
