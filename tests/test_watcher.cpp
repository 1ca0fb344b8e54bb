#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "cortex_connectors/watcher.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
namespace fs = std::filesystem;
using cc::test::TempDir;
using cc::test::write_file;
using std::chrono::milliseconds;

namespace {

// How long a test waits for an expected callback; never reached unless the test fails.
constexpr milliseconds kTimeout{5000};
// What Recorder reads when the path does not exist.
constexpr std::string_view kMissing = "<missing>";

// The content of `path`, or kMissing. Runs on the watcher thread, so it must not use Catch2.
std::string content_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::string(kMissing);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Counts callbacks and records what each read, as a Registry would reread the manifest.
class Recorder {
 public:
  explicit Recorder(fs::path path) : path_(std::move(path)) {}

  std::function<void()> callback() {
    return [this] { record(); };
  }

  void record() {
    std::string content = content_of(path_);
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(std::move(content));
    }
    cv_.notify_all();
  }

  // The number of callbacks so far.
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return seen_.size();
  }

  // What every callback read so far, for failure messages.
  std::string history() const {
    std::lock_guard lock(mutex_);
    std::string out = std::to_string(seen_.size()) + " callback(s):";
    for (const auto& s : seen_) out += " \"" + s + "\"";
    return out;
  }

  // Waits until callback number `from` or a later one read `content`.
  bool wait_for(std::string_view content, std::size_t from) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kTimeout, [&] {
      for (std::size_t i = from; i < seen_.size(); ++i) {
        if (seen_[i] == content) return true;
      }
      return false;
    });
  }

 private:
  const fs::path path_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> seen_;
};

// Requires that a callback numbered `from` or later reads `content` within kTimeout.
#define REQUIRE_SEEN(recorder, content, from)                              \
  do {                                                                     \
    const bool require_seen_ok_ = (recorder).wait_for(content, from);      \
    INFO("waiting for \"" << (content) << "\"; " << (recorder).history()); \
    REQUIRE(require_seen_ok_);                                             \
  } while (false)

cc::WatcherOptions options_for(const fs::path& path) {
  cc::WatcherOptions options;
  options.path = path.string();
  return options;
}

// O_TRUNC, then one write(2) per chunk.
void write_in_place(const fs::path& path, std::initializer_list<std::string_view> chunks) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  REQUIRE(fd >= 0);
  for (const std::string_view chunk : chunks) {
    REQUIRE(::write(fd, chunk.data(), chunk.size()) == static_cast<ssize_t>(chunk.size()));
  }
  REQUIRE(::close(fd) == 0);
}

// An editor's save: a temporary file in the same directory, renamed over `path`.
void replace_atomically(const fs::path& path, std::string_view content) {
  const fs::path tmp =
      path.parent_path() / std::string(".").append(path.filename().string()).append(".swp");
  write_file(tmp, content);
  fs::rename(tmp, path);
}

// Points the symlink `link` at `target` atomically: a new link "<link>_tmp", renamed over it.
void swap_symlink(const fs::path& link, const fs::path& target) {
  const fs::path tmp = link.parent_path() / (link.filename().string() + "_tmp");
  fs::create_symlink(target, tmp);
  fs::rename(tmp, link);
}

constexpr std::string_view kConfigMapKey = "connectors.manifest.json";

// Lays out a ConfigMap volume as the kubelet does: <dir>/<stamp>/<key>, ..data -> <stamp>,
// <key> -> ..data/<key>.
void make_config_map(const fs::path& dir, const std::string& stamp, std::string_view content) {
  fs::create_directory(dir / stamp);
  write_file(dir / stamp / kConfigMapKey, content);
  fs::create_symlink(stamp, dir / "..data");
  fs::create_symlink(fs::path("..data") / kConfigMapKey, dir / kConfigMapKey);
}

// Updates a ConfigMap volume as the kubelet does: a new timestamped directory, ..data_tmp pointing
// at it renamed over ..data, then removal of the old directory.
void update_config_map(const fs::path& dir, const std::string& old_stamp, const std::string& stamp,
                       std::string_view content) {
  fs::create_directory(dir / stamp);
  write_file(dir / stamp / kConfigMapKey, content);
  swap_symlink(dir / "..data", stamp);
  fs::remove_all(dir / old_stamp);
}

}  // namespace

TEST_CASE("an editor's rename over the path is seen", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  Recorder recorder(path);
  cc::ManifestWatcher watcher(options_for(path), recorder.callback());
  REQUIRE_OK(watcher.start());
  CHECK(watcher.mode() == cc::WatchMode::kInotify);

  auto before = recorder.count();
  replace_atomically(path, "v2");
  REQUIRE_SEEN(recorder, "v2", before);

  // The watch is on the directory, so it survives the inode change.
  before = recorder.count();
  replace_atomically(path, "v3");
  REQUIRE_SEEN(recorder, "v3", before);
  watcher.stop();
  CHECK(watcher.events_seen() == recorder.count());
}

TEST_CASE("other files in the directory are ignored", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  Recorder recorder(path);
  cc::ManifestWatcher watcher(options_for(path), recorder.callback());
  REQUIRE_OK(watcher.start());
  REQUIRE(watcher.mode() == cc::WatchMode::kInotify);
  // A log file, a lock file and a backup next to the manifest: nothing to reload.
  for (int i = 0; i < 20; ++i) {
    write_file(dir / "server.log", std::string(static_cast<std::size_t>(i) + 1, 'x'));
    write_file(dir / "connectors.manifest.json.bak", "old");
    fs::remove(dir / "connectors.manifest.json.bak");
    std::this_thread::sleep_for(milliseconds(10));
  }
  std::this_thread::sleep_for(milliseconds(300));  // several debounce periods
  CHECK(watcher.events_seen() == 0);
  CHECK(recorder.count() == 0);
  // The manifest itself still is.
  write_in_place(path, {"v2"});
  REQUIRE_SEEN(recorder, "v2", 0);
}

TEST_CASE("an in-place truncate and rewrite is seen", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  Recorder recorder(path);
  cc::ManifestWatcher watcher(options_for(path), recorder.callback());
  REQUIRE_OK(watcher.start());

  const auto before = recorder.count();
  write_in_place(path, {"{\"part\": ", "1, ", "\"done\": true}"});
  REQUIRE_SEEN(recorder, R"({"part": 1, "done": true})", before);
}

TEST_CASE("deleting and re-creating the file are both seen", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  Recorder recorder(path);
  cc::ManifestWatcher watcher(options_for(path), recorder.callback());
  REQUIRE_OK(watcher.start());

  auto before = recorder.count();
  fs::remove(path);
  REQUIRE_SEEN(recorder, kMissing, before);

  before = recorder.count();
  write_file(path, "v2");
  REQUIRE_SEEN(recorder, "v2", before);
  CHECK(watcher.mode() == cc::WatchMode::kInotify);
}

TEST_CASE("a Kubernetes ConfigMap update (..data symlink swap) is seen", "[watcher]") {
  TempDir dir;
  make_config_map(dir.path(), "..2026_11_27_01", "v1");
  const fs::path path = dir / kConfigMapKey;
  REQUIRE(content_of(path) == "v1");
  Recorder recorder(path);
  cc::ManifestWatcher watcher(options_for(path), recorder.callback());
  REQUIRE_OK(watcher.start());
  CHECK(watcher.mode() == cc::WatchMode::kInotify);

  auto before = recorder.count();
  update_config_map(dir.path(), "..2026_11_27_01", "..2026_11_27_02", "v2");
  REQUIRE_SEEN(recorder, "v2", before);

  // The old timestamped directory (watched as the target's directory) is gone: the next update
  // must still be seen.
  before = recorder.count();
  update_config_map(dir.path(), "..2026_11_27_02", "..2026_11_27_03", "v3");
  REQUIRE_SEEN(recorder, "v3", before);
  CHECK(watcher.mode() == cc::WatchMode::kInotify);
}

TEST_CASE("a symlink's target in another directory is watched, and re-resolved", "[watcher]") {
  TempDir link_dir;
  TempDir target_dir;
  TempDir other_target_dir;
  const fs::path target = target_dir / "real.json";
  const fs::path other_target = other_target_dir / "other.json";
  write_file(target, "v1");
  write_file(other_target, "v3");
  const fs::path path = link_dir / "connectors.manifest.json";
  fs::create_symlink(target, path);
  Recorder recorder(path);
  cc::ManifestWatcher watcher(options_for(path), recorder.callback());
  REQUIRE_OK(watcher.start());
  CHECK(watcher.mode() == cc::WatchMode::kInotify);

  SECTION("rewritten in place, then retargeted, then the new target rewritten") {
    auto before = recorder.count();
    write_in_place(target, {"v2"});  // nothing happens in link_dir
    REQUIRE_SEEN(recorder, "v2", before);

    before = recorder.count();
    swap_symlink(path, other_target);
    REQUIRE_SEEN(recorder, "v3", before);

    before = recorder.count();
    write_in_place(other_target, {"v4"});  // seen only if the new target's directory is watched
    REQUIRE_SEEN(recorder, "v4", before);
  }
  SECTION("replaced by a rename in the target's directory") {
    const auto before = recorder.count();
    replace_atomically(target, "v2");
    REQUIRE_SEEN(recorder, "v2", before);
  }
}

TEST_CASE("a burst of writes gives few callbacks, at least one after the last", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  Recorder recorder(path);
  cc::ManifestWatcher watcher(options_for(path), recorder.callback());
  REQUIRE_OK(watcher.start());

  constexpr int kWrites = 50;
  for (int i = 0; i < kWrites; ++i) write_in_place(path, {"burst-" + std::to_string(i)});
  REQUIRE_SEEN(recorder, "burst-" + std::to_string(kWrites - 1), 0);
  watcher.stop();
  INFO(recorder.history());
  CHECK(recorder.count() >= 1);
  CHECK(recorder.count() <= 5);
  CHECK(watcher.events_seen() == recorder.count());
}

TEST_CASE("max_delay bounds the wait during a continuous stream of writes", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v0");
  Recorder recorder(path);
  auto options = options_for(path);
  options.debounce = milliseconds(400);  // never quiet that long while the stream runs
  options.max_delay = milliseconds(100);
  cc::ManifestWatcher watcher(options, recorder.callback());
  REQUIRE_OK(watcher.start());

  // A write every 20 ms until the first callback: without max_delay it would never come.
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  int writes = 0;
  while (recorder.count() == 0 && std::chrono::steady_clock::now() < deadline) {
    write_in_place(path, {std::string("v").append(std::to_string(++writes))});
    std::this_thread::sleep_for(milliseconds(20));  // paces the stream
  }
  CHECK(recorder.count() >= 1);
}

TEST_CASE("force_poll sees a change by stat()", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  Recorder recorder(path);
  auto options = options_for(path);
  options.force_poll = true;
  options.poll_interval = milliseconds(20);
  cc::ManifestWatcher watcher(options, recorder.callback());
  REQUIRE_OK(watcher.start());
  CHECK(watcher.mode() == cc::WatchMode::kPoll);

  auto before = recorder.count();
  write_in_place(path, {"version 2"});  // another size: seen even within one timestamp tick
  REQUIRE_SEEN(recorder, "version 2", before);

  before = recorder.count();
  replace_atomically(path, "version 3");  // another inode
  REQUIRE_SEEN(recorder, "version 3", before);

  before = recorder.count();
  fs::remove(path);
  REQUIRE_SEEN(recorder, kMissing, before);
  CHECK(watcher.mode() == cc::WatchMode::kPoll);
}

TEST_CASE("a directory missing at start is polled for, then watched", "[watcher]") {
  TempDir dir;
  const fs::path sub = dir / "config";
  const fs::path path = sub / "connectors.manifest.json";
  Recorder recorder(path);
  auto options = options_for(path);
  options.poll_interval = milliseconds(20);
  cc::ManifestWatcher watcher(options, recorder.callback());
  REQUIRE_OK(watcher.start());
  CHECK(watcher.mode() == cc::WatchMode::kPoll);

  auto before = recorder.count();
  fs::create_directory(sub);
  write_file(path, "v1");
  REQUIRE_SEEN(recorder, "v1", before);
  CHECK(watcher.mode() == cc::WatchMode::kInotify);

  before = recorder.count();
  write_in_place(path, {"v2"});
  REQUIRE_SEEN(recorder, "v2", before);

  SECTION("and when the directory is deleted and re-created") {
    before = recorder.count();
    fs::remove_all(sub);
    REQUIRE_SEEN(recorder, kMissing, before);

    before = recorder.count();
    fs::create_directory(sub);
    write_file(path, "v3");
    REQUIRE_SEEN(recorder, "v3", before);
    CHECK(watcher.mode() == cc::WatchMode::kInotify);

    before = recorder.count();
    replace_atomically(path, "v4");
    REQUIRE_SEEN(recorder, "v4", before);
  }
}

TEST_CASE("stop() returns promptly and no callback runs after it returns", "[watcher]") {
  const bool force_poll = GENERATE(false, true);
  CAPTURE(force_poll);
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  Recorder recorder(path);
  std::atomic<bool> stopped{false};
  std::atomic<int> late{0};
  auto options = options_for(path);
  options.debounce = milliseconds(100);
  options.force_poll = force_poll;
  options.poll_interval = std::chrono::hours(1);  // stop() must not wait for the next poll
  cc::ManifestWatcher watcher(options, [&] {
    if (stopped.load()) late.fetch_add(1);
    recorder.record();
  });
  REQUIRE_OK(watcher.start());

  write_in_place(path, {"v2"});  // a callback is pending when stop() is called
  const auto t0 = std::chrono::steady_clock::now();
  watcher.stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  stopped.store(true);
  CHECK(took < std::chrono::seconds(1));
  CHECK(watcher.events_seen() == recorder.count());
  watcher.stop();  // idempotent

  // A second watcher with a longer debounce witnesses the next change: by the time it fires, the
  // stopped one would have fired too.
  Recorder witness(path);
  auto witness_options = options_for(path);
  witness_options.debounce = milliseconds(300);
  cc::ManifestWatcher witness_watcher(witness_options, witness.callback());
  REQUIRE_OK(witness_watcher.start());
  write_in_place(path, {"v3"});
  REQUIRE_SEEN(witness, "v3", 0);
  CHECK(late.load() == 0);
  CHECK(watcher.events_seen() == recorder.count());
}

TEST_CASE("start() refuses a second start, an empty path and bad durations", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  Recorder recorder(path);
  cc::ManifestWatcher watcher(options_for(path), recorder.callback());
  REQUIRE_OK(watcher.start());
  const cc::Status again = watcher.start();
  REQUIRE_FALSE(again);
  CHECK(again.error().code == cc::ErrorCode::kUsage);
  CHECK(again.error().message.starts_with("[brAInwav] "));

  // Stopped, it can start again and still sees changes.
  watcher.stop();
  REQUIRE_OK(watcher.start());
  const auto before = recorder.count();
  replace_atomically(path, "v2");
  REQUIRE_SEEN(recorder, "v2", before);

  cc::ManifestWatcher no_path(cc::WatcherOptions{}, [] {});
  const cc::Status empty = no_path.start();
  REQUIRE_FALSE(empty);
  CHECK(empty.error().code == cc::ErrorCode::kUsage);

  auto options = options_for(path);
  options.poll_interval = milliseconds(0);
  cc::ManifestWatcher zero_interval(options, [] {});
  const cc::Status zero = zero_interval.start();
  REQUIRE_FALSE(zero);
  CHECK(zero.error().code == cc::ErrorCode::kUsage);
}

TEST_CASE("a moved watcher keeps watching, the moved-from one refuses to start", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  Recorder recorder(path);
  cc::ManifestWatcher first(options_for(path), recorder.callback());
  REQUIRE_OK(first.start());
  cc::ManifestWatcher second(std::move(first));

  const auto before = recorder.count();
  replace_atomically(path, "v2");
  REQUIRE_SEEN(recorder, "v2", before);
  CHECK(second.mode() == cc::WatchMode::kInotify);

  const cc::Status moved = first.start();  // NOLINT: use after move, on purpose
  REQUIRE_FALSE(moved);
  CHECK(moved.error().code == cc::ErrorCode::kUsage);
  first.stop();  // a no-op

  // Assigning over a running watcher stops it first.
  cc::ManifestWatcher third(options_for(path), [] {});
  REQUIRE_OK(third.start());
  third = std::move(second);
  CHECK(third.mode() == cc::WatchMode::kInotify);
}

TEST_CASE("a callback may request stop(), and exceptions from it are contained", "[watcher]") {
  TempDir dir;
  const fs::path path = dir / "connectors.manifest.json";
  write_file(path, "v1");
  std::mutex mutex;
  std::condition_variable cv;
  int calls = 0;
  cc::ManifestWatcher* self = nullptr;
  cc::ManifestWatcher watcher(options_for(path), [&] {
    {
      std::lock_guard lock(mutex);
      ++calls;
    }
    cv.notify_all();
    self->stop();  // only requests the stop
    throw std::runtime_error("ignored");
  });
  self = &watcher;
  REQUIRE_OK(watcher.start());
  replace_atomically(path, "v2");
  {
    std::unique_lock lock(mutex);
    REQUIRE(cv.wait_for(lock, kTimeout, [&] { return calls == 1; }));
  }
  watcher.stop();  // joins the thread that stopped itself
  CHECK(watcher.events_seen() == 1);
  REQUIRE_OK(watcher.start());  // and a restart works
}
