#include "cortex_connectors/registry.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <fmt/format.h>
#include <simdjson.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/metrics.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/verify.h"
#include "cortex_connectors/watcher.h"
#include "internal/atomic_shared_ptr.h"
#include "internal/compress.h"
#include "internal/digest.h"
#include "internal/manifest_dom.h"
#include "internal/manifest_view.h"
#include "internal/service_map.h"

namespace cortex_connectors {

namespace {

using Clock = std::chrono::steady_clock;

// The top-level generatedAt of a recorded payload, or of the payload of a signed body
// (`in_body`), or nullopt. simdjson On-Demand skips the connectors without building anything:
// parse_json() of a 10 000-connector payload took ~70 ms CPU on the restart path
// (bench_manifest BM_JsonParse/10000).
std::optional<std::string> payload_generated_at(std::string_view json, bool in_body = false) {
  simdjson::ondemand::parser parser;
  const simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return std::nullopt;
  std::string_view value;
  auto field = in_body ? doc.find_field_unordered("payload").find_field_unordered("generatedAt")
                       : doc.find_field_unordered("generatedAt");
  if (field.get_string().get(value) != simdjson::SUCCESS) return std::nullopt;
  return std::string(value);
}

std::chrono::nanoseconds since(Clock::time_point& start) {
  const auto now = Clock::now();
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - start);
  start = now;
  return elapsed;
}

// Bodies above this size are published before they are compressed (see RegistryOptions).
constexpr std::size_t kSmallBody = std::size_t{256} << 10;
// After a rebuild of more manifest bytes than this, free heap goes back to the system: the
// temporary document of a 4 MB manifest is ~10 times its size, and glibc keeps most of it.
constexpr std::size_t kTrimAfterBytes = std::size_t{1} << 20;

void release_free_heap() noexcept {
#ifdef __GLIBC__
  ::malloc_trim(0);
#endif
}
// Bodies up to this size get gzip 9 / brotli 11 after publication (brotli 11 costs ~1.5 ms per
// KB here: ~100 ms at 64 KiB, ~800 ms at 200 KB, which would hold up the next reload).
constexpr std::size_t kRefineBody = std::size_t{64} << 10;

// What a replica knows of the manifest behind a verified payload (Registry::publish_signed): the
// service map's fields, as views into `payload`, enough for /health and the connector metrics
// (and for a Manifest where RegistryOptions::keep_manifest asks for one).
internal::ManifestView view_of_payload(const Json& payload) {
  auto text = [](const Json& o, std::string_view key) {
    const Json* v = o.find(key);
    return v != nullptr && v->is_string() ? std::string_view(v->as_string()) : std::string_view();
  };
  auto integer = [](const Json& o, std::string_view key) -> std::optional<std::int64_t> {
    const Json* v = o.find(key);
    if (v == nullptr || !v->is_number()) return std::nullopt;
    return static_cast<std::int64_t>(v->as_number());
  };
  // The scopes when all are strings (a signed payload has no other), else an empty list.
  static const Json kNoScopes = Json(Json::Array{});
  auto scopes = [](const Json* v) {
    const bool strings =
        v != nullptr && v->is_array() &&
        std::ranges::all_of(v->as_array(), [](const Json& s) { return s.is_string(); });
    return internal::StringList(strings ? v : &kNoScopes);
  };
  internal::ManifestView m;
  m.id = text(payload, "id");
  m.brand = text(payload, "brand");
  m.generated_at = text(payload, "generatedAt");
  m.ttl_seconds = integer(payload, "ttlSeconds");
  if (const Json* meta = payload.find("metadata"); meta != nullptr && !meta->is_null()) {
    m.metadata = internal::FreeForm(meta);
  }
  const Json* connectors = payload.find("connectors");
  if (connectors == nullptr || !connectors->is_array()) return m;
  m.connectors.reserve(connectors->as_array().size());
  for (const Json& c : connectors->as_array()) {
    internal::ConnectorView& out = m.connectors.emplace_back();
    out.id = text(c, "id");
    out.name = text(c, "displayName");
    out.display_name = out.name;
    out.version = text(c, "version");
    out.endpoint = text(c, "endpoint");
    out.ttl_seconds = integer(c, "ttlSeconds").value_or(out.ttl_seconds);
    if (const Json* e = c.find("enabled"); e != nullptr && e->is_bool()) out.enabled = e->as_bool();
    out.scopes = scopes(c.find("scopes"));
  }
  return m;
}

}  // namespace

struct Registry::Impl {
  explicit Impl(RegistryOptions o)
      : options(std::move(o)), elsewhere(std::move(options.resume_from)) {
    if (!options.clock) options.clock = [] { return std::chrono::system_clock::now(); };
    if (options.history) {
      options.first_version = std::max(options.first_version, options.history->next_version());
    }
    if (elsewhere) options.first_version = std::max(options.first_version, elsewhere->version + 1);
  }

  RegistryOptions options;
  Metrics metrics;
  internal::AtomicSharedPtr<const Snapshot> current;

  // Serialises refreshes; guards the fields below it.
  std::mutex refresh_mutex;
  std::string last_hash;  // of the last content processed, good or bad
  // The newest recorded entry, asked for while nothing is published (off the thread that
  // constructs the registry: the server listens meanwhile) and kept until the first publish.
  std::optional<HistoryEntry> resumable;
  // RegistryOptions::resume_from, kept until the first publish.
  std::optional<SignedSnapshot> elsewhere;
  std::optional<Error> last_error;  // that content's error, returned again while unchanged

  mutable std::mutex state_mutex;  // guards failure; pairs with version_cv
  mutable std::condition_variable version_cv;
  std::optional<LoadFailure> failure;

  std::mutex listeners_mutex;
  std::map<std::uint64_t, Listener> listeners;
  std::uint64_t next_listener_id = 1;

  std::mutex background_mutex;  // guards async_load and watcher
  std::thread async_load;
  std::unique_ptr<ManifestWatcher> watcher;

  std::string path() const {
    return options.manifest_path ? *options.manifest_path : std::string(kDefaultManifestPath);
  }

  Result<std::shared_ptr<const Snapshot>> fail(Error error, StageTimings timings,
                                               std::string_view path_for_report,
                                               std::chrono::system_clock::time_point started) {
    {
      std::lock_guard lock(state_mutex);
      const std::uint64_t consecutive = failure ? failure->consecutive + 1 : 1;
      failure = LoadFailure{error, options.clock(), consecutive};
    }
    metrics.record_reload(ReloadResult::kFailure);
    report(ReloadResult::kFailure, timings, path_for_report, started, &error);
    return error;
  }

  void report(ReloadResult result, const StageTimings& timings, std::string_view path_for_report,
              std::chrono::system_clock::time_point started, const Error* error,
              const Snapshot* published = nullptr,
              std::span<const std::string> connector_ids = {}) {
    if (!options.on_refresh) return;
    const auto snap = current.load();
    RefreshReport r;
    r.result = result;
    r.version = snap ? snap->version : 0;
    r.path = std::string(path_for_report);
    r.started_at = started;
    r.timings = timings;
    r.error = error;
    r.snapshot = published;
    r.manifest = published != nullptr ? published->manifest.get() : nullptr;
    r.connector_ids = connector_ids;
    options.on_refresh(r);
  }

  Result<std::shared_ptr<const Snapshot>> unchanged(const StageTimings& timings,
                                                    std::string_view source,
                                                    std::chrono::system_clock::time_point started) {
    metrics.record_reload(ReloadResult::kUnchanged);
    if (last_error) {
      report(ReloadResult::kUnchanged, timings, source, started, &*last_error);
      return *last_error;
    }
    report(ReloadResult::kUnchanged, timings, source, started, nullptr);
    return current.load();
  }

  // REQUIRES: refresh_mutex held.
  Result<std::shared_ptr<const Snapshot>> rebuild(std::string content, std::string_view source,
                                                  StageTimings timings, Clock::time_point t,
                                                  std::chrono::system_clock::time_point started) {
    // Declared first, so it runs after every temporary of this rebuild is gone.
    struct TrimAtExit {
      bool large;
      ~TrimAtExit() {
        if (large) release_free_heap();
      }
    } trim{content.size() > kTrimAfterBytes};
    std::string hash = internal::sha256_hex(content);
    timings.read += since(t);
    if (hash == last_hash) return unchanged(timings, source, started);
    last_hash = hash;
    last_error.reset();

    auto with_source = [&](Error e) {
      if (!source.empty()) e.message = fmt::format("{} ({})", e.message, source);
      last_error = e;
      return e;
    };
    const auto previous = current.load();
    // Text -> checked view of simdjson's DOM -> signed body, without a Manifest (see
    // sign_manifest_text()). Everything that reads the view runs while the DOM is alive.
    Built built;
    Status parsed =
        internal::visit_manifest(content, options.limits, [&](const internal::ManifestView& view) {
          // Parsing and validation are one walk: the time is all in `parse`, `validate` stays 0.
          timings.parse = since(t);
          built = build(view, hash, previous, timings, t);
        });
    if (!parsed) {
      timings.parse = since(t);
      return fail(with_source(parsed.error()), timings, source, started);
    }
    if (built.error) return fail(with_source(std::move(*built.error)), timings, source, started);
    if (built.same_body) {
      // Good content again (e.g. a fix after a bad edit) that serves the same bytes: nothing
      // to publish, but the failure is over.
      {
        std::lock_guard lock(state_mutex);
        failure.reset();
      }
      return unchanged(timings, source, started);
    }
    auto snap = std::make_shared<Snapshot>();
    // After a resumed snapshot, versions continue after every recorded or reserved one.
    snap->version =
        previous ? std::max(previous->version + 1, options.first_version) : options.first_version;
    snap->path = std::string(source);
    snap->content_hash = std::move(hash);
    snap->loaded_at = built.loaded_at;
    snap->generated_at = std::move(built.generated_at);
    static_cast<SignedBody&>(*snap) = std::move(built.signed_body);
    bool resumed = false;
    if (built.resuming && snap->canonical_payload() == resumable->payload &&
        snap->signature == resumable->signature && snap->signatures == resumable->signatures) {
      snap->version = resumable->version;
      snap->loaded_at = resumable->loaded_at;
      resumed = true;
    } else if (!previous && elsewhere && snap->body == elsewhere->body) {
      snap->version = elsewhere->version;  // recorded here from now on: history may lack it
    }
    resumable.reset();
    elsewhere.reset();
    return complete(std::move(snap), std::move(built.facts), timings, t, started,
                    options.history && !resumed ? &content : nullptr);
  }

  // What a snapshot takes from the manifest it was built from (see complete()).
  struct ManifestFacts {
    std::string metrics_text;  // Snapshot::metrics_text
    std::size_t connectors = 0;
    bool generated_at = false;             // the manifest has its own generatedAt
    std::vector<std::string> ids;          // RefreshReport::connector_ids, when on_refresh is set
    std::shared_ptr<const Manifest> kept;  // Snapshot::manifest: RegistryOptions::keep_manifest
  };

  ManifestFacts facts_of(const internal::ManifestView& view) const {
    ManifestFacts f;
    f.metrics_text = internal::render_manifest_text(view);
    f.connectors = view.connectors.size();
    f.generated_at = view.generated_at.has_value();
    if (options.on_refresh) {
      f.ids.reserve(view.connectors.size());
      for (const auto& c : view.connectors) f.ids.emplace_back(c.id);
    }
    return f;
  }

  // What rebuild() makes of a valid manifest (build()).
  struct Built {
    std::chrono::system_clock::time_point loaded_at;
    bool resuming = false;  // the newest recorded snapshot's content: rebuilt as it was
    std::string generated_at;
    SignedBody signed_body;
    bool same_body = false;  // the body of `previous`: nothing to publish
    ManifestFacts facts;
    std::optional<Error> error;  // the payload could not be written
  };

  // REQUIRES: refresh_mutex held. The signed body of the manifest `view` of content `hash`,
  // after `previous` (null: none yet); times `build` and `sign` from `t` on.
  Built build(const internal::ManifestView& view, const std::string& hash,
              const std::shared_ptr<const Snapshot>& previous, StageTimings& timings,
              Clock::time_point& t) {
    Built b;
    b.loaded_at = options.clock();
    // generatedAt falls back to the time this content was first loaded: keep the previous
    // snapshot's while the payload is otherwise the same.
    const bool keep_previous_time =
        !view.generated_at && previous && !previous->manifest_generated_at;
    const std::string now_text = format_rfc3339(b.loaded_at);
    // The same manifest as the newest recorded snapshot: rebuild it as it was (see
    // RegistryOptions::history). Handed over once: later calls return nullopt at once.
    if (!previous && !resumable && options.history) {
      resumable = options.history->take_resumable();
      // Of the newest recorded snapshot and the one published elsewhere, only the newer (or
      // both, when they have the same version) may be resumed.
      if (resumable && elsewhere && resumable->version < elsewhere->version) resumable.reset();
      if (resumable && elsewhere && resumable->version > elsewhere->version) elsewhere.reset();
    }
    b.resuming = !previous && resumable && resumable->content_hash == hash;
    std::optional<std::string> resumed_time;
    if (b.resuming && !view.generated_at) {
      resumed_time = payload_generated_at(resumable->payload);
    } else if (!previous && elsewhere && elsewhere->content_hash == hash && !view.generated_at) {
      resumed_time = payload_generated_at(elsewhere->body, true);
    }
    b.generated_at = view.generated_at    ? std::string(*view.generated_at)
                     : keep_previous_time ? previous->generated_at
                     : resumed_time       ? *resumed_time
                                          : now_text;
    // The canonical payload straight from the view into the body: no payload Json.
    auto written = internal::write_signed_payload(view, b.generated_at);
    timings.build = since(t);
    if (!written) {
      b.error = std::move(written).error();
      return b;
    }
    b.signed_body = SignedBody::sign(std::move(written->text), as_bytes(options.signing_key),
                                     options.ed25519_keys, std::move(written->layout));
    if (previous && b.signed_body.body == previous->body) {
      timings.sign = since(t);
      b.same_body = true;
      return b;
    }
    if (keep_previous_time && b.generated_at != now_text) {
      // New content: generatedAt is now.
      b.generated_at = now_text;
      auto renewed = internal::write_signed_payload(view, b.generated_at);
      if (!renewed) {
        b.error = std::move(renewed).error();
        return b;
      }
      b.signed_body = SignedBody::sign(std::move(renewed->text), as_bytes(options.signing_key),
                                       options.ed25519_keys, std::move(renewed->layout));
    }
    timings.sign = since(t);
    b.facts = facts_of(view);
    if (options.keep_manifest) {
      b.facts.kept = std::make_shared<const Manifest>(internal::to_manifest(view));
    }
    return b;
  }

  // REQUIRES: refresh_mutex held. Compresses, tags and publishes `snap` (body, signatures,
  // version and the fields of its origin set) built from the manifest of `facts`; queues it for
  // the history with `history_content` when given. See RegistryOptions::gzip_level for when the
  // compressed bodies are made.
  std::shared_ptr<const Snapshot> complete(std::shared_ptr<Snapshot> snap, ManifestFacts facts,
                                           StageTimings timings, Clock::time_point t,
                                           std::chrono::system_clock::time_point started,
                                           std::string* history_content) {
    const bool small = snap->body.size() <= kSmallBody;
    const bool fast_then_best = !options.gzip_level && !options.brotli_quality;
    // Small bodies: publish with fast settings first, then refine (see RegistryOptions).
    const bool refine = snap->body.size() <= kRefineBody && fast_then_best;
    // Large bodies: publish identity-only first, then compress (see RegistryOptions).
    const bool compress_later = !small && fast_then_best;
    const int gzip_level = options.gzip_level.value_or(6);
    // Replaced at 11 right after publication: brotli 1 costs ~0.1 ms for a few KB where 5 costs
    // ~0.8 ms in a new thread (most of it the encoder's setup), on the way to the first 200.
    const int brotli_quality = options.brotli_quality.value_or(refine ? 1 : 5);
    if (small) {
      snap->body_gzip = internal::gzip_compress(snap->body, gzip_level);
      snap->body_brotli = internal::brotli_compress(snap->body, brotli_quality);
    } else if (!compress_later) {
      compress_large(*snap, gzip_level, brotli_quality);
    }
    // Built by append: GCC 12 at -O3 reports a false -Wrestrict for "\"" + std::string&&.
    const std::string digest = internal::sha256_hex(snap->body);
    snap->etag.reserve(34);
    snap->etag.push_back('"');
    snap->etag.append(digest, 0, 32);
    snap->etag.push_back('"');
    snap->metrics_text = std::move(facts.metrics_text);
    snap->connectors = facts.connectors;
    snap->manifest_generated_at = facts.generated_at;
    snap->manifest = std::move(facts.kept);
    timings.compress = since(t);
    snap->timings = timings;
    std::shared_ptr<const Snapshot> published(std::move(snap));
    // Queued before any listener sees the version: the SSE hub may look it up at once.
    if (history_content != nullptr) options.history->submit(published, std::move(*history_content));
    publish(published, started, facts.ids);
    if (refine || compress_later) {
      // The same version with other compressed bodies: the served bytes decompress to the same
      // body, so listeners are not called again.
      auto better = std::make_shared<Snapshot>(*published);
      if (refine) {
        better->body_gzip = internal::gzip_compress(better->body, 9);
        better->body_brotli = internal::brotli_compress(better->body, 11);
      } else {
        compress_large(*better, gzip_level, brotli_quality);
      }
      std::lock_guard lock(state_mutex);
      // Only this thread publishes (refresh_mutex is held), so `published` is still current
      // unless the registry was reset meanwhile.
      if (current.load() == published) current.store(std::shared_ptr<const Snapshot>(better));
    }
    return current.load();
  }

  // gzip on a second thread while brotli runs here (each ~50-100 ms at 10 000 connectors).
  static void compress_large(Snapshot& snap, int gzip_level, int brotli_quality) {
    auto gzip = std::async(std::launch::async, [&body = snap.body, gzip_level] {
      return internal::gzip_compress(body, gzip_level);
    });
    snap.body_brotli = internal::brotli_compress(snap.body, brotli_quality);
    snap.body_gzip = gzip.get();
  }

  void publish(std::shared_ptr<const Snapshot> snap, std::chrono::system_clock::time_point started,
               std::span<const std::string> connector_ids) {
    {
      std::lock_guard lock(state_mutex);
      current.store(snap);
      failure.reset();
    }
    version_cv.notify_all();
    metrics.set_snapshot_version(snap->version);
    metrics.record_reload(ReloadResult::kSuccess);
    metrics.record_timings(snap->timings);
    report(ReloadResult::kSuccess, snap->timings, snap->path, started, nullptr, snap.get(),
           connector_ids);
    notify(snap);
  }

  // REQUIRES: refresh_mutex held. Publishes `previous`'s bytes again under `version`
  // (Registry::publish_signed: the same body, numbered anew by its publisher).
  std::shared_ptr<const Snapshot> adopt(const Snapshot& previous, std::uint64_t version,
                                        std::string_view source,
                                        std::chrono::system_clock::time_point started) {
    auto copy = std::make_shared<Snapshot>(previous);
    copy->version = version;
    std::shared_ptr<const Snapshot> adopted(std::move(copy));
    {
      std::lock_guard lock(state_mutex);
      current.store(adopted);
      failure.reset();
    }
    version_cv.notify_all();
    metrics.set_snapshot_version(version);
    metrics.record_reload(ReloadResult::kUnchanged);
    report(ReloadResult::kUnchanged, StageTimings{}, source, started, nullptr);
    notify(adopted);
    return adopted;
  }

  void notify(const std::shared_ptr<const Snapshot>& snap) {
    std::vector<Listener> to_call;
    {
      std::lock_guard lock(listeners_mutex);
      for (const auto& [id, l] : listeners) to_call.push_back(l);
    }
    for (const auto& l : to_call) l(snap);
  }
};

Registry::Registry(RegistryOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Registry::~Registry() {
  stop_watching();
  std::lock_guard lock(impl_->background_mutex);
  if (impl_->async_load.joinable()) impl_->async_load.join();
}

std::shared_ptr<const Snapshot> Registry::current() const noexcept { return impl_->current.load(); }

bool Registry::has_snapshot() const noexcept { return impl_->current.load() != nullptr; }

Result<std::shared_ptr<const Snapshot>> Registry::refresh() {
  std::lock_guard lock(impl_->refresh_mutex);
  const auto started = std::chrono::system_clock::now();
  auto t = Clock::now();
  StageTimings timings;
  const std::string path = impl_->path();
  auto file = read_manifest_file(path, impl_->options.limits);
  if (!file) {
    timings.read = since(t);
    // A missing or unreadable file is a failure every time: no hash to compare.
    impl_->last_hash.clear();
    impl_->last_error = file.error();
    return impl_->fail(std::move(file).error(), timings, path, started);
  }
  return impl_->rebuild(std::move(file->content), path, timings, t, started);
}

Result<std::shared_ptr<const Snapshot>> Registry::refresh_from_text(std::string_view text,
                                                                    std::string_view source) {
  std::lock_guard lock(impl_->refresh_mutex);
  return impl_->rebuild(std::string(text), source, StageTimings{}, Clock::now(),
                        std::chrono::system_clock::now());
}

Result<std::shared_ptr<const Snapshot>> Registry::publish_signed(
    const SignedSnapshot& signed_snapshot, const PublicKeySet* pinned) {
  std::lock_guard lock(impl_->refresh_mutex);
  const auto started = std::chrono::system_clock::now();
  auto t = Clock::now();
  StageTimings timings;
  const std::string& source = signed_snapshot.source;
  const auto reject = [&](Error e) {
    if (!source.empty()) e.message = fmt::format("{} ({})", e.message, source);
    return impl_->fail(std::move(e), timings, source, started);
  };
  if (impl_->options.signing_key.empty() && (pinned == nullptr || pinned->empty())) {
    return reject(
        Error{ErrorCode::kUsage, "[brAInwav] no key to verify a signed snapshot with", {}, {}});
  }
  if (signed_snapshot.version == 0) {
    return reject(
        Error{ErrorCode::kInvalid, "[brAInwav] a signed snapshot needs a version >= 1", {}, {}});
  }
  const auto previous = impl_->current.load();
  if (previous && signed_snapshot.version <= previous->version) {
    return impl_->unchanged(timings, source, started);
  }
  if (previous && signed_snapshot.body == previous->body) {
    return impl_->adopt(*previous, signed_snapshot.version, source, started);
  }
  std::optional<VerifiedServiceMap> verified;
  if (!impl_->options.signing_key.empty()) {
    auto v = verify_service_map(signed_snapshot.body, as_bytes(impl_->options.signing_key));
    if (!v) return reject(std::move(v).error());
    verified = std::move(*v);
  }
  if (pinned != nullptr && !pinned->empty()) {
    auto v = verify_service_map(signed_snapshot.body, *pinned);
    if (!v) return reject(std::move(v).error());
    if (!verified) verified = std::move(*v);
  }
  timings.sign = since(t);
  // Served as is, so it must be the canonical bytes the publisher signed and served.
  auto canonical = canonicalize(signed_snapshot.body);
  if (!canonical || *canonical != signed_snapshot.body) {
    return reject(Error{ErrorCode::kInvalid,
                        "[brAInwav] a signed snapshot body must be canonical JSON (RFC 8785)",
                        {},
                        {}});
  }
  auto snap = std::make_shared<Snapshot>();
  snap->version = signed_snapshot.version;
  snap->path = source;
  snap->content_hash = signed_snapshot.content_hash;
  snap->loaded_at = impl_->options.clock();
  snap->generated_at = verified->generated_at;
  // The members after the payload, as the publisher's Snapshot held them.
  std::string signature;
  std::string signatures;
  if (auto doc = parse_json(signed_snapshot.body)) {
    if (const Json* s = doc->find("signature"); s != nullptr && s->is_string()) {
      signature = s->as_string();
    }
    if (const Json* s = doc->find("signatures"); s != nullptr) {
      if (auto c = canonical_json(*s)) signatures = std::move(*c);
    }
  }
  // The body those parts assemble to must be the one received, byte for byte.
  static_cast<SignedBody&>(*snap) = SignedBody::assemble(
      verified->canonical_payload, std::move(signature), std::move(signatures));
  if (snap->body != signed_snapshot.body) {
    return reject(Error{ErrorCode::kInvalid,
                        "[brAInwav] a signed snapshot body has members beyond payload, "
                        "signature and signatures",
                        {},
                        {}});
  }
  const internal::ManifestView view = view_of_payload(verified->payload);
  timings.validate = since(t);
  auto facts = impl_->facts_of(view);
  if (impl_->options.keep_manifest) {
    facts.kept = std::make_shared<const Manifest>(internal::to_manifest(view));
  }
  return impl_->complete(std::move(snap), std::move(facts), timings, t, started, nullptr);
}

void Registry::refresh_async() {
  std::lock_guard lock(impl_->background_mutex);
  if (impl_->async_load.joinable()) impl_->async_load.join();
  impl_->async_load = std::thread([this] { (void)refresh(); });
}

Status Registry::start_watching(std::chrono::milliseconds poll_interval, bool force_poll) {
  std::lock_guard lock(impl_->background_mutex);
  if (impl_->watcher) {
    return Error{ErrorCode::kUsage, "[brAInwav] the registry is already watching", {}, {}};
  }
  WatcherOptions options;
  options.path = impl_->path();
  options.poll_interval = poll_interval;
  options.force_poll = force_poll;
  auto watcher = std::make_unique<ManifestWatcher>(std::move(options), [this] { (void)refresh(); });
  if (auto status = watcher->start(); !status) return status;
  impl_->watcher = std::move(watcher);
  return {};
}

void Registry::stop_watching() noexcept {
  std::unique_ptr<ManifestWatcher> watcher;
  {
    std::lock_guard lock(impl_->background_mutex);
    watcher = std::move(impl_->watcher);
  }
  if (watcher) watcher->stop();
}

std::optional<LoadFailure> Registry::last_failure() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->failure;
}

std::uint64_t Registry::subscribe(Listener listener) {
  std::lock_guard lock(impl_->listeners_mutex);
  const std::uint64_t id = impl_->next_listener_id++;
  impl_->listeners.emplace(id, std::move(listener));
  return id;
}

void Registry::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(impl_->listeners_mutex);
  impl_->listeners.erase(id);
}

std::shared_ptr<const Snapshot> Registry::wait_for_version(
    std::uint64_t version, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->state_mutex);
  std::shared_ptr<const Snapshot> snap;
  impl_->version_cv.wait_for(lock, timeout, [&] {
    snap = impl_->current.load();
    return snap && snap->version >= version;
  });
  return snap && snap->version >= version ? snap : nullptr;
}

HistoryRecorder* Registry::history() const noexcept { return impl_->options.history.get(); }

Metrics& Registry::metrics() noexcept { return impl_->metrics; }

}  // namespace cortex_connectors
