// Snapshot history: every published snapshot recorded once, so that versions, deltas and
// Last-Event-IDs keep their meaning across restarts, and an operator can list, diff and roll
// back.
//
// HistoryStore is the storage interface: an embedding service supplies its own, uses
// MemoryHistoryStore, the SQLite store of the optional `cortex_connectors::history_sqlite`
// component (sqlite_history.h), or none. HistoryRecorder sits between the Registry and a store:
// it writes on its own thread, so recording never delays publishing, applies the retention
// policy, and falls back to memory (degraded) when the store fails.
//
// Thread-safety: MemoryHistoryStore and HistoryRecorder may be used from any thread. A
// HistoryStore implementation is only called by one thread at a time by HistoryRecorder; its
// own thread-safety is the implementation's business.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cortex_connectors/export.h"
#include "cortex_connectors/result.h"
#include "cortex_connectors/signed_body.h"
#include "cortex_connectors/snapshot.h"

namespace cortex_connectors {

// One recorded snapshot: what is needed to serve it again, diff it or roll back to it.
struct HistoryEntry {
  std::uint64_t version = 0;
  std::string content_hash;  // SHA-256 of `manifest`, lowercase hex
  std::string path;          // the file it was loaded from ("" for text given directly)
  std::chrono::system_clock::time_point loaded_at;
  std::string manifest;    // the manifest bytes it was built from
  std::string payload;     // the canonical payload (the signed bytes)
  std::string signature;   // base64url HMAC-SHA256 of `payload`
  std::string signatures;  // the Ed25519 "signatures" array as canonical JSON, or ""

  // The signed body as it was served: `payload`, `signature` and `signatures` assembled.
  SignedBody signed_body() const { return SignedBody::assemble(payload, signature, signatures); }
};

// A history line without the bytes, for listings.
struct HistoryInfo {
  std::uint64_t version = 0;
  std::string content_hash;
  std::string path;
  std::chrono::system_clock::time_point loaded_at;
  std::size_t manifest_bytes = 0;
  std::size_t payload_bytes = 0;
};

// What a store keeps. Both limits apply; zero means unlimited. The newest entry is never removed,
// so the version count survives any policy.
struct RetentionPolicy {
  std::size_t max_entries = 0;
  std::chrono::seconds max_age{0};
};

// The entry of `snapshot`, built from `manifest_text` (the bytes it was loaded from).
CORTEX_CONNECTORS_API HistoryEntry make_history_entry(const Snapshot& snapshot,
                                                      std::string manifest_text);

// Storage of history entries, keyed by version.
class CORTEX_CONNECTORS_API HistoryStore {
 public:
  virtual ~HistoryStore();
  // A short name for logs and /health ("memory", "sqlite").
  virtual std::string name() const = 0;
  // Stores `entry` atomically. An entry whose version is already stored is left as it is:
  // history is never rewritten.
  virtual Status record(const HistoryEntry& entry) = 0;
  // The newest stored version, 0 when empty.
  virtual Result<std::uint64_t> latest_version() = 0;
  // The entry of `version`; kNotFound when it was never stored or has been pruned.
  virtual Result<HistoryEntry> load(std::uint64_t version) = 0;
  // Every stored entry, oldest first.
  virtual Result<std::vector<HistoryInfo>> list() = 0;
  // Removes what `policy` no longer keeps (see RetentionPolicy); returns how many.
  virtual Result<std::size_t> prune(const RetentionPolicy& policy,
                                    std::chrono::system_clock::time_point now) = 0;
  // Versions up to the returned one may have been handed out by an earlier process without
  // being recorded (it was killed first); a registry numbers after it. Default: latest_version().
  virtual Result<std::uint64_t> reserved_version();
  // Durably notes that versions up to `version` may be handed out. Default: nothing (a store
  // without reservations accepts that a crash between publishing and recording can let a later
  // process reuse the lost versions).
  virtual Status reserve(std::uint64_t version);
};

// A HistoryStore in memory: what a process without a state directory, or with a broken one,
// keeps. Thread-safe.
class CORTEX_CONNECTORS_API MemoryHistoryStore final : public HistoryStore {
 public:
  // `max_bytes` > 0 bounds the bytes kept (manifest + payload + signatures of every entry):
  // record() drops the oldest entries beyond it, never the newest one.
  explicit MemoryHistoryStore(std::size_t max_bytes = 0);
  ~MemoryHistoryStore() override;
  MemoryHistoryStore(const MemoryHistoryStore&) = delete;
  MemoryHistoryStore& operator=(const MemoryHistoryStore&) = delete;
  std::string name() const override { return "memory"; }
  Status record(const HistoryEntry& entry) override;
  Result<std::uint64_t> latest_version() override;
  Result<HistoryEntry> load(std::uint64_t version) override;
  Result<std::vector<HistoryInfo>> list() override;
  Result<std::size_t> prune(const RetentionPolicy& policy,
                            std::chrono::system_clock::time_point now) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct HistoryRecorderOptions {
  RetentionPolicy retention;
  // Set when the caller could not open its store and passes a MemoryHistoryStore instead: the
  // recorder starts degraded with this reason.
  std::optional<std::string> degraded_reason;
  // Called once, on the recording thread, when the store fails and history moves to memory.
  std::function<void(const Error&)> on_degraded;
  // MemoryHistoryStore's max_bytes for the store that replaces a failed one (0: unbounded).
  std::size_t memory_max_bytes = 0;
  // The store keeps nothing across processes (a server with history off): versions start at the
  // wall clock's milliseconds, as with a degraded store, so that they never go backwards across
  // restarts and an id a client kept from an earlier process never names other content here.
  bool ephemeral = false;
  // Versions reserved ahead of use (HistoryStore::reserve), so that a crash never lets a later
  // process reuse a published version.
  std::uint64_t reserve_block = 1024;
  std::function<std::chrono::system_clock::time_point()> clock;
};

// What HistoryRecorder::status() reports (GET /health).
struct HistoryStatus {
  std::string store;  // the store in use: its name()
  bool degraded = false;
  std::string reason;  // why, when degraded
  std::uint64_t latest_version = 0;
  std::uint64_t recorded = 0;  // entries written by this process
  std::uint64_t pending = 0;   // submitted, not yet written
};

// Records snapshots into a HistoryStore on a background thread. Pass it to the Registry through
// RegistryOptions::history; the Registry numbers versions after next_version() and submits each
// published snapshot with the bytes it was built from.
class CORTEX_CONNECTORS_API HistoryRecorder {
 public:
  // REQUIRES: `store` is not null.
  explicit HistoryRecorder(std::shared_ptr<HistoryStore> store,
                           HistoryRecorderOptions options = {});
  ~HistoryRecorder();  // writes what is pending, then stops
  HistoryRecorder(const HistoryRecorder&) = delete;
  HistoryRecorder& operator=(const HistoryRecorder&) = delete;

  // The first version a new registry may hand out: after every stored and reserved version.
  std::uint64_t next_version();
  // The newest stored entry when the recorder started (the snapshot a restarted registry may
  // resume under the same version), or nullopt. Read from the store by the recording thread
  // as it starts (the constructor does not wait for it; this call does) and handed over once:
  // the recorder keeps no copy after this call (~8 MB at 10 000 connectors), later calls return
  // nullopt. The Registry calls it on its first rebuild.
  std::optional<HistoryEntry> take_resumable();

  // Queues `snapshot` for recording; returns at once. When `snapshot->version` is beyond the
  // reservation (a burst of publishes), reserves the next block first (one small write).
  void submit(std::shared_ptr<const Snapshot> snapshot, std::string manifest_text);
  // Blocks until every submitted snapshot has been written (or dropped on a failure).
  void flush();

  // The entry of `version`, from the queue or the store; kNotFound when not retained.
  Result<HistoryEntry> load(std::uint64_t version);
  Result<std::vector<HistoryInfo>> list();
  HistoryStatus status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cortex_connectors
