#include "cortex_connectors/sqlite_history.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

namespace cortex_connectors {

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS snapshots (
  version      INTEGER PRIMARY KEY,
  content_hash TEXT    NOT NULL,
  path         TEXT    NOT NULL,
  loaded_at_us INTEGER NOT NULL,
  manifest     BLOB    NOT NULL,
  payload      BLOB    NOT NULL,
  signature    TEXT    NOT NULL,
  signatures   TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
)sql";

// The meta row naming the manifest a store belongs to. Its value is a path; the column's
// INTEGER affinity keeps it as TEXT, since an absolute path (it begins with '/') never reads as
// a number.
constexpr const char* kManifestKey = "manifest";

std::int64_t to_us(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_us(std::int64_t us) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(us)));
}

// A prepared statement, finalised on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  int rc() const { return rc_; }
  sqlite3_stmt* get() const { return stmt_; }
  void bind(int i, std::int64_t v) { note(sqlite3_bind_int64(stmt_, i, v)); }
  void bind_text(int i, std::string_view v) {
    note(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  void bind_blob(int i, std::string_view v) {
    note(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() {
    if (rc_ != SQLITE_OK) return rc_;
    return sqlite3_step(stmt_);
  }
  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }

 private:
  void note(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
  }
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

}  // namespace

struct SqliteHistoryStore::Db {
  sqlite3* handle = nullptr;
  int lock_fd = -1;  // holds the writer's flock(2) on `<path>.lock`
  ~Db() {
    sqlite3_close_v2(handle);
    if (lock_fd >= 0) ::close(lock_fd);  // releases the lock once the database is closed
  }
};

namespace {

Error db_error(const std::string& path, sqlite3* db, int rc, std::string_view what) {
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error{
      ErrorCode::kIo,
      fmt::format("[brAInwav] history store {}: {}: {} ({})", path, what, msg, sqlite3_errstr(rc)),
      {},
      {}};
}

int exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

constexpr const char* kOneStorePerServer =
    "give each server its own state directory (--state-dir or CONNECTORS_STATE_DIR)";

Error belongs_to_another(const std::string& path, const std::string& owner,
                         const std::string& wanted) {
  return Error{ErrorCode::kUsage,
               fmt::format("[brAInwav] history store {} belongs to the manifest {}, not {}: {}; "
                           "if that manifest has moved here, move the store aside to start a "
                           "new history",
                           path, owner, wanted, kOneStorePerServer),
               {},
               {}};
}

// The pid the holder of a lock file wrote into it, or "".
std::string lock_holder(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) pid.push_back(buf[i]);
  return pid;
}

// Takes the writer's lock of the store at `path`: the descriptor holding it, or -1 with `busy`
// set (and `holder`, its pid when known) when another open holds it.
Result<int> take_writer_lock(const std::string& path, bool& busy, std::string& holder) {
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    busy = fd >= 0 && err == EWOULDBLOCK;
    if (busy) holder = lock_holder(fd);
    if (fd >= 0) ::close(fd);
    if (busy) return -1;
    return Error{ErrorCode::kIo,
                 fmt::format("[brAInwav] history store {}: cannot lock {}: {}", path, lock_path,
                             std::strerror(err)),
                 {},
                 {}};
  }
  // Who holds it, for the message of the next one that tries. Best effort. Written over the
  // previous holder's pid, then cut to length: truncating to 0 first frees the file's block and
  // costs ~0.2 ms on ext4 at every start.
  const std::string pid = fmt::format("{}\n", ::getpid());
  const auto size = static_cast<off_t>(pid.size());
  const bool noted = ::pwrite(fd, pid.data(), pid.size(), 0) == static_cast<ssize_t>(pid.size()) &&
                     ::ftruncate(fd, size) == 0;
  (void)noted;
  return fd;
}

// The manifest recorded in a store of the current schema, "" when none.
Result<std::string> read_owner(const std::string& path, sqlite3* db) {
  Statement s(db, "SELECT value FROM meta WHERE key = ?1");
  s.bind_text(1, kManifestKey);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return db_error(path, db, rc, "not a readable history database");
  return s.text(0);
}

}  // namespace

std::string normalize_manifest_path(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  if (ec) absolute = path;  // no working directory: the path as given
  return absolute.lexically_normal().string();
}

SqliteHistoryStore::SqliteHistoryStore(std::string path, std::string manifest_path,
                                       std::unique_ptr<Db> db)
    : path_(std::move(path)), manifest_path_(std::move(manifest_path)), db_(std::move(db)) {}

SqliteHistoryStore::~SqliteHistoryStore() = default;

Result<std::unique_ptr<SqliteHistoryStore>> SqliteHistoryStore::open(
    const std::string& path, const SqliteHistoryOptions& options) {
  const bool read_only = options.read_only;
  const std::string wanted = normalize_manifest_path(options.manifest_path);
  auto db = std::make_unique<Db>();
  // The lock first: nothing below writes unless this open holds it.
  if (!read_only && !path.empty() && path != ":memory:") {
    bool busy = false;
    std::string holder;
    auto fd = take_writer_lock(path, busy, holder);
    if (!fd) return std::move(fd).error();
    if (busy) {
      // Whose store it is decides the message: another manifest's, or this one's in use.
      std::string owner;
      if (auto peek = open(path, SqliteHistoryOptions{true, {}})) owner = (*peek)->manifest_path();
      if (!wanted.empty() && !owner.empty() && owner != wanted) {
        return belongs_to_another(path, owner, wanted);
      }
      return Error{ErrorCode::kUsage,
                   fmt::format("[brAInwav] history store {} is in use by another process{}: one "
                               "writer per store; {}, or stop the other one",
                               path, holder.empty() ? "" : fmt::format(" (pid {})", holder),
                               kOneStorePerServer),
                   {},
                   {}};
    }
    db->lock_fd = *fd;
  }
  const int flags =
      (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db->handle, flags, nullptr);
  if (rc != SQLITE_OK) return db_error(path, db->handle, rc, "cannot open");
  sqlite3_busy_timeout(db->handle, 5000);
  // Closing leaves the WAL for the next open to fold in: a checkpoint (with its fsyncs) would
  // hold up the server's exit, and WAL recovery is as safe.
  sqlite3_db_config(db->handle, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  sqlite3_extended_result_codes(db->handle, 1);
  // The first statements read the header: a file that is not a database fails here.
  std::int64_t schema = 0;
  {
    Statement version(db->handle, "PRAGMA user_version");
    rc = version.step();
    if (rc != SQLITE_ROW) return db_error(path, db->handle, rc, "not a readable history database");
    schema = version.int64(0);
  }
  if (schema > kSchemaVersion) {
    return Error{ErrorCode::kIo,
                 fmt::format("[brAInwav] history store {}: schema {} is newer than this "
                             "program's ({})",
                             path, schema, kSchemaVersion),
                 {},
                 {}};
  }
  std::string owner;
  if (schema == kSchemaVersion) {
    auto recorded = read_owner(path, db->handle);
    if (!recorded) return std::move(recorded).error();
    owner = std::move(*recorded);
  }
  if (!wanted.empty() && !owner.empty() && owner != wanted) {
    return belongs_to_another(path, owner, wanted);
  }
  if (!read_only) {
    // WAL: readers (the CLI) never block the writer; FULL: a commit is on disk when it returns.
    {
      Statement wal(db->handle, "PRAGMA journal_mode=WAL");
      rc = wal.step();
      if (rc != SQLITE_ROW) return db_error(path, db->handle, rc, "cannot enable WAL");
    }
    if ((rc = exec(db->handle, "PRAGMA synchronous=FULL")) != SQLITE_OK) {
      return db_error(path, db->handle, rc, "cannot create the tables");
    }
    // An existing store of this schema that names its manifest is only read here: no write (and
    // fsync) at start-up. A new one gets its tables, schema version and manifest in one
    // transaction: one commit (one fsync of the log, not one per statement), and never a store
    // with tables but no version. An older store without a manifest adopts this one, once.
    const bool create = schema != kSchemaVersion;
    const bool adopt = !wanted.empty() && owner.empty();
    if (create || adopt) {
      // Closing the handle rolls back a transaction left open.
      if ((rc = exec(db->handle, "BEGIN IMMEDIATE")) != SQLITE_OK ||
          (create &&
           (rc = exec(db->handle,
                      fmt::format("{}PRAGMA user_version={};", kSchema, kSchemaVersion).c_str())) !=
               SQLITE_OK)) {
        return db_error(path, db->handle, rc, "cannot create the tables");
      }
      if (adopt) {
        Statement insert(db->handle, "INSERT INTO meta (key, value) VALUES (?1, ?2)");
        insert.bind_text(1, kManifestKey);
        insert.bind_text(2, wanted);
        if ((rc = insert.step()) != SQLITE_DONE) {
          return db_error(path, db->handle, rc, "cannot record the manifest");
        }
      }  // finalised before the commit
      if (adopt) owner = wanted;
      if ((rc = exec(db->handle, "COMMIT")) != SQLITE_OK) {
        return db_error(path, db->handle, rc, "cannot create the tables");
      }
    }
  }
  // Reading the tables proves the schema (and, for a damaged file, usually fails here).
  Statement probe(db->handle, "SELECT count(*) FROM snapshots");
  rc = probe.step();
  if (rc != SQLITE_ROW) return db_error(path, db->handle, rc, "not a readable history database");
  return std::unique_ptr<SqliteHistoryStore>(
      new SqliteHistoryStore(path, std::move(owner), std::move(db)));
}

Status SqliteHistoryStore::record(const HistoryEntry& e) {
  std::lock_guard lock(mutex_);
  // One statement is one transaction: the row is there whole or not at all.
  Statement s(db_->handle,
              "INSERT OR IGNORE INTO snapshots (version, content_hash, path, loaded_at_us, "
              "manifest, payload, signature, signatures) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  s.bind(1, static_cast<std::int64_t>(e.version));
  s.bind_text(2, e.content_hash);
  s.bind_text(3, e.path);
  s.bind(4, to_us(e.loaded_at));
  s.bind_blob(5, e.manifest);
  s.bind_blob(6, e.payload);
  s.bind_text(7, e.signature);
  s.bind_text(8, e.signatures);
  const int rc = s.step();
  if (rc != SQLITE_DONE) return db_error(path_, db_->handle, rc, "cannot record");
  // Copy the entry into the database file and empty the write-ahead log: otherwise the next
  // process to open the store replays the whole log (~8.5 MB for an entry at 10 000 connectors)
  // before it can listen, and reads the entry back through the log's index. Best effort: a
  // reader (the CLI) may hold the log; the next record tries again.
  (void)sqlite3_wal_checkpoint_v2(db_->handle, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                  nullptr);
  return {};
}

Result<std::uint64_t> SqliteHistoryStore::latest_version() {
  std::lock_guard lock(mutex_);
  Statement s(db_->handle, "SELECT coalesce(max(version), 0) FROM snapshots");
  const int rc = s.step();
  if (rc != SQLITE_ROW) return db_error(path_, db_->handle, rc, "cannot read");
  return static_cast<std::uint64_t>(s.int64(0));
}

Result<HistoryEntry> SqliteHistoryStore::load(std::uint64_t version) {
  std::lock_guard lock(mutex_);
  Statement s(db_->handle,
              "SELECT content_hash, path, loaded_at_us, manifest, payload, signature, signatures "
              "FROM snapshots WHERE version = ?1");
  s.bind(1, static_cast<std::int64_t>(version));
  const int rc = s.step();
  if (rc == SQLITE_DONE) {
    return Error{ErrorCode::kNotFound,
                 fmt::format("[brAInwav] version {} is not in the history", version),
                 {},
                 {}};
  }
  if (rc != SQLITE_ROW) return db_error(path_, db_->handle, rc, "cannot read");
  HistoryEntry e;
  e.version = version;
  e.content_hash = s.text(0);
  e.path = s.text(1);
  e.loaded_at = from_us(s.int64(2));
  e.manifest = s.text(3);
  e.payload = s.text(4);
  e.signature = s.text(5);
  e.signatures = s.text(6);
  return e;
}

Result<std::vector<HistoryInfo>> SqliteHistoryStore::list() {
  std::lock_guard lock(mutex_);
  Statement s(db_->handle,
              "SELECT version, content_hash, path, loaded_at_us, length(manifest), "
              "length(payload) FROM snapshots ORDER BY version");
  std::vector<HistoryInfo> out;
  int rc = 0;
  while ((rc = s.step()) == SQLITE_ROW) {
    HistoryInfo i;
    i.version = static_cast<std::uint64_t>(s.int64(0));
    i.content_hash = s.text(1);
    i.path = s.text(2);
    i.loaded_at = from_us(s.int64(3));
    i.manifest_bytes = static_cast<std::size_t>(s.int64(4));
    i.payload_bytes = static_cast<std::size_t>(s.int64(5));
    out.push_back(std::move(i));
  }
  if (rc != SQLITE_DONE) return db_error(path_, db_->handle, rc, "cannot read");
  return out;
}

Result<std::size_t> SqliteHistoryStore::prune(const RetentionPolicy& policy,
                                              std::chrono::system_clock::time_point now) {
  if (policy.max_entries == 0 && policy.max_age.count() <= 0) return std::size_t{0};
  std::lock_guard lock(mutex_);
  // The newest row always stays; below it, a row goes when it is beyond the count or too old.
  Statement s(db_->handle,
              "DELETE FROM snapshots WHERE version < (SELECT max(version) FROM snapshots) AND ("
              "(?1 > 0 AND version <= (SELECT version FROM snapshots ORDER BY version DESC "
              "LIMIT 1 OFFSET ?1)) OR (?2 > 0 AND loaded_at_us < ?3))");
  s.bind(1, static_cast<std::int64_t>(policy.max_entries));
  s.bind(2, static_cast<std::int64_t>(policy.max_age.count()));
  s.bind(3, to_us(now - policy.max_age));
  const int rc = s.step();
  if (rc != SQLITE_DONE) return db_error(path_, db_->handle, rc, "cannot prune");
  return static_cast<std::size_t>(sqlite3_changes(db_->handle));
}

Result<std::uint64_t> SqliteHistoryStore::reserved_version() {
  std::lock_guard lock(mutex_);
  Statement s(db_->handle,
              "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'reserved'), 0), "
              "coalesce((SELECT max(version) FROM snapshots), 0))");
  const int rc = s.step();
  if (rc != SQLITE_ROW) return db_error(path_, db_->handle, rc, "cannot read");
  return static_cast<std::uint64_t>(s.int64(0));
}

Status SqliteHistoryStore::reserve(std::uint64_t version) {
  std::lock_guard lock(mutex_);
  Statement s(db_->handle,
              "INSERT INTO meta (key, value) VALUES ('reserved', ?1) "
              "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)");
  s.bind(1, static_cast<std::int64_t>(version));
  const int rc = s.step();
  if (rc != SQLITE_DONE) return db_error(path_, db_->handle, rc, "cannot reserve versions");
  return {};
}

}  // namespace cortex_connectors
