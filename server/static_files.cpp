#include "static_files.h"

#include <cerrno>
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

std::shared_ptr<const StaticBundle> StaticBundle::load(const fs::path& root_in,
                                                       std::string& problem,
                                                       std::vector<std::string>* skipped,
                                                       const StaticBundleLimits& limits) {
  std::error_code ec;
  const fs::path root = fs::canonical(root_in, ec);
  if (ec || !fs::is_directory(root, ec)) {
    problem = fmt::format("no dashboard bundle directory at {}", root_in.string());
    return nullptr;
  }
  auto bundle = std::make_shared<StaticBundle>();
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
    if (bundle->assets_.size() >= limits.max_files) {
      problem = fmt::format("the dashboard bundle at {} has more than {} files", root.string(),
                            limits.max_files);
      return nullptr;
    }
    std::string bytes;
    if (!read_whole(target, limits.max_file_bytes, bytes)) {
      problem = fmt::format("cannot read {} (or it is over {} bytes)", target.string(),
                            limits.max_file_bytes);
      return nullptr;
    }
    bundle->total_bytes_ += bytes.size();
    if (bundle->total_bytes_ > limits.max_total_bytes) {
      problem = fmt::format("the dashboard bundle at {} is over {} bytes", root.string(),
                            limits.max_total_bytes);
      return nullptr;
    }
    bundle->assets_.emplace(relative, prepare_static_asset(relative, std::move(bytes)));
  }
  if (ec) {
    problem = fmt::format("cannot list {}: {}", root.string(), ec.message());
    return nullptr;
  }
  if (bundle->find("index.html") == nullptr) {
    problem = fmt::format("the dashboard bundle at {} has no index.html", root.string());
    return nullptr;
  }
  return bundle;
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
