#include "static_files.h"

#include <cerrno>
#include <map>
#include <optional>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cortex_connectors::server {

namespace {

namespace fs = std::filesystem;

// Reads regular file `path` whole (the size is checked before reading); false on error.
bool read_whole(const fs::path& path, std::size_t max_bytes, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            static_cast<std::size_t>(st.st_size) <= max_bytes;
  if (ok) {
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    out.resize(got);
  }
  ::close(fd);
  return ok;
}

// True when `path` (canonical) is `root` (canonical) or below it.
bool inside(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

}  // namespace

namespace {

// The regular files under `root` (symlinks only to files inside it; hidden names skipped),
// by bundle-relative name; nullopt with `problem` set beyond limits.max_files or on a listing
// error. Symlinks that lead elsewhere are added to `skipped`.
std::optional<std::map<std::string, fs::path>> list_bundle(const fs::path& root,
                                                           const StaticBundleLimits& limits,
                                                           std::vector<std::string>* skipped,
                                                           std::string& problem) {
  std::map<std::string, fs::path> files;
  std::error_code ec;
  // Default options: directory symlinks are listed but not entered.
  fs::recursive_directory_iterator it(root, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    if (name.starts_with('.')) {
      if (entry.is_directory(ec) && !entry.is_symlink(ec)) it.disable_recursion_pending();
      continue;
    }
    const std::string relative = entry.path().lexically_relative(root).generic_string();
    fs::path target = entry.path();
    if (entry.is_symlink(ec)) {
      target = fs::canonical(entry.path(), ec);
      if (ec || !inside(target, root) || !fs::is_regular_file(target, ec)) {
        if (skipped) skipped->push_back(relative);
        ec.clear();
        continue;
      }
    } else if (!entry.is_regular_file(ec)) {
      continue;
    }
    if (files.size() >= limits.max_files) {
      problem = fmt::format("the dashboard bundle at {} has more than {} files", root.string(),
                            limits.max_files);
      return std::nullopt;
    }
    files.emplace(relative, std::move(target));
  }
  if (ec) {
    problem = fmt::format("cannot list {}: {}", root.string(), ec.message());
    return std::nullopt;
  }
  return files;
}

}  // namespace

std::shared_ptr<const StaticBundle> StaticBundle::load(const fs::path& root_in,
                                                       std::string& problem,
                                                       std::vector<std::string>* skipped,
                                                       const StaticBundleLimits& limits,
                                                       MissingCompression missing) {
  std::error_code ec;
  const fs::path root = fs::canonical(root_in, ec);
  if (ec || !fs::is_directory(root, ec)) {
    problem = fmt::format("no dashboard bundle directory at {}", root_in.string());
    return nullptr;
  }
  // First the names: a file's representations are the files named like it plus .gz or .br.
  auto listed = list_bundle(root, limits, skipped, problem);
  if (!listed) return nullptr;
  const std::map<std::string, fs::path>& files = *listed;
  auto bundle = std::make_shared<StaticBundle>();
  std::size_t read_bytes = 0;
  auto read = [&](const fs::path& path, std::string& out) {
    if (!read_whole(path, limits.max_file_bytes, out)) {
      problem = fmt::format("cannot read {} (or it is over {} bytes)", path.string(),
                            limits.max_file_bytes);
      return false;
    }
    read_bytes += out.size();
    if (read_bytes > limits.max_total_bytes) {
      problem = fmt::format("the dashboard bundle at {} is over {} bytes", root.string(),
                            limits.max_total_bytes);
      return false;
    }
    return true;
  };
  // The representation `suffix` of `name` from the disk, if there is one.
  auto variant = [&](const std::string& name, std::string_view suffix,
                     std::optional<std::string>& out) {
    const auto found = files.find(name + std::string(suffix));
    if (found == files.end()) return true;
    return read(found->second, out.emplace());
  };
  // `name` is the .gz or .br representation of another file.
  auto is_representation = [&files](const std::string& name) {
    for (const std::string_view suffix : {std::string_view(".gz"), std::string_view(".br")}) {
      if (name.ends_with(suffix) && files.contains(name.substr(0, name.size() - suffix.size()))) {
        return true;
      }
    }
    return false;
  };
  for (const auto& [relative, path] : files) {
    if (is_representation(relative)) continue;
    {
      std::string bytes;
      std::optional<std::string> gzip;
      std::optional<std::string> brotli;
      if (!read(path, bytes) || !variant(relative, ".gz", gzip) ||
          !variant(relative, ".br", brotli)) {
        return nullptr;
      }
      bundle->total_bytes_ += bytes.size();
      const bool lacks_gzip = !gzip;
      const bool lacks_brotli = !brotli;
      StaticAsset asset =
          prepare_static_asset(relative, std::move(bytes), std::move(gzip), std::move(brotli));
      if (missing == MissingCompression::kAtLoad) {
        compress_static_asset(asset, lacks_gzip, lacks_brotli);
      } else if (lacks_gzip || lacks_brotli) {
        bundle->uncompressed_.push_back({relative, lacks_gzip, lacks_brotli});
      }
      bundle->assets_.emplace(relative, std::move(asset));
    }
  }
  if (bundle->find("index.html") == nullptr) {
    problem = fmt::format("the dashboard bundle at {} has no index.html", root.string());
    return nullptr;
  }
  return bundle;
}

std::shared_ptr<const StaticBundle> StaticBundle::with_compressed(
    const std::atomic<bool>& stop) const {
  auto out = std::make_shared<StaticBundle>(*this);
  for (const Missing& m : uncompressed_) {
    if (stop.load(std::memory_order_relaxed)) return nullptr;
    compress_static_asset(out->assets_.find(m.name)->second, m.gzip, m.brotli);
  }
  out->uncompressed_.clear();
  return out;
}

BundleCompression::~BundleCompression() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void BundleCompression::start(std::shared_ptr<BundleSlot> slot,
                              std::function<void(std::size_t)> on_done) {
  const auto bundle = slot->get();
  if (!bundle || bundle->uncompressed_count() == 0 || thread_.joinable()) return;
  thread_ = std::thread([this, slot = std::move(slot), bundle, on_done = std::move(on_done)] {
    auto compressed = bundle->with_compressed(stop_);
    if (!compressed) return;
    slot->set(std::move(compressed));
    if (on_done) on_done(bundle->uncompressed_count());
  });
}

const StaticAsset* StaticBundle::find(std::string_view name) const {
  const auto it = assets_.find(name);
  return it == assets_.end() ? nullptr : &it->second;
}

fs::path default_apps_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return exe.parent_path().parent_path() / "share/cortex_connectors/apps/chatgpt-dashboard";
}

}  // namespace cortex_connectors::server
