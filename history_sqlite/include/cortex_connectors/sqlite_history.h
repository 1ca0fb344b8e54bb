// SqliteHistoryStore: the HistoryStore (history.h) of the optional component
// `cortex_connectors::history_sqlite`, one SQLite database file in a state directory.
//
// The database runs in WAL mode with synchronous=FULL; each record() and prune() is one
// transaction, so a process killed at any point leaves the previous or the new state, never a
// torn one. Another process may read the file while one writes (the CLI's `history` commands).
//
// One store, one writer, one manifest: a writable open holds an exclusive lock (flock(2)) on
// `<path>.lock` for the store's life, so a second process (or a second writable open in this
// one) is refused instead of interleaving its versions. A store records the manifest it belongs
// to; an open for another manifest is refused, so two servers with different manifests never
// share a history.
//
// Thread-safety: one connection, serialised by an internal mutex; any thread may call.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "cortex_connectors/export.h"
#include "cortex_connectors/history.h"

namespace cortex_connectors {

// The file name of the history database inside a state directory.
inline constexpr const char* kHistoryDatabaseName = "history.sqlite3";

// How SqliteHistoryStore::open() opens a store.
struct SqliteHistoryOptions {
  // Only read: creates nothing, takes no lock, records no manifest (the CLI's `history`
  // commands, while a server writes).
  bool read_only = false;
  // The manifest whose history this is ("": no manifest check). A store that belongs to another
  // manifest is refused; a writable open records it in a store that belongs to none yet (a new
  // one, or one written before stores recorded their manifest).
  std::string manifest_path;
};

// The form in which a store records its manifest and compares it: absolute (a relative path
// resolves against the working directory) and lexically normal ("a/./b/../m.json" is
// "a/m.json"). Symbolic links are not followed, so a manifest reached through a link that a
// deployment switches stays the same manifest.
CORTEX_CONNECTORS_HISTORY_SQLITE_API std::string normalize_manifest_path(const std::string& path);

class CORTEX_CONNECTORS_HISTORY_SQLITE_API SqliteHistoryStore final : public HistoryStore {
 public:
  // Opens (creating it and its tables unless read-only) the database at `path`; a writable open
  // of a file (not ":memory:") takes the lock on `<path>.lock` and writes its pid there. Errors
  // (kIo) when the file or the lock file cannot be opened or created, the file is not a history
  // database (corrupt, or another kind of file), or was written by a newer schema; (kUsage)
  // when the store belongs to another manifest (the message names both), or another process,
  // or another open in this one, holds the lock (the message names the holder's pid). Nothing
  // is written to a store that is refused. Each message names the file and the reason.
  static Result<std::unique_ptr<SqliteHistoryStore>> open(const std::string& path,
                                                          const SqliteHistoryOptions& options);
  static Result<std::unique_ptr<SqliteHistoryStore>> open(const std::string& path,
                                                          bool read_only = false) {
    return open(path, SqliteHistoryOptions{read_only, {}});
  }
  ~SqliteHistoryStore() override;
  SqliteHistoryStore(const SqliteHistoryStore&) = delete;
  SqliteHistoryStore& operator=(const SqliteHistoryStore&) = delete;

  std::string name() const override { return "sqlite"; }
  Status record(const HistoryEntry& entry) override;
  Result<std::uint64_t> latest_version() override;
  Result<HistoryEntry> load(std::uint64_t version) override;
  Result<std::vector<HistoryInfo>> list() override;
  Result<std::size_t> prune(const RetentionPolicy& policy,
                            std::chrono::system_clock::time_point now) override;
  Result<std::uint64_t> reserved_version() override;
  Status reserve(std::uint64_t version) override;

  const std::string& path() const noexcept { return path_; }
  // The manifest the store belongs to (normalize_manifest_path()), "" when none: as read at
  // open, or as recorded by it.
  const std::string& manifest_path() const noexcept { return manifest_path_; }

 private:
  struct Db;
  SqliteHistoryStore(std::string path, std::string manifest_path, std::unique_ptr<Db> db);

  std::string path_;
  std::string manifest_path_;
  std::mutex mutex_;
  std::unique_ptr<Db> db_;
};

}  // namespace cortex_connectors
