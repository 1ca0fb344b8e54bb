// SqliteHistoryStore: the HistoryStore (history.h) of the optional component
// `cortex_connectors::history_sqlite`, one SQLite database file in a state directory.
//
// The database runs in WAL mode with synchronous=FULL; each record() and prune() is one
// transaction, so a process killed at any point leaves the previous or the new state, never a
// torn one. Another process may read the file while one writes (the CLI's `history` commands).
//
// Thread-safety: one connection, serialised by an internal mutex; any thread may call.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "cortex_connectors/history.h"

namespace cortex_connectors {

// The component is built with hidden visibility; its API is exported explicitly.
#define CORTEX_CONNECTORS_HISTORY_SQLITE_API __attribute__((visibility("default")))

// The file name of the history database inside a state directory.
inline constexpr const char* kHistoryDatabaseName = "history.sqlite3";

class CORTEX_CONNECTORS_HISTORY_SQLITE_API SqliteHistoryStore final : public HistoryStore {
 public:
  // Opens (creating it and its tables unless `read_only`) the database at `path`. Errors (kIo)
  // when the file cannot be opened or created, is not a history database (corrupt, or another
  // kind of file), or was written by a newer schema; the message names the file and the reason.
  static Result<std::unique_ptr<SqliteHistoryStore>> open(const std::string& path,
                                                          bool read_only = false);
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

 private:
  struct Db;
  SqliteHistoryStore(std::string path, std::unique_ptr<Db> db);

  std::string path_;
  std::mutex mutex_;
  std::unique_ptr<Db> db_;
};

}  // namespace cortex_connectors
