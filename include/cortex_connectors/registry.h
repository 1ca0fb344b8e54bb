// Registry: owns the current signed Snapshot and replaces it atomically when the manifest
// changes. Every HTTP and SSE consumer shares it.
//
// refresh() reads the manifest file, returns at once when its bytes are unchanged (SHA-256),
// otherwise parses, validates, builds, signs and compresses a new Snapshot and publishes it: an
// atomic swap of the shared pointer, then a call to every listener. A failed load never replaces
// a good snapshot; the failure (paths tried, messages, time) is kept for health reporting.
// Content that changes but yields the same payload bytes publishes nothing.
//
// Thread-safety: every method may be called from any thread. current() is lock-free for
// readers; refresh() calls are serialised. Listeners run on the thread that published.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cortex_connectors/export.h"
#include "cortex_connectors/history.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/result.h"
#include "cortex_connectors/snapshot.h"

namespace cortex_connectors {

class Metrics;

// Outcome of Registry::refresh(), for RefreshReport and cortex_connectors_reloads_total{result}.
enum class ReloadResult : std::uint8_t { kSuccess, kFailure, kUnchanged };

// What one refresh did, for logs and spans (RegistryOptions::on_refresh).
struct RefreshReport {
  ReloadResult result = ReloadResult::kUnchanged;
  std::uint64_t version = 0;  // the current version after the refresh (0: none yet)
  std::string path;
  // When the refresh began (its first stage, read, starts here); the stages of `timings` follow
  // each other without gaps, so a tracer can turn them into spans.
  std::chrono::system_clock::time_point started_at;
  StageTimings timings;
  const Error* error = nullptr;        // set when result == kFailure
  const Snapshot* snapshot = nullptr;  // the snapshot published, when result == kSuccess
  // The ids of the connectors of `snapshot`, in manifest order; valid only during the call.
  std::span<const std::string> connector_ids;
  // Snapshot::manifest of `snapshot`: null when RegistryOptions::keep_manifest is false (a
  // rebuild then never builds the typed Manifest).
  const Manifest* manifest = nullptr;
};

// A snapshot signed by another process (a publisher, docs/scaling.md), as a replica receives it.
struct SignedSnapshot {
  // The service-map body exactly as the publisher serves it: {"payload":...,"signature":...}
  // (plus "signatures"), canonical JSON.
  std::string body;
  std::uint64_t version = 0;  // the publisher's snapshot version, >= 1
  std::string content_hash;   // the publisher's manifest hash (informational; "" if unknown)
  std::string source;         // where it came from (logs, Snapshot::path), e.g. "redis"
};

struct RegistryOptions {
  // The manifest file; nullopt means the default candidate (kDefaultManifestPath).
  std::optional<std::string> manifest_path;
  // The HMAC key bytes (CONNECTORS_SIGNATURE_KEY). Never logged or copied into an Error.
  std::string signing_key;
  // Ed25519 keys that also sign every snapshot (keys.h); empty: the HMAC-only body. The server
  // passes its active key here; keys it only publishes (rotation) are not needed.
  std::vector<Ed25519Key> ed25519_keys;
  ManifestLimits limits;
  // Keep the typed Manifest in every Snapshot (Snapshot::manifest). A server that serves only
  // the pre-built bytes can drop it: ~10 MB less at 10 000 connectors, and a rebuild that never
  // builds it (the signed body is written from the parsed text) takes half the time.
  bool keep_manifest = true;
  // The version of the first snapshot. With `history`, versions start after its
  // next_version() at the earliest.
  std::uint64_t first_version = 1;
  // Records every published snapshot (history.h), off the publish path; null: no history.
  // When the first load yields exactly the newest recorded snapshot (same manifest bytes, same
  // signed bytes; generatedAt taken from it when the manifest has none), that snapshot is
  // published again under its recorded version, so a restart without a change changes no
  // version. Any other snapshot gets a version after every recorded or reserved one.
  std::shared_ptr<HistoryRecorder> history;
  // The snapshot last published under these versions by an earlier run, as the deployment
  // holds it (docs/scaling.md: what a publisher finds in Redis at start); nullopt: none.
  // Versions start above its version, and of it and the newest recorded snapshot only the
  // newer may be resumed. When the first load yields exactly its body (generatedAt taken from
  // it when the manifest has none and `content_hash` is the manifest's), that body is
  // published under its version again: a publisher restarted without its history then changes
  // no version. It need not verify: only identical bytes signed here take its version.
  std::optional<SignedSnapshot> resume_from;
  // Source of the current time (loaded_at, generatedAt fallback); tests may pin it.
  std::function<std::chrono::system_clock::time_point()> clock;
  // Compression of the pre-built bodies. Unset (the default) chooses by size, so that a snapshot is
  // served as soon as it is signed:
  // - up to 64 KiB it is published with gzip 6 and brotli 1, and its compressed bodies are then
  //   replaced by the best ones (gzip 9, brotli 11: slower, ~10-20 % smaller);
  // - up to 256 KiB it is published with gzip 6 and brotli 5, and kept so;
  // - above 256 KiB it is published without compressed bodies (served identity), and they are
  //   added right after (gzip 6 on a second thread, brotli 5).
  // What each costs: bench/README.md. Replacements keep the version and the decompressed bytes
  // and do not call listeners again; StageTimings::compress then covers only what ran before
  // publication. A level given (gzip 0-9, brotli 0-11; either one) compresses before
  // publication, the other at gzip 6 or brotli 5.
  std::optional<int> gzip_level;
  std::optional<int> brotli_quality;
  // Called after every refresh with its stage timings, on the refreshing thread. On success it
  // runs after the new snapshot is current and before the listeners (subscribe()) are called.
  std::function<void(const RefreshReport&)> on_refresh;
};

// The last failed load, kept until the next successful one.
struct LoadFailure {
  Error error;  // message + one Issue per finding or per path tried
  std::chrono::system_clock::time_point at;
  std::uint64_t consecutive = 0;  // failures since the last success
};

class CORTEX_CONNECTORS_API Registry {
 public:
  using Listener = std::function<void(const std::shared_ptr<const Snapshot>&)>;

  explicit Registry(RegistryOptions options);
  ~Registry();  // stops the watcher and waits for an asynchronous load
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Returns the last good snapshot, or nullptr before the first successful refresh().
  std::shared_ptr<const Snapshot> current() const noexcept;
  // True once a snapshot has been published.
  bool has_snapshot() const noexcept;

  // Reloads the configured file (see the class comment). Returns the current snapshot after the
  // refresh, or the Error of this load; on error the previous snapshot stays current.
  Result<std::shared_ptr<const Snapshot>> refresh();

  // As refresh(), with manifest text supplied by the caller (an embedding service, a test).
  Result<std::shared_ptr<const Snapshot>> refresh_from_text(std::string_view text,
                                                            std::string_view source = "");

  // Publishes a snapshot signed elsewhere, without any manifest: verifies `signed_snapshot.body`
  // with RegistryOptions::signing_key (HMAC, verify.h) and, when `pinned` is given, with those
  // Ed25519 public keys too; checks that the body is canonical JSON; then publishes it under
  // its version exactly like refresh() (same bytes, ETag, compression, listeners). Its
  // Snapshot::manifest is rebuilt from the payload (ids, names, versions, endpoints, scopes,
  // ttlSeconds, enabled): enough for /health and the connector metrics, not a manifest file.
  // A version at or below the current one publishes nothing and returns the current snapshot.
  // The current body under a higher version (its publisher numbered the same bytes anew) is
  // adopted without verifying it again: the current snapshot, bytes unchanged, is published
  // under that version, listeners are called with it (a listener that sends content can tell
  // by the bytes that nothing changed: the SSE hub sends nothing), and the reload counts as
  // unchanged. A body that does not verify never replaces the current
  // snapshot: the Error (kParse, kInvalid, kSignature, as verify_service_map(); kUsage without
  // any key) is returned and kept as last_failure(), and the reload counts as a failure.
  Result<std::shared_ptr<const Snapshot>> publish_signed(const SignedSnapshot& signed_snapshot,
                                                         const PublicKeySet* pinned = nullptr);

  // Runs refresh() once on a background thread, so that a server can listen first.
  void refresh_async();

  // Starts reloading on file changes (inotify on the manifest's directory, else polling every
  // `poll_interval`). Error (kUsage) when already watching.
  [[nodiscard]] Status start_watching(
      std::chrono::milliseconds poll_interval = std::chrono::milliseconds(1000),
      bool force_poll = false);
  void stop_watching() noexcept;

  // The last failed load since the last success, if any.
  std::optional<LoadFailure> last_failure() const;

  // Calls `listener` with every snapshot published from now on. Returns an id for unsubscribe().
  std::uint64_t subscribe(Listener listener);
  void unsubscribe(std::uint64_t id);

  // Blocks until a snapshot with version >= `version` is current or `timeout` passes; returns it,
  // or nullptr on timeout.
  std::shared_ptr<const Snapshot> wait_for_version(std::uint64_t version,
                                                   std::chrono::milliseconds timeout) const;

  // RegistryOptions::history, or null.
  HistoryRecorder* history() const noexcept;

  // The metrics this registry records into; the server and SSE hub add theirs.
  Metrics& metrics() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cortex_connectors
