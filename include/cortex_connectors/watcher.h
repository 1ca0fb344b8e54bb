// ManifestWatcher: calls back, debounced, when the content of one manifest path may have changed.
//
// The callback is a hint, not a diff: it fires whenever something in a directory that can affect
// the path changed, and the caller (a Registry, which skips unchanged content by hash) rereads the
// file. It does not fire for the state found at start(). Seen on Linux with inotify:
//   - an editor's atomic replace (write a temporary file in the same directory, rename it over);
//   - an in-place rewrite (O_TRUNC, then one or more writes);
//   - deletion, and later re-creation, of the file;
//   - Kubernetes ConfigMap updates, which rename a `..data` symlink to a new timestamped directory;
//   - a symlink whose target lives in another directory, including a change of target.
// inotify watches the directory holding the path and the directory of every hop of its symlink
// chain (never the file: renames replace its inode), and the set is recomputed after each batch
// of events. A symlink among the *directories* of the path (/etc/cortex -> /mnt/x) is followed,
// but retargeting it is only noticed with the next event or poll. When inotify is unavailable, a
// directory cannot be watched (it does not exist yet, or the watch limit is reached) or
// WatcherOptions::force_poll is set, the watcher stat()s the path every poll_interval instead, and
// it returns to inotify as soon as every directory can be watched again. Polling compares (st_dev,
// st_ino, st_size, st_mtim, st_ctim) and existence, so an in-place rewrite that keeps the size
// within one timestamp tick of the filesystem can be missed.
//
// Thread-safety: one background thread per started watcher runs the callback. mode() and
// events_seen() may be called from any thread at any time; start() and stop() from any thread
// except the callback's (they serialise with each other). Moving, assigning or destroying a
// watcher must not race with any other call on it, nor happen inside the callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cortex_connectors/export.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors {

// What to watch and how quickly to react.
struct WatcherOptions {
  // The manifest path as configured. A relative path is made absolute against the working
  // directory at start(). It may be, or go through, symlinks; it need not exist yet.
  std::string path;
  // The callback fires once this much time passed without a new event...
  std::chrono::milliseconds debounce{50};
  // ...but at most this long after the first event of a burst, so that a continuous stream of
  // writes cannot starve reloads.
  std::chrono::milliseconds max_delay{500};
  // How often the path is stat()ed while polling.
  std::chrono::milliseconds poll_interval{1000};
  // Poll even when inotify works: for filesystems that do not deliver events (NFS, some FUSE).
  bool force_poll = false;
};

// How a running watcher currently detects changes.
enum class WatchMode : std::uint8_t {
  kInotify,  // kernel events for every directory that matters
  kPoll,     // stat() every poll_interval (possibly helped by events for some directories)
};

// Watches one manifest path on a background thread; see the top of this file.
//
// **Example**:
//   ManifestWatcher watcher({.path = "/etc/cortex/connectors.manifest.json"},
//                           [&registry] { reload(registry); });
//   if (Status s = watcher.start(); !s) return s;
class CORTEX_CONNECTORS_API ManifestWatcher {
 public:
  // Does not touch the filesystem; start() does. `on_change` runs on the watcher thread, one call
  // at a time; it must not call stop() (doing so only requests the stop, without waiting) and
  // should return quickly, since events that arrive meanwhile are handled after it returns.
  // Exceptions thrown by `on_change` are caught and ignored.
  ManifestWatcher(WatcherOptions options, std::function<void()> on_change);
  // Calls stop(). Must not run inside `on_change`.
  ~ManifestWatcher();
  // The moved-from watcher is left empty: start() returns kUsage, stop() does nothing, mode()
  // returns kPoll and events_seen() 0.
  ManifestWatcher(ManifestWatcher&& other) noexcept;
  // Stops this watcher first, then takes over `other`'s (running or not).
  ManifestWatcher& operator=(ManifestWatcher&& other) noexcept;
  ManifestWatcher(const ManifestWatcher&) = delete;
  ManifestWatcher& operator=(const ManifestWatcher&) = delete;

  // Sets up the watches, then starts the thread. When start() returns, every later change of the
  // path is reported. Errors: kUsage if already started, moved from, options.path is empty, a
  // duration is negative or poll_interval is zero; kIo if the eventfd or the thread cannot be
  // created. Failing to use inotify is not an error: the watcher polls instead (see mode()).
  // Durations longer than a day are cut to a day. A stopped watcher can be started again.
  [[nodiscard]] Status start();

  // Stops the thread and waits for it, unless called from the callback. Idempotent. Returns
  // within about the time the current callback (if any) takes, whatever poll_interval is; no
  // callback runs after it returns.
  void stop() noexcept;

  // The current mode of a running watcher; after stop(), the last one. kPoll before start().
  WatchMode mode() const noexcept;

  // How many times the callback was called (or is being called) so far, over all runs.
  std::uint64_t events_seen() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cortex_connectors
