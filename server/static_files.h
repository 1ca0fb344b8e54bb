// The dashboard bundle: static files loaded into memory once at start and served by the
// /apps/chatgpt-dashboard/ route. The serving rules (path checks, Content-Type, Cache-Control,
// ETags, the encoding choice) are the library's (cortex_connectors/http.h); this file reads the
// disk and keeps what it read.
//
// Thread-safety: a loaded StaticBundle is immutable; share it freely.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cortex_connectors/http.h"

namespace cortex_connectors::server {

struct StaticBundleLimits {
  std::size_t max_files = 4096;
  std::size_t max_file_bytes = std::size_t{32} << 20;
  std::size_t max_total_bytes = std::size_t{256} << 20;
};

class StaticBundle {
 public:
  // Reads every regular file below `root` (recursively; dot-files and dot-directories are
  // skipped, symlinked directories are not entered, and a symlinked file is read only when its
  // target is a regular file inside `root`) and prepares it with prepare_static_asset().
  // Returns nullptr, with `problem` saying why, when `root` is missing, is not a directory, has
  // no index.html or exceeds `limits`; files skipped for escaping the root are listed in
  // `skipped`.
  static std::shared_ptr<const StaticBundle> load(const std::filesystem::path& root,
                                                  std::string& problem,
                                                  std::vector<std::string>* skipped = nullptr,
                                                  const StaticBundleLimits& limits = {});

  // The asset of bundle-relative `name` (as static_relative_path() returns it), or nullptr.
  const StaticAsset* find(std::string_view name) const;
  std::size_t file_count() const { return assets_.size(); }
  std::size_t total_bytes() const { return total_bytes_; }

 private:
  // Looked up by string_view without building a std::string per request.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, StaticAsset, NameHash, std::equal_to<>> assets_;
  std::size_t total_bytes_ = 0;
};

// Where the server looks for the bundle when neither APPS_BUNDLE_DIR nor --apps-dir is set:
// <directory of the executable>/../share/cortex_connectors/apps/chatgpt-dashboard. The build
// writes the bundle to <build>/share/... and installs it to <prefix>/share/..., so the rule holds
// for build/server/cortex-connectors-server and for <prefix>/bin/cortex-connectors-server.
std::filesystem::path default_apps_dir();

}  // namespace cortex_connectors::server
