#include "fast_routes.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "cortex_connectors/negotiation.h"
#include "cortex_connectors/static_files.h"
#include "internal/atomic_shared_ptr.h"
#include "request_context.h"
#include "routes.h"

namespace cortex_connectors::server {

namespace {

// An anonymous memory file holding `bytes`, or -1 when one cannot be made (the bytes are then
// sent from memory).
int memory_file(std::string_view bytes) {
  const int fd = ::memfd_create("cortex-connectors-service-map", MFD_CLOEXEC);
  if (fd < 0) return -1;
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return -1;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return fd;
}

constexpr std::string_view kJson = "application/json";

// cpp-httplib's order of header names: byte by byte, ignoring ASCII case.
bool name_less(std::string_view a, std::string_view b) {
  auto lower = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 'A' && u <= 'Z' ? u + ('a' - 'A') : u;
  };
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [&](char x, char y) { return lower(x) < lower(y); });
}

constexpr std::array<std::string_view, PreparedHead::kLines> kLineNames = {
    "Accept-Ranges", "Connection", "Content-Length", "Keep-Alive", "X-Request-Id"};

// The 200 head of one representation: `headers` (shared by every representation of the body),
// its Content-Encoding unless identity, its length and type.
PreparedHead representation_head(std::vector<HeaderLine> headers, ContentEncoding encoding,
                                 std::size_t length, std::string_view content_type) {
  const std::string bytes = std::to_string(length);
  if (encoding != ContentEncoding::kIdentity)
    headers.emplace_back("Content-Encoding", to_string(encoding));
  headers.emplace_back("Content-Length", bytes);
  headers.emplace_back("Content-Type", content_type);
  return prepare_head(200, std::move(headers));
}

}  // namespace

PreparedHead prepare_head(int status, std::vector<HeaderLine> headers) {
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return name_less(a.first, b.first); });
  PreparedHead out;
  out.status_line = status_line(status);
  std::size_t next_line = 0;
  for (const auto& [name, value] : headers) {
    while (next_line < PreparedHead::kLines && !name_less(name, kLineNames[next_line])) {
      out.at[next_line++] = out.lines.size();
    }
    out.lines.append(name).append(": ").append(value).append("\r\n");
  }
  while (next_line < PreparedHead::kLines) out.at[next_line++] = out.lines.size();
  return out;
}

void write_head(const PreparedHead& head, const HeadLines& lines, std::string& out) {
  out.assign(head.status_line);
  std::size_t from = 0;
  auto fixed_until = [&](PreparedHead::Line line) {
    out.append(head.lines, from, head.at[line] - from);
    from = head.at[line];
  };
  fixed_until(PreparedHead::kAcceptRanges);
  if (lines.head_only) out.append("Accept-Ranges: bytes\r\n");
  fixed_until(PreparedHead::kConnection);
  if (lines.close) out.append("Connection: close\r\n");
  fixed_until(PreparedHead::kContentLength);
  if (lines.content_length >= 0) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, lines.content_length).ptr;
    out.append("Content-Length: ").append(digits, end).append("\r\n");
  }
  fixed_until(PreparedHead::kKeepAlive);
  if (!lines.close) out.append(lines.keep_alive);
  fixed_until(PreparedHead::kRequestId);
  out.append("X-Request-Id: ").append(lines.request_id).append("\r\n");
  out.append(head.lines, from).append("\r\n");
}

// The heads of one snapshot's service map: 200 per representation, and 304. They do not keep
// the snapshot alive (a replaced one is freed at once); a request holds the one it sends.
// A representation of kFileMin bytes or more is also written to an anonymous memory file
// (memfd), sent from there with sendfile(): the kernel then sends its pages instead of copying
// the bytes into the socket for every request (what nginx does with a file). It costs the
// bytes once more, in the page cache.
struct FastRoutes::MapHeads {
  static constexpr std::size_t kFileMin = 64 * 1024;

  MapHeads() = default;
  MapHeads(const MapHeads&) = delete;
  MapHeads& operator=(const MapHeads&) = delete;
  ~MapHeads() {
    for (int fd : files) {
      if (fd >= 0) ::close(fd);
    }
  }

  std::weak_ptr<const Snapshot> snapshot;
  std::array<PreparedHead, 3> ok;  // by ContentEncoding: identity, gzip, brotli
  PreparedHead not_modified;
  std::array<int, 3> files{-1, -1, -1};  // memfds of the large representations
};

// The heads of one dashboard bundle's files: 200 and 304 per representation (keyed by the
// bundle's assets, valid while `bundle` is the slot's).
struct FastRoutes::BundleHeads {
  struct Asset {
    std::array<PreparedHead, 3> ok;
    std::array<PreparedHead, 3> not_modified;
  };
  std::weak_ptr<const StaticBundle> bundle;
  std::unordered_map<const StaticAsset*, Asset> assets;
};

// Read by every request, replaced by the first request that finds it stale.
struct FastRoutes::Cache {
  internal::AtomicSharedPtr<const MapHeads> map;
  internal::AtomicSharedPtr<const BundleHeads> bundle;
};

FastRoutes::FastRoutes(const ServerContext& context, std::shared_ptr<const BundleSlot> dashboard)
    : context_(context), dashboard_(std::move(dashboard)), cache_(std::make_unique<Cache>()) {
  const HardeningOptions& options = context.config.hardening;
  keep_alive_ =
      "Keep-Alive: timeout=" +
      std::to_string(
          std::chrono::duration_cast<std::chrono::seconds>(options.keep_alive_timeout).count()) +
      ", max=" + std::to_string(options.keep_alive_max_requests) + "\r\n";
  auto refusal = [](int status, AuthResult auth) {
    const std::string length = std::to_string(auth_refusal_body(auth).size());
    return status == 401 ? prepare_head(401, {{"WWW-Authenticate", "Bearer"},
                                              {"Content-Length", length},
                                              {"Content-Type", kJson}})
                         : prepare_head(403, {{"Content-Length", length}, {"Content-Type", kJson}});
  };
  missing_token_ = refusal(401, AuthResult::kMissing);
  malformed_token_ = refusal(401, AuthResult::kMalformed);
  forbidden_ = refusal(403, AuthResult::kForbidden);
  ready_ = prepare_head(
      200, {{"Content-Length", std::to_string(kReadyBody.size())}, {"Content-Type", kJson}});
  health_ = prepare_head(200, {{"Content-Type", kJson}});
}

FastRoutes::~FastRoutes() = default;

std::shared_ptr<const FastRoutes::MapHeads> FastRoutes::map_heads(
    const std::shared_ptr<const Snapshot>& snapshot) {
  auto heads = cache_->map.load();
  if (heads && heads->snapshot.lock() == snapshot) return heads;
  // A new snapshot: the first request for it prepares its heads (two threads may both do it;
  // either result is the same).
  auto fresh = std::make_shared<MapHeads>();
  const Snapshot& s = *snapshot;
  const std::string_view etag = s.etag;
  const std::string_view bodies[3] = {s.body, s.body_gzip, s.body_brotli};
  const std::vector<HeaderLine> common = {
      {"Cache-Control", "no-cache"}, {"ETag", etag}, {"Vary", "Accept-Encoding"}};
  for (std::size_t i = 0; i < 3; ++i) {
    if (bodies[i].size() >= MapHeads::kFileMin) fresh->files[i] = memory_file(bodies[i]);
    fresh->ok[i] =
        representation_head(common, static_cast<ContentEncoding>(i), bodies[i].size(), kJson);
  }
  std::vector<HeaderLine> not_modified = common;
  not_modified.emplace_back("Content-Length", "0");
  fresh->not_modified = prepare_head(304, std::move(not_modified));
  fresh->snapshot = snapshot;
  std::shared_ptr<const MapHeads> out = std::move(fresh);
  cache_->map.store(out);
  return out;
}

std::shared_ptr<const FastRoutes::BundleHeads> FastRoutes::bundle_heads(
    const std::shared_ptr<const StaticBundle>& bundle) {
  auto heads = cache_->bundle.load();
  if (heads && heads->bundle.lock() == bundle) return heads;
  auto fresh = std::make_shared<BundleHeads>();
  bundle->for_each([&](std::string_view, const StaticAsset& asset) {
    BundleHeads::Asset& out = fresh->assets[&asset];
    const std::string_view cache_control = asset.cache_control;
    const std::string_view csp = kDashboardContentSecurityPolicy;
    const std::string_view bodies[3] = {asset.identity, asset.gzip, asset.brotli};
    const std::string_view etags[3] = {asset.etag, asset.etag_gzip, asset.etag_brotli};
    for (std::size_t i = 0; i < 3; ++i) {
      std::vector<HeaderLine> common = {{"Cache-Control", cache_control},
                                        {"Vary", "Accept-Encoding"},
                                        {"X-Content-Type-Options", "nosniff"},
                                        {"Content-Security-Policy", csp},
                                        {"ETag", etags[i]}};
      out.ok[i] = representation_head(common, static_cast<ContentEncoding>(i), bodies[i].size(),
                                      asset.content_type);
      common.emplace_back("Content-Length", "0");
      out.not_modified[i] = prepare_head(304, std::move(common));
    }
  });
  fresh->bundle = bundle;
  std::shared_ptr<const BundleHeads> out = std::move(fresh);
  cache_->bundle.store(out);
  return out;
}

FastRoutes::Outcome FastRoutes::service_map(const RequestHead& head, HeadLines& lines,
                                            FastResponse& out, int& status, std::size_t& bytes) {
  const ServerConfig& config = context_.config;
  if (!config.no_auth) {
    const AuthResult auth = check_bearer(head.header("authorization"), config.api_keys);
    if (auth != AuthResult::kOk) {
      const PreparedHead& refusal = auth == AuthResult::kMissing     ? missing_token_
                                    : auth == AuthResult::kMalformed ? malformed_token_
                                                                     : forbidden_;
      status = auth == AuthResult::kForbidden ? 403 : 401;
      const std::string_view body = auth_refusal_body(auth);
      bytes = body.size();
      write_head(refusal, lines, out.head);
      if (!lines.head_only) out.body = body;
      return Outcome::kAnswered;
    }
  }
  auto snapshot = context_.registry.current();
  if (!snapshot) return Outcome::kDeclined;  // 503 with the registry's state: httplib's
  const auto heads = map_heads(snapshot);
  const Snapshot& s = *snapshot;
  if (if_none_match(head.header("if-none-match"), s.etag)) {
    status = 304;
    bytes = 0;
    write_head(heads->not_modified, lines, out.head);
    return Outcome::kAnswered;
  }
  const ContentEncoding encoding =
      choose_encoding(head.header("accept-encoding"), !s.body_gzip.empty(), !s.body_brotli.empty());
  const std::string_view body = encoding == ContentEncoding::kBrotli ? s.body_brotli
                                : encoding == ContentEncoding::kGzip ? s.body_gzip
                                                                     : s.body;
  status = 200;
  bytes = body.size();
  const auto i = static_cast<std::size_t>(encoding);
  write_head(heads->ok[i], lines, out.head);
  if (!lines.head_only) {
    out.body = body;
    if (heads->files[i] >= 0) {
      out.body_file = heads->files[i];
      out.file_owner = heads;
    }
  }
  out.owner = std::move(snapshot);
  return Outcome::kAnswered;
}

FastRoutes::Outcome FastRoutes::dashboard(const RequestHead& head, std::string_view name,
                                          HeadLines& lines, FastResponse& out, int& status,
                                          std::size_t& bytes) {
  if (!dashboard_ || name.find('%') != std::string_view::npos) return Outcome::kDeclined;
  auto bundle = dashboard_->get();
  if (!bundle) return Outcome::kDeclined;  // 503: httplib's
  const auto relative = static_relative_path(name);
  const StaticAsset* asset = relative ? bundle->find(*relative) : nullptr;
  if (asset == nullptr) return Outcome::kDeclined;  // 404: httplib's
  const auto heads = bundle_heads(bundle);
  const auto it = heads->assets.find(asset);
  if (it == heads->assets.end()) return Outcome::kDeclined;
  const ContentEncoding encoding =
      choose_encoding(head.header("accept-encoding"), !asset->gzip.empty(), !asset->brotli.empty());
  const auto i = static_cast<std::size_t>(encoding);
  const std::string_view etags[3] = {asset->etag, asset->etag_gzip, asset->etag_brotli};
  if (if_none_match(head.header("if-none-match"), etags[i])) {
    status = 304;
    bytes = 0;
    write_head(it->second.not_modified[i], lines, out.head);
    return Outcome::kAnswered;
  }
  const std::string_view bodies[3] = {asset->identity, asset->gzip, asset->brotli};
  status = 200;
  bytes = bodies[i].size();
  write_head(it->second.ok[i], lines, out.head);
  if (!lines.head_only) out.body = bodies[i];
  out.owner = std::move(bundle);
  return Outcome::kAnswered;
}

bool FastRoutes::answer(const RequestHead& head, bool close, FastResponse& out) {
  if (head.version != "HTTP/1.1" || !head.query.empty() || !head.header("expect").empty()) {
    return false;
  }
  const std::string_view connection = head.header("connection");
  if (!connection.empty() && connection != "close") return false;
  const std::string_view path = head.path;
  const std::string_view route = route_name(path);
  if (route != "service_map" && route != "health" && route != "ready" && route != "apps") {
    return false;
  }
  if (route == "ready" && !context_.registry.has_snapshot()) return false;  // 503: httplib's
  // The dashboard's files; its mount without the slash is httplib's redirect.
  if (route == "apps" && (!dashboard_ || path.size() <= kDashboardMount.size() ||
                          path[kDashboardMount.size()] != '/')) {
    return false;
  }

  thread_local RequestContext ctx;
  ctx.begin(context_, head.header("x-request-id"), head.header("traceparent"));
  HeadLines lines;
  lines.head_only = head.method == "HEAD";
  lines.close = close || !connection.empty();
  lines.keep_alive = keep_alive_;
  lines.request_id = ctx.id;
  out.close = lines.close;
  int status = 200;
  std::size_t bytes = 0;
  Outcome outcome = Outcome::kAnswered;
  if (route == "service_map") {
    outcome = service_map(head, lines, out, status, bytes);
  } else if (route == "apps") {
    outcome = dashboard(head, path.substr(kDashboardMount.size() + 1), lines, out, status, bytes);
  } else if (route == "ready") {
    bytes = kReadyBody.size();
    write_head(ready_, lines, out.head);
    if (!lines.head_only) out.body = kReadyBody;
  } else {
    out.owned_body = server_health_body(context_);
    bytes = out.owned_body.size();
    lines.content_length = static_cast<long long>(bytes);
    write_head(health_, lines, out.head);
    if (!lines.head_only) out.body = out.owned_body;
  }
  if (outcome == Outcome::kDeclined) {
    ctx.end();
    return false;
  }
  finish_request(context_, ctx, head.method, route, status, bytes);
  ctx.end();
  return true;
}

void install_fast_routes(HardenedServer& server, FastRoutes& routes) {
  server.set_fast_path([&routes](const RequestHead& head, bool close, FastResponse& out) {
    return routes.answer(head, close, out);
  });
}

}  // namespace cortex_connectors::server
