#include "cortex_connectors/manifest.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal/json_reader.h"
#include "internal/manifest_dom.h"
#include "internal/manifest_view.h"
#include "internal/manifest_walker.h"

namespace cortex_connectors {

std::string_view to_string(AuthType type) noexcept {
  switch (type) {
    case AuthType::kApiKey:
      return "apiKey";
    case AuthType::kBearer:
      return "bearer";
    case AuthType::kNone:
      return "none";
  }
  return "none";
}

std::string_view to_string(ConnectorStatus status) noexcept {
  switch (status) {
    case ConnectorStatus::kEnabled:
      return "enabled";
    case ConnectorStatus::kDisabled:
      return "disabled";
    case ConnectorStatus::kPreview:
      return "preview";
  }
  return "enabled";
}

Result<Manifest> manifest_from_json(Json document) {
  internal::ManifestView view;
  Error error;
  const std::size_t total = internal::manifest_view_from_json(document, view, error.issues);
  if (total == 0) return internal::to_manifest(view);
  error.code = ErrorCode::kInvalid;
  error.message = total == 1 ? std::string("[brAInwav] manifest is invalid: 1 error")
                  : total <= kMaxIssues
                      ? fmt::format("[brAInwav] manifest is invalid: {} errors", total)
                      : fmt::format("[brAInwav] manifest is invalid: {} errors (first {} listed)",
                                    total, kMaxIssues);
  return error;
}

namespace internal {

JsonParseOptions manifest_parse_options(const ManifestLimits& limits) {
  JsonParseOptions options;
  options.max_depth = limits.max_depth;
  options.max_document_bytes = limits.max_bytes;
  options.max_string_bytes = limits.max_string_bytes;
  options.reject_unsafe_integers = true;
  return options;
}

Error manifest_error(std::string_view text, const JsonParseOptions& options) {
  auto doc = parse_json(text, options);
  if (!doc) return std::move(doc).error();
  auto manifest = manifest_from_json(std::move(*doc));
  if (!manifest) return std::move(manifest).error();
  // Unreachable while the two walks agree (the tests and the fuzzer hold them to it).
  return Error{ErrorCode::kInvalid, "[brAInwav] manifest is invalid", {}, {}};
}

}  // namespace internal

Result<Manifest> parse_manifest(std::string_view text, const ManifestLimits& limits) {
  // Fast path: a valid manifest is checked in one walk over simdjson's DOM, then copied out of
  // it; anything else gets the slow path's findings (internal/manifest_dom.h).
  Manifest manifest;
  Status status = internal::visit_manifest(text, limits, [&](const internal::ManifestView& view) {
    manifest = internal::to_manifest(view, limits.parallel_connectors);
  });
  if (!status) return status.error();
  return manifest;
}

namespace {

// Reads one candidate; returns the reason on failure. Opens non-blocking so that a FIFO cannot
// hang the caller, and checks the type and size before reading a byte.
std::optional<std::string> read_candidate(const std::string& path, const ManifestLimits& limits,
                                          std::string& content, bool& not_found) {
  not_found = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    not_found = errno == ENOENT || errno == ENOTDIR;
    if (errno == ENOENT) return std::string("file not found");
    return std::string(std::strerror(errno));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::string(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return std::string("is a directory, not a file");
  if (!S_ISREG(st.st_mode)) return std::string("is not a regular file (FIFO, socket or device)");
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) return std::string("file is empty");
  if (size > limits.max_bytes) {
    return fmt::format("file of {} bytes exceeds the limit of {} bytes", size, limits.max_bytes);
  }
  content.resize(size);
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, content.data() + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::string(std::strerror(errno));
    if (n == 0) break;  // truncated while reading: take what is there
    got += static_cast<std::size_t>(n);
  }
  content.resize(got);
  if (got == 0) return std::string("file is empty");
  return std::nullopt;
}

}  // namespace

Result<ManifestFile> read_manifest_file(std::optional<std::string_view> explicit_path,
                                        const ManifestLimits& limits) {
  std::vector<std::string> candidates;
  if (explicit_path) {
    candidates.emplace_back(*explicit_path);
  } else {
    candidates.emplace_back(kDefaultManifestPath);
  }
  Error error;
  bool all_missing = true;
  for (const auto& path : candidates) {
    ManifestFile file{path, {}};
    bool not_found = false;
    auto reason = read_candidate(path, limits, file.content, not_found);
    if (!reason) return file;
    all_missing = all_missing && not_found;
    error.issues.push_back(Issue{path, std::move(*reason)});
  }
  error.code = all_missing ? ErrorCode::kNotFound : ErrorCode::kIo;
  error.message = all_missing ? "[brAInwav] no connectors manifest found"
                              : "[brAInwav] connectors manifest could not be read";
  return error;
}

Result<LoadedManifest> load_manifest(std::optional<std::string_view> explicit_path,
                                     const ManifestLimits& limits) {
  auto file = read_manifest_file(explicit_path, limits);
  if (!file) return std::move(file).error();
  auto manifest = parse_manifest(file->content, limits);
  if (!manifest) {
    Error error = std::move(manifest).error();
    error.message = fmt::format("{} ({})", error.message, file->path);
    return error;
  }
  return LoadedManifest{std::move(*file), std::move(*manifest)};
}

}  // namespace cortex_connectors
