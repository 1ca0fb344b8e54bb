#include "cortex_connectors/watcher.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cortex_connectors {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Everything that can change what the path resolves to or its content. IN_ONLYDIR: a path that
// was a directory when resolved can become a file; never watch a file, its inode is replaced.
constexpr std::uint32_t kDirMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                   IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                   IN_MOVE_SELF | IN_ONLYDIR;
constexpr int kMaxSymlinkHops = 40;  // the kernel's MAXSYMLINKS
// Longer durations are cut to this, so that time_point arithmetic cannot overflow.
constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24);

Error usage(const char* what) {
  return Error{ErrorCode::kUsage, std::string("[brAInwav] ") + what, {}, {}};
}

Error io(const char* what, int err) {
  return Error{ErrorCode::kIo,
               std::string("[brAInwav] ") + what + ": " + std::system_category().message(err),
               {},
               {}};
}

// What poll mode compares. A missing (or unreadable) path is the default value.
struct FileState {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtim{};
  timespec ctim{};

  friend bool operator==(const FileState& a, const FileState& b) {
    return a.exists == b.exists && a.dev == b.dev && a.ino == b.ino && a.size == b.size &&
           a.mtim.tv_sec == b.mtim.tv_sec && a.mtim.tv_nsec == b.mtim.tv_nsec &&
           a.ctim.tv_sec == b.ctim.tv_sec && a.ctim.tv_nsec == b.ctim.tv_nsec;
  }
};

FileState stat_path(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return FileState{true, st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
}

// The directories whose entries decide what `path` (absolute) resolves to: its own, that of every
// hop of its symlink chain, and that of its final target. Intermediate directory symlinks are
// followed by inotify_add_watch itself. `names` gets every component of those paths: an event
// in a watched directory matters only if it names one of them (the file, a symlink hop, or a
// directory on the way, such as a ConfigMap's "..data"); other files there are ignored.
std::vector<fs::path> watch_dirs(const fs::path& path, std::set<std::string>& names) {
  names.clear();
  auto add_names = [&names](const fs::path& p) {
    for (const auto& part : p) names.insert(part.string());
  };
  std::vector<fs::path> dirs{path.parent_path()};
  add_names(path);
  fs::path current = path;
  std::error_code ec;
  for (int hop = 0; hop < kMaxSymlinkHops; ++hop) {
    const fs::path target = fs::read_symlink(current, ec);
    if (ec) break;  // not a symlink, or missing
    current = target.is_absolute() ? target : current.parent_path() / target;
    dirs.push_back(current.parent_path());
    add_names(current);
  }
  const fs::path real = fs::canonical(path, ec);
  if (!ec) {
    dirs.push_back(real.parent_path());
    add_names(real);
  }
  return dirs;
}

timespec to_timespec(Clock::duration d) {
  d = std::max(d, Clock::duration::zero());
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(d - secs);
  return timespec{static_cast<time_t>(secs.count()), static_cast<long>(nanos.count())};
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

struct ManifestWatcher::Impl {
  Impl(WatcherOptions watcher_options, std::function<void()> callback)
      : options(std::move(watcher_options)), on_change(std::move(callback)) {}
  ~Impl() { stop(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Status start();
  void stop() noexcept;

  const WatcherOptions options;
  const std::function<void()> on_change;
  std::atomic<WatchMode> mode{WatchMode::kPoll};
  std::atomic<std::uint64_t> events_seen{0};

 private:
  void run() noexcept;
  bool drain_events();
  void refresh(Clock::time_point now);
  bool state_changed();
  bool arm();
  void note(Clock::time_point now);
  void fire() noexcept;
  void request_stop() const noexcept;

  std::mutex control_mutex_;  // serialises start() and stop()
  std::thread thread_;
  std::atomic<std::thread::id> worker_id_{};  // the running thread's id, for stop() from on_change
  std::atomic<bool> exited_{false};           // run() returned (stop requested, or ppoll failed)

  // Written by start() and stop() while no thread runs, else by the thread only.
  std::string path_;  // absolute
  std::chrono::milliseconds debounce_{};
  std::chrono::milliseconds max_delay_{};
  std::chrono::milliseconds poll_interval_{};
  int stop_fd_ = -1;  // eventfd
  int inotify_fd_ = -1;
  std::set<int> watches_;        // watch descriptors of inotify_fd_
  std::set<std::string> names_;  // entry names that matter in the watched directories
  FileState last_state_;
  std::optional<Clock::time_point> burst_start_;  // first event of the pending burst
  Clock::time_point deadline_;                    // when the pending burst fires
  Clock::time_point next_poll_;
};

Status ManifestWatcher::Impl::start() {
  std::lock_guard lock(control_mutex_);
  if (thread_.joinable()) {
    if (!exited_.load()) return usage("the manifest watcher is already started");
    thread_.join();  // stopped from on_change: finish that stop now
    close_fd(stop_fd_);
    close_fd(inotify_fd_);
  }
  if (options.path.empty()) return usage("the manifest watcher needs a path");
  if (options.debounce.count() < 0 || options.max_delay.count() < 0 ||
      options.poll_interval.count() <= 0) {
    return usage("the manifest watcher needs debounce, max_delay >= 0 and poll_interval > 0");
  }
  std::error_code ec;
  const fs::path absolute = fs::absolute(options.path, ec);
  if (ec) return io("cannot make the manifest path absolute", ec.value());
  path_ = absolute.string();
  debounce_ = std::min(options.debounce, kMaxDuration);
  max_delay_ = std::min(options.max_delay, kMaxDuration);
  poll_interval_ = std::min(options.poll_interval, kMaxDuration);

  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return io("cannot create the manifest watcher's eventfd", errno);
  watches_.clear();
  burst_start_.reset();
  last_state_ = stat_path(path_);
  // Watches are in place before start() returns, so no later change can be missed.
  mode.store(arm() ? WatchMode::kInotify : WatchMode::kPoll);
  exited_.store(false);
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    close_fd(stop_fd_);
    close_fd(inotify_fd_);
    return io("cannot start the manifest watcher's thread", e.code().value());
  }
  return {};
}

void ManifestWatcher::Impl::stop() noexcept {
  if (worker_id_.load() == std::this_thread::get_id()) {  // from on_change: cannot join itself
    request_stop();
    return;
  }
  std::lock_guard lock(control_mutex_);
  if (!thread_.joinable()) return;
  request_stop();
  thread_.join();
  close_fd(stop_fd_);
  close_fd(inotify_fd_);
  watches_.clear();
}

void ManifestWatcher::Impl::request_stop() const noexcept {
  const std::uint64_t one = 1;
  // Cannot fail: the counter would need 2^64 - 2 unread stop requests to block.
  const ssize_t written = ::write(stop_fd_, &one, sizeof one);
  static_cast<void>(written);
}

void ManifestWatcher::Impl::run() noexcept {
  worker_id_.store(std::this_thread::get_id());
  next_poll_ = Clock::now() + poll_interval_;
  for (;;) {
    std::optional<Clock::time_point> wake;
    if (burst_start_) wake = deadline_;
    if (mode.load() == WatchMode::kPoll) wake = std::min(wake.value_or(next_poll_), next_poll_);
    timespec timeout{};
    if (wake) timeout = to_timespec(*wake - Clock::now());
    std::array<pollfd, 2> fds{{{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}}};  // -1: skipped
    if (::ppoll(fds.data(), fds.size(), wake ? &timeout : nullptr, nullptr) < 0) {
      if (errno == EINTR) continue;
      break;  // EFAULT, EINVAL, ENOMEM: nothing sensible to wait on
    }
    if (fds[0].revents != 0) break;
    const Clock::time_point now = Clock::now();
    if (fds[1].revents != 0 && drain_events()) {
      note(now);
      refresh(now);  // the symlink chain, or the directories themselves, may have changed
    }
    if (mode.load() == WatchMode::kPoll && now >= next_poll_) {
      next_poll_ = now + poll_interval_;
      refresh(now);
    }
    if (burst_start_ && Clock::now() >= deadline_) fire();
  }
  worker_id_.store(std::thread::id{});
  exited_.store(true);
}

// Reads every pending event; returns true if any concerns a current watch.
bool ManifestWatcher::Impl::drain_events() {
  bool relevant = false;
  alignas(inotify_event) std::array<char, 16 * (sizeof(inotify_event) + NAME_MAX + 1)> buffer;
  for (;;) {
    const ssize_t n = ::read(inotify_fd_, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: drained
    const auto size = static_cast<std::size_t>(n);
    for (std::size_t offset = 0; offset + sizeof(inotify_event) <= size;) {
      inotify_event event{};
      std::memcpy(&event, buffer.data() + offset, sizeof event);
      offset += sizeof event + event.len;
      if ((event.mask & IN_Q_OVERFLOW) != 0) {
        relevant = true;  // events were lost: assume a change
        continue;
      }
      const auto it = watches_.find(event.wd);
      if (it == watches_.end()) continue;  // a watch arm() removed: only its IN_IGNORED
      if (event.len > 0) {
        // The name is NUL-padded to event.len bytes.
        const char* name = buffer.data() + offset - event.len;
        if (!names_.contains(std::string(name, ::strnlen(name, event.len)))) continue;
      }
      relevant = true;
      if ((event.mask & IN_IGNORED) != 0) watches_.erase(it);  // its directory is gone
    }
  }
  return relevant;
}

// Re-resolves the watches, switches mode if needed, and notes a change seen by stat().
void ManifestWatcher::Impl::refresh(Clock::time_point now) {
  bool changed = state_changed();
  // stat() before arm(): if the file is seen, its directory existed when arm() ran, so the mode
  // is already right when the callback runs. The second stat() catches a change made between.
  const bool all_watched = arm();
  if (all_watched && state_changed()) changed = true;
  const WatchMode next = all_watched ? WatchMode::kInotify : WatchMode::kPoll;
  if (next == WatchMode::kPoll && mode.load() == WatchMode::kInotify) {
    next_poll_ = now + poll_interval_;
  }
  mode.store(next);
  if (changed) note(now);
}

bool ManifestWatcher::Impl::state_changed() {
  FileState state = stat_path(path_);
  if (state == last_state_) return false;
  last_state_ = state;
  return true;
}

// Watches every directory of watch_dirs() and drops the watches no longer needed. Returns true
// when every directory is watched.
bool ManifestWatcher::Impl::arm() {
  if (options.force_poll) return false;
  if (inotify_fd_ < 0) {
    inotify_fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (inotify_fd_ < 0) return false;
  }
  std::set<int> next;
  bool all = true;
  for (const fs::path& dir : watch_dirs(path_, names_)) {
    // Returns the existing descriptor for a directory already watched (same inode).
    const int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), kDirMask);
    if (wd < 0) {
      all = false;  // ENOENT, ENOTDIR, EACCES, ENOSPC (watch limit)...
    } else {
      next.insert(wd);
    }
  }
  for (const int wd : watches_) {
    if (!next.contains(wd)) ::inotify_rm_watch(inotify_fd_, wd);
  }
  watches_ = std::move(next);
  return all;
}

// Records an event at `now`: the burst fires `debounce` after its last event, but no later than
// `max_delay` after its first.
void ManifestWatcher::Impl::note(Clock::time_point now) {
  if (!burst_start_) burst_start_ = now;
  deadline_ = std::min(now + debounce_, *burst_start_ + max_delay_);
}

void ManifestWatcher::Impl::fire() noexcept {
  burst_start_.reset();
  events_seen.fetch_add(1);
  try {
    if (on_change) on_change();
  } catch (...) {  // NOLINT(bugprone-empty-catch): documented; the library has no logger
  }
}

ManifestWatcher::ManifestWatcher(WatcherOptions options, std::function<void()> on_change)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(on_change))) {}

ManifestWatcher::~ManifestWatcher() = default;
ManifestWatcher::ManifestWatcher(ManifestWatcher&& other) noexcept = default;
ManifestWatcher& ManifestWatcher::operator=(ManifestWatcher&& other) noexcept = default;

Status ManifestWatcher::start() {
  if (!impl_) return usage("the manifest watcher was moved from");
  return impl_->start();
}

void ManifestWatcher::stop() noexcept {
  if (impl_) impl_->stop();
}

WatchMode ManifestWatcher::mode() const noexcept {
  return impl_ ? impl_->mode.load() : WatchMode::kPoll;
}

std::uint64_t ManifestWatcher::events_seen() const noexcept {
  return impl_ ? impl_->events_seen.load() : 0;
}

}  // namespace cortex_connectors
