// The dashboard bundle: static files loaded into memory once at start and served by the
// /apps/chatgpt-dashboard/ route. The serving rules (path checks, Content-Type, Cache-Control,
// ETags, the encoding choice) are the library's (cortex_connectors/static_files.h, negotiation.h);
// this file reads the disk and keeps what it read.
//
// Compressed representations come from the disk: the build writes `<file>.gz` and `<file>.br`
// beside each file of the bundle (as nginx's gzip_static and brotli_static expect), and they are
// loaded as they are. A bundle without them (an operator's own --apps-dir) is served identity
// until BundleCompression has made them, after the port is bound: brotli 11 of a bundle costs
// tens of milliseconds, which a start must not wait for.
//
// Thread-safety: a loaded StaticBundle is immutable; share it freely. BundleSlot may be read and
// replaced from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cortex_connectors/static_files.h"

namespace cortex_connectors::server {

struct StaticBundleLimits {
  std::size_t max_files = 4096;
  std::size_t max_file_bytes = std::size_t{32} << 20;
  std::size_t max_total_bytes = std::size_t{256} << 20;
};

// When load() makes the compressed representations the disk does not have.
enum class MissingCompression : std::uint8_t {
  kAtLoad,  // in load() itself
  kLater,   // not at all: with_compressed() makes them (the server, after binding its port)
};

class StaticBundle {
 public:
  // Reads every regular file below `root` (recursively; dot-files and dot-directories are
  // skipped, symlinked directories are not entered, and a symlinked file is read only when its
  // target is a regular file inside `root`) and prepares it with prepare_static_asset(), with
  // `<file>.gz` and `<file>.br` beside it as its representations (they are no assets of their
  // own). Returns nullptr, with `problem` saying why, when `root` is missing, is not a
  // directory, has no index.html or exceeds `limits` (every file read counts); files skipped
  // for escaping the root are listed in `skipped`.
  static std::shared_ptr<const StaticBundle> load(
      const std::filesystem::path& root, std::string& problem,
      std::vector<std::string>* skipped = nullptr, const StaticBundleLimits& limits = {},
      MissingCompression missing = MissingCompression::kAtLoad);

  // The asset of bundle-relative `name` (as static_relative_path() returns it), or nullptr.
  const StaticAsset* find(std::string_view name) const;
  std::size_t file_count() const { return assets_.size(); }
  // Calls f(name, asset) for every file.
  template <class F>
  void for_each(F f) const {
    for (const auto& [name, asset] : assets_) f(std::string_view(name), asset);
  }
  std::size_t total_bytes() const { return total_bytes_; }
  // Files whose representations were neither on the disk nor made yet (MissingCompression::
  // kLater); 0 once they all are.
  std::size_t uncompressed_count() const { return uncompressed_.size(); }
  // A copy with every missing representation made; nullptr when `stop` became true meanwhile.
  std::shared_ptr<const StaticBundle> with_compressed(const std::atomic<bool>& stop) const;

 private:
  // Looked up by string_view without building a std::string per request.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  // The representations a file lacks.
  struct Missing {
    std::string name;
    bool gzip = false;
    bool brotli = false;
  };
  std::unordered_map<std::string, StaticAsset, NameHash, std::equal_to<>> assets_;
  std::vector<Missing> uncompressed_;
  std::size_t total_bytes_ = 0;
};

// The bundle the dashboard route serves: replaced once when its representations are made.
class BundleSlot {
 public:
  explicit BundleSlot(std::shared_ptr<const StaticBundle> bundle) : bundle_(std::move(bundle)) {}
  std::shared_ptr<const StaticBundle> get() const {
    std::lock_guard lock(mutex_);
    return bundle_;
  }
  void set(std::shared_ptr<const StaticBundle> bundle) {
    std::lock_guard lock(mutex_);
    bundle_.swap(bundle);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const StaticBundle> bundle_;
};

// Makes the representations of the slot's bundle that the disk did not have, on a thread of
// its own, then puts the compressed bundle in the slot. The destructor stops it (between files)
// and joins it. `on_done` (may be empty) is called on that thread with the files compressed.
class BundleCompression {
 public:
  BundleCompression() = default;
  BundleCompression(const BundleCompression&) = delete;
  BundleCompression& operator=(const BundleCompression&) = delete;
  ~BundleCompression();
  // Does nothing when the bundle is missing or has nothing to compress.
  void start(std::shared_ptr<BundleSlot> slot, std::function<void(std::size_t)> on_done);

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Where the server looks for the bundle when neither APPS_BUNDLE_DIR nor --apps-dir is set:
// <directory of the executable>/../share/cortex_connectors/apps/chatgpt-dashboard. The build
// writes the bundle to <build>/share/... and installs it to <prefix>/share/..., so the rule holds
// for build/server/cortex-connectors-server and for <prefix>/bin/cortex-connectors-server.
std::filesystem::path default_apps_dir();

}  // namespace cortex_connectors::server
