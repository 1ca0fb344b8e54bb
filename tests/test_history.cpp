// history.h and sqlite_history.h: the stores, the recorder, and the registry numbering after a
// store, with real database files.
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include <unistd.h>

#include "cortex_connectors/history.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/sqlite_history.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kKey = "history-test-key";

cc::HistoryEntry entry(std::uint64_t version, std::chrono::system_clock::time_point at) {
  cc::HistoryEntry e;
  e.version = version;
  e.content_hash = std::string(64, 'a');
  e.path = "/m.json";
  e.loaded_at = at;
  e.manifest = "manifest " + std::to_string(version);
  e.payload = R"({"v":)" + std::to_string(version) + "}";
  e.signature = "sig" + std::to_string(version);
  return e;
}

// A manifest whose payload differs for every `ttl`; generatedAt omitted when `generated_at` is
// empty (the payload then carries the time of first load).
std::string manifest(int ttl, std::string_view generated_at = "") {
  std::string text = R"({"id": "01J7X5MB4K1ZW0000000000000", "manifestVersion": "1",)";
  if (!generated_at.empty()) text += R"("generatedAt": ")" + std::string(generated_at) + "\",";
  return text + R"("connectors": [{"id": "alpha", "name": "Alpha", "version": "1",
      "endpoint": "https://a.invalid", "auth": {"type": "none"}, "scopes": ["s"],
      "ttlSeconds": )" +
         std::to_string(ttl) + "}]}";
}

std::shared_ptr<cc::HistoryStore> open_sqlite(const std::filesystem::path& path) {
  auto s = cc::SqliteHistoryStore::open(path.string());
  REQUIRE_OK(s);
  return std::shared_ptr<cc::HistoryStore>(std::move(*s));
}

// Every store behaves alike.
void check_store(cc::HistoryStore& store) {
  const auto t0 = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  CHECK(store.latest_version().value() == 0);
  CHECK(store.load(1).error().code == cc::ErrorCode::kNotFound);
  for (std::uint64_t v = 1; v <= 5; ++v) REQUIRE_OK(store.record(entry(v, t0 + v * 1h)));
  // Recorded once: a second record of a version changes nothing.
  auto again = entry(3, t0);
  again.manifest = "rewritten";
  REQUIRE_OK(store.record(again));
  auto three = store.load(3);
  REQUIRE_OK(three);
  CHECK(three->manifest == "manifest 3");
  CHECK(three->payload == R"({"v":3})");
  CHECK(three->signature == "sig3");
  CHECK(three->path == "/m.json");
  CHECK(three->loaded_at == t0 + 3h);
  CHECK(store.latest_version().value() == 5);
  auto list = store.list();
  REQUIRE_OK(list);
  REQUIRE(list->size() == 5);
  CHECK(list->front().version == 1);
  CHECK(list->back().manifest_bytes == std::string("manifest 5").size());

  // By count: the newest three stay.
  auto pruned = store.prune({3, 0s}, t0);
  REQUIRE_OK(pruned);
  CHECK(*pruned == 2);
  CHECK(store.load(2).error().code == cc::ErrorCode::kNotFound);
  REQUIRE_OK(store.load(3));
  // By age: older than 90 minutes before t0 + 5h goes, except the newest even when too old.
  CHECK(store.prune({0, 90min}, t0 + 5h).value() == 1);
  CHECK(store.list().value().size() == 2);
  CHECK(store.prune({0, 1s}, t0 + 100h).value() == 1);
  CHECK(store.list().value().size() == 1);
  CHECK(store.latest_version().value() == 5);
}

// A store whose writes fail, as a full or vanished disk makes them.
class FailingStore final : public cc::HistoryStore {
 public:
  std::string name() const override { return "failing"; }
  cc::Status record(const cc::HistoryEntry&) override {
    return cc::Error{cc::ErrorCode::kIo, "[brAInwav] disk full", {}, {}};
  }
  cc::Result<std::uint64_t> latest_version() override { return std::uint64_t{7}; }
  cc::Result<cc::HistoryEntry> load(std::uint64_t) override {
    return cc::Error{cc::ErrorCode::kNotFound, "none", {}, {}};
  }
  cc::Result<std::vector<cc::HistoryInfo>> list() override {
    return std::vector<cc::HistoryInfo>{};
  }
  cc::Result<std::size_t> prune(const cc::RetentionPolicy&,
                                std::chrono::system_clock::time_point) override {
    return std::size_t{0};
  }
};

// A memory store whose record() waits for the test: holds the recorder in the middle of a
// write, the moment a reader must still find the entry.
class GatedStore final : public cc::HistoryStore {
 public:
  std::string name() const override { return "gated"; }
  cc::Status record(const cc::HistoryEntry& e) override {
    std::unique_lock lock(mutex_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
    return inner_.record(e);
  }
  cc::Result<std::uint64_t> latest_version() override { return inner_.latest_version(); }
  cc::Result<cc::HistoryEntry> load(std::uint64_t v) override { return inner_.load(v); }
  cc::Result<std::vector<cc::HistoryInfo>> list() override { return inner_.list(); }
  cc::Result<std::size_t> prune(const cc::RetentionPolicy& p,
                                std::chrono::system_clock::time_point now) override {
    return inner_.prune(p, now);
  }
  void wait_entered() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  cc::MemoryHistoryStore inner_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
};

}  // namespace

TEST_CASE("history: the memory and SQLite stores keep, list and prune alike", "[history]") {
  SECTION("memory") {
    cc::MemoryHistoryStore store;
    check_store(store);
  }
  SECTION("sqlite") {
    cc::test::TempDir dir;
    check_store(*open_sqlite(dir / "h.sqlite3"));
    // Reopened: the same content.
    auto reopened = open_sqlite(dir / "h.sqlite3");
    CHECK(reopened->latest_version().value() == 5);
    CHECK(reopened->load(5).value().manifest == "manifest 5");
  }
}

TEST_CASE("history: a memory store bounded in bytes drops the oldest, never the newest",
          "[history]") {
  const auto now = std::chrono::system_clock::now();
  auto big = [&](std::uint64_t version, std::size_t bytes) {
    auto e = entry(version, now);
    e.manifest = std::string(bytes, 'm');
    return e;
  };
  cc::MemoryHistoryStore store(1000);
  REQUIRE_OK(store.record(big(1, 400)));
  REQUIRE_OK(store.record(big(2, 400)));
  CHECK(store.list()->size() == 2);
  REQUIRE_OK(store.record(big(3, 400)));  // 1 200 bytes and more: version 1 goes
  auto kept = store.list();
  REQUIRE_OK(kept);
  REQUIRE(kept->size() == 2);
  CHECK(store.load(1).has_value() == false);
  CHECK(store.load(2).has_value());
  REQUIRE_OK(store.record(big(4, 5000)));  // alone over the bound: still kept
  kept = store.list();
  REQUIRE(kept->size() == 1);
  CHECK(store.latest_version().value() == 4);
  // Pruning by count keeps the byte count right: room for two small entries again.
  REQUIRE_OK(store.record(big(5, 300)));
  CHECK(store.list()->size() == 1);
  REQUIRE_OK(store.record(big(6, 300)));
  CHECK(store.list()->size() == 2);
  cc::RetentionPolicy one;
  one.max_entries = 1;
  REQUIRE_OK(store.prune(one, now));
  REQUIRE_OK(store.record(big(7, 300)));
  REQUIRE_OK(store.record(big(8, 300)));
  CHECK(store.list()->size() == 3);
}

TEST_CASE("history: SQLite reservations survive reopening", "[history]") {
  cc::test::TempDir dir;
  {
    auto store = open_sqlite(dir / "h.sqlite3");
    CHECK(store->reserved_version().value() == 0);
    REQUIRE_OK(store->reserve(40));
    REQUIRE_OK(store->reserve(10));  // never lowers
  }
  auto store = open_sqlite(dir / "h.sqlite3");
  CHECK(store->reserved_version().value() == 40);
  REQUIRE_OK(store->record(entry(50, std::chrono::system_clock::now())));
  CHECK(store->reserved_version().value() == 50);
}

TEST_CASE("history: SQLite empties its write-ahead log after each record", "[history]") {
  // A restart would replay the log (the size of the entry) before the server listens.
  cc::test::TempDir dir;
  auto store = open_sqlite(dir / "h.sqlite3");
  auto big = entry(1, std::chrono::system_clock::now());
  big.manifest = std::string(2 << 20, 'm');
  big.payload = std::string(2 << 20, 'p');
  REQUIRE_OK(store->record(big));
  const auto wal = dir / "h.sqlite3-wal";
  CHECK((!std::filesystem::exists(wal) || std::filesystem::file_size(wal) == 0));
  CHECK(std::filesystem::file_size(dir / "h.sqlite3") > (4u << 20));
  auto back = store->load(1);
  REQUIRE_OK(back);
  CHECK(back->payload == big.payload);
}

TEST_CASE("history: SQLite refuses a file that is not a history database", "[history]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "garbage", std::string(8192, 'x'));
  auto garbage = cc::SqliteHistoryStore::open((dir / "garbage").string());
  REQUIRE_FALSE(garbage);
  CHECK(garbage.error().code == cc::ErrorCode::kIo);
  CHECK(garbage.error().message.find((dir / "garbage").string()) != std::string::npos);
  // A directory where the file should be.
  std::filesystem::create_directory(dir / "dir");
  CHECK_FALSE(cc::SqliteHistoryStore::open((dir / "dir").string()));
  // Read-only open of a missing file does not create it.
  CHECK_FALSE(cc::SqliteHistoryStore::open((dir / "missing").string(), true));
  CHECK_FALSE(std::filesystem::exists(dir / "missing"));
}

TEST_CASE("history: the recorder numbers after every stored and reserved version", "[history]") {
  cc::test::TempDir dir;
  {
    auto store = open_sqlite(dir / "h.sqlite3");
    REQUIRE_OK(store->record(entry(3, std::chrono::system_clock::now())));
    cc::HistoryRecorderOptions o;
    o.reserve_block = 16;
    cc::HistoryRecorder recorder(store, o);
    CHECK(recorder.next_version() == 4);
    const auto resumable = recorder.take_resumable();
    REQUIRE(resumable);
    CHECK(resumable->version == 3);
    CHECK_FALSE(recorder.take_resumable());  // handed over once, no copy kept
  }
  // That recorder handed out no version, so it reserved none (no write at start-up).
  CHECK(open_sqlite(dir / "h.sqlite3")->reserved_version().value() == 3);
  {
    auto store = open_sqlite(dir / "h.sqlite3");
    cc::HistoryRecorderOptions o;
    o.reserve_block = 16;
    auto recorder = std::make_shared<cc::HistoryRecorder>(store, o);
    cc::RegistryOptions ro;
    ro.signing_key = std::string(kKey);
    ro.history = recorder;
    cc::Registry registry(ro);
    REQUIRE_OK(registry.refresh_from_text(manifest(10, "2025-01-01T00:00:00Z")));
    CHECK(registry.current()->version == 4);
    // Reserved 4..19 before version 4 reached any listener: a process killed after handing
    // them out cannot have them reused.
    CHECK(store->reserved_version().value() == 19);
  }
  auto store = open_sqlite(dir / "h.sqlite3");
  CHECK(store->reserved_version().value() == 19);
  cc::HistoryRecorder recorder(store);
  CHECK(recorder.next_version() == 20);
}

TEST_CASE("history: an ephemeral store numbers from the wall clock's milliseconds", "[history]") {
  // A server with history off keeps nothing across restarts: versions must still never go
  // backwards, so that a Last-Event-ID of an earlier process never names other content.
  const auto t0 =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'765'000'000'123));
  cc::HistoryRecorderOptions o;
  o.ephemeral = true;
  o.clock = [t0] { return t0; };
  auto recorder =
      std::make_shared<cc::HistoryRecorder>(std::make_shared<cc::MemoryHistoryStore>(), o);
  CHECK(recorder->next_version() == 1'765'000'000'123);
  CHECK_FALSE(recorder->status().degraded);  // by choice, not a failure
  cc::RegistryOptions ro;
  ro.signing_key = std::string(kKey);
  ro.history = recorder;
  cc::Registry registry(ro);
  REQUIRE_OK(registry.refresh_from_text(manifest(10, "2025-01-01T00:00:00Z")));
  CHECK(registry.current()->version == 1'765'000'000'123);
  REQUIRE_OK(registry.refresh_from_text(manifest(20, "2025-01-01T00:00:00Z")));
  CHECK(registry.current()->version == 1'765'000'000'124);
  // Without the option, the same memory store numbers from 1 (the library's default).
  cc::HistoryRecorder plain(std::make_shared<cc::MemoryHistoryStore>());
  CHECK(plain.next_version() == 1);
}

TEST_CASE("history: the registry records every published snapshot off its thread", "[history]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", manifest(10, "2025-01-01T00:00:00Z"));
  auto recorder = std::make_shared<cc::HistoryRecorder>(open_sqlite(dir / "h.sqlite3"));
  cc::RegistryOptions o;
  o.manifest_path = (dir / "m.json").string();
  o.signing_key = std::string(kKey);
  o.history = recorder;
  cc::Registry registry(o);
  REQUIRE_OK(registry.refresh());
  cc::test::write_file(dir / "m.json", manifest(20, "2025-01-01T00:00:00Z"));
  REQUIRE_OK(registry.refresh());
  recorder->flush();
  const auto snap = registry.current();
  CHECK(snap->version == 2);
  auto e = recorder->load(2);
  REQUIRE_OK(e);
  CHECK(e->manifest == manifest(20, "2025-01-01T00:00:00Z"));
  CHECK(e->payload == snap->canonical_payload());
  CHECK(e->signature == snap->signature);
  CHECK(e->content_hash == snap->content_hash);
  CHECK(cc::verify_hmac_sha256(cc::as_bytes(kKey), e->payload, e->signature));
  CHECK(recorder->list().value().size() == 2);
  CHECK(recorder->status().recorded == 2);
  CHECK(recorder->status().store == "sqlite");
}

TEST_CASE("history: a restarted registry resumes the newest snapshot or numbers after it",
          "[history]") {
  cc::test::TempDir dir;
  // No generatedAt: the payload carries the first load's time, which the resume keeps.
  cc::test::write_file(dir / "m.json", manifest(10));
  auto make = [&](std::chrono::system_clock::time_point now) {
    cc::RegistryOptions o;
    o.manifest_path = (dir / "m.json").string();
    o.signing_key = std::string(kKey);
    o.history = std::make_shared<cc::HistoryRecorder>(open_sqlite(dir / "h.sqlite3"));
    o.clock = [now] { return now; };
    return std::make_unique<cc::Registry>(o);
  };
  const auto t0 = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  std::string first_body;
  {
    auto registry = make(t0);
    REQUIRE_OK(registry->refresh());
    first_body = registry->current()->body;
    CHECK(registry->current()->version == 1);
  }
  {
    // An hour later, same manifest: the same version and the very same bytes.
    auto registry = make(t0 + 1h);
    REQUIRE_OK(registry->refresh());
    CHECK(registry->current()->version == 1);
    CHECK(registry->current()->body == first_body);
    // A change numbers after the first process's reservation, never 2.
    cc::test::write_file(dir / "m.json", manifest(20));
    REQUIRE_OK(registry->refresh());
    CHECK(registry->current()->version == 1025);
  }
  {
    // Another key signs differently: a new version, not the recorded one.
    auto store = open_sqlite(dir / "h.sqlite3");
    cc::RegistryOptions o;
    o.manifest_path = (dir / "m.json").string();
    o.signing_key = "another-key";
    o.history = std::make_shared<cc::HistoryRecorder>(store);
    cc::Registry registry(o);
    REQUIRE_OK(registry.refresh());
    CHECK(registry.current()->version > 1025);
  }
}

TEST_CASE("history: load() finds an entry being written without waiting for the write",
          "[history]") {
  // An SSE resume reads the version a client last saw while the recorder may be writing it; a
  // miss there sends a full status event where a delta was due.
  auto store = std::make_shared<GatedStore>();
  auto recorder = std::make_shared<cc::HistoryRecorder>(store);
  cc::RegistryOptions ro;
  ro.signing_key = std::string(kKey);
  ro.history = recorder;
  cc::Registry registry(ro);
  REQUIRE_OK(registry.refresh_from_text(manifest(10, "2025-01-01T00:00:00Z")));
  const auto v = registry.current()->version;
  std::future<cc::Result<cc::HistoryEntry>> pending;  // joined after the release below
  // Released on every exit, a failed REQUIRE included, so the recorder's thread can stop.
  struct Release {
    GatedStore& s;
    ~Release() { s.release(); }
  } release{*store};
  store->wait_entered();
  // Neither missed nor waiting for the write (an fsync can take half a second).
  pending = std::async(std::launch::async, [&] { return recorder->load(v); });
  REQUIRE(pending.wait_for(20s) == std::future_status::ready);
  auto during = pending.get();
  REQUIRE_OK(during);
  CHECK(during->payload == registry.current()->canonical_payload());
  CHECK(recorder->status().pending == 1);
  store->release();
  recorder->flush();
  CHECK(recorder->status().pending == 0);
  auto after = recorder->load(v);
  REQUIRE_OK(after);
  CHECK(after->manifest == manifest(10, "2025-01-01T00:00:00Z"));
}

TEST_CASE("history: a failing store degrades to memory and keeps recording", "[history]") {
  std::atomic<int> degraded_calls{0};
  cc::HistoryRecorderOptions o;
  o.on_degraded = [&](const cc::Error& e) {
    CHECK(e.message.find("disk full") != std::string::npos);
    ++degraded_calls;
  };
  auto recorder = std::make_shared<cc::HistoryRecorder>(std::make_shared<FailingStore>(), o);
  CHECK(recorder->next_version() == 8);
  cc::RegistryOptions ro;
  ro.signing_key = std::string(kKey);
  ro.history = recorder;
  cc::Registry registry(ro);
  REQUIRE_OK(registry.refresh_from_text(manifest(10, "2025-01-01T00:00:00Z")));
  REQUIRE_OK(registry.refresh_from_text(manifest(20, "2025-01-01T00:00:00Z")));
  recorder->flush();
  const auto status = recorder->status();
  CHECK(status.degraded);
  CHECK(status.store == "memory");
  CHECK(status.reason.find("disk full") != std::string::npos);
  CHECK(degraded_calls == 1);
  // Both snapshots are in memory, the first written after the failure included.
  CHECK(recorder->load(8).has_value());
  CHECK(recorder->load(9).has_value());
}

TEST_CASE("history: a SQLite store records its manifest and refuses another's", "[history]") {
  cc::test::TempDir dir;
  const auto db = (dir / "h.sqlite3").string();
  const std::string mine = (dir / "m.json").string();
  const std::string theirs = (dir / "other" / "m.json").string();
  const auto t0 = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  {
    // Recorded absolute and lexically normal, whatever the spelling.
    auto s = cc::SqliteHistoryStore::open(db, {.manifest_path = (dir / "x" / ".." / "m.json")});
    REQUIRE_OK(s);
    CHECK((*s)->manifest_path() == mine);
    REQUIRE_OK((*s)->record(entry(1, t0)));
  }
  // The same manifest, spelt otherwise: the same store.
  REQUIRE_OK(cc::SqliteHistoryStore::open(db, {.manifest_path = (dir / "." / "m.json")}));
  // Another manifest: refused, both named, the way out said, nothing written.
  auto refused = cc::SqliteHistoryStore::open(db, {.manifest_path = theirs});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == cc::ErrorCode::kUsage);
  const std::string& message = refused.error().message;
  CHECK(message.rfind("[brAInwav] ", 0) == 0);
  CHECK(message.find(db) != std::string::npos);
  CHECK(message.find(mine) != std::string::npos);
  CHECK(message.find(theirs) != std::string::npos);
  CHECK(message.find("--state-dir") != std::string::npos);
  CHECK(message.find("CONNECTORS_STATE_DIR") != std::string::npos);
  // Refused read-only too; without a manifest (an embedding that does not say) it opens.
  CHECK_FALSE(cc::SqliteHistoryStore::open(db, {.read_only = true, .manifest_path = theirs}));
  auto reader = cc::SqliteHistoryStore::open(db, true);
  REQUIRE_OK(reader);
  CHECK((*reader)->manifest_path() == mine);
  CHECK((*reader)->list().value().size() == 1);
  CHECK((*reader)->latest_version().value() == 1);
  // Relative paths resolve against the working directory.
  CHECK(cc::normalize_manifest_path("config/./m.json") ==
        (std::filesystem::current_path() / "config" / "m.json").string());
}

TEST_CASE("history: a SQLite store without a manifest adopts the first that opens it",
          "[history]") {
  // As every store written before stores recorded their manifest.
  cc::test::TempDir dir;
  const auto db = (dir / "h.sqlite3").string();
  const std::string first = (dir / "a.json").string();
  {
    auto old = open_sqlite(dir / "h.sqlite3");
    REQUIRE_OK(old->record(entry(7, std::chrono::system_clock::now())));
  }
  CHECK(cc::SqliteHistoryStore::open(db, true).value()->manifest_path().empty());
  {
    auto s = cc::SqliteHistoryStore::open(db, {.manifest_path = first});
    REQUIRE_OK(s);
    CHECK((*s)->manifest_path() == first);
    CHECK((*s)->latest_version().value() == 7);  // its history kept
  }
  CHECK(cc::SqliteHistoryStore::open(db, true).value()->manifest_path() == first);
  CHECK_FALSE(cc::SqliteHistoryStore::open(db, {.manifest_path = (dir / "b.json").string()}));
  REQUIRE_OK(cc::SqliteHistoryStore::open(db, {.manifest_path = first}));
}

TEST_CASE("history: one writer per SQLite store, and readers read while it writes", "[history]") {
  cc::test::TempDir dir;
  const auto db = (dir / "h.sqlite3").string();
  const std::string manifest_path = (dir / "m.json").string();
  // A lock file left by an earlier holder with a longer pid.
  cc::test::write_file(db + ".lock", "123456789012\n");
  {
    auto writer = cc::SqliteHistoryStore::open(db, {.manifest_path = manifest_path});
    REQUIRE_OK(writer);
    CHECK(cc::test::read_file(db + ".lock") == std::to_string(::getpid()) + "\n");
    REQUIRE_OK((*writer)->record(entry(1, std::chrono::system_clock::now())));
    // A second writer, for the same manifest or none: refused, naming the holder.
    for (const std::string& m : {manifest_path, std::string()}) {
      auto second = cc::SqliteHistoryStore::open(db, {.manifest_path = m});
      REQUIRE_FALSE(second);
      CHECK(second.error().code == cc::ErrorCode::kUsage);
      CHECK(second.error().message.find(db) != std::string::npos);
      CHECK(second.error().message.find("in use by another process (pid " +
                                        std::to_string(::getpid()) + ")") != std::string::npos);
      CHECK(second.error().message.find("--state-dir") != std::string::npos);
    }
    // For another manifest: that is what it is told, not that the store is busy.
    auto other = cc::SqliteHistoryStore::open(db, {.manifest_path = (dir / "o.json").string()});
    REQUIRE_FALSE(other);
    CHECK(other.error().message.find("belongs to the manifest " + manifest_path) !=
          std::string::npos);
    // Readers take no lock.
    auto reader = cc::SqliteHistoryStore::open(db, true);
    REQUIRE_OK(reader);
    CHECK((*reader)->list().value().size() == 1);
    // The writer still writes; the reader sees it.
    REQUIRE_OK((*writer)->record(entry(2, std::chrono::system_clock::now())));
    CHECK((*reader)->latest_version().value() == 2);
  }
  // Closed: the next writer takes it.
  auto next = cc::SqliteHistoryStore::open(db, {.manifest_path = manifest_path});
  REQUIRE_OK(next);
  CHECK((*next)->latest_version().value() == 2);
  // An in-memory database has no file to share.
  REQUIRE_OK(cc::SqliteHistoryStore::open(":memory:"));
  REQUIRE_OK(cc::SqliteHistoryStore::open(":memory:"));
}
