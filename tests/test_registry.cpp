#include <atomic>
#include <thread>

#include "cortex_connectors/json.h"
#include "cortex_connectors/metrics.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/verify.h"
#include "internal/compress.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kKey = "registry-test-key";

// A valid manifest whose first connector's ttl is `ttl`; `generated_at` may be empty.
std::string manifest(int ttl, std::string_view generated_at = "2025-10-10T00:00:00Z",
                     std::string_view extra_connector_id = "") {
  std::string text = R"({"id": "01J7X5MB4K1ZW0000000000000", "manifestVersion": "1",)";
  if (!generated_at.empty()) text += R"("generatedAt": ")" + std::string(generated_at) + "\",";
  text += R"("connectors": [{"id": "alpha", "name": "Alpha", "version": "1",
      "endpoint": "https://a.invalid", "auth": {"type": "none"}, "scopes": ["s"],
      "ttlSeconds": )" +
          std::to_string(ttl) + "}";
  if (!extra_connector_id.empty()) {
    text += R"(, {"id": ")" + std::string(extra_connector_id) + R"(", "name": "X", "version": "1",
      "endpoint": "https://x.invalid", "auth": {"type": "none"}, "scopes": ["s"],
      "ttlSeconds": 5, "enabled": false})";
  }
  return text + "]}";
}

cc::RegistryOptions options_for(const std::filesystem::path& path) {
  cc::RegistryOptions o;
  o.manifest_path = path.string();
  o.signing_key = std::string(kKey);
  return o;
}

}  // namespace

TEST_CASE("refresh publishes a complete signed snapshot", "[registry]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", manifest(60));
  cc::Registry registry(options_for(dir / "m.json"));
  CHECK_FALSE(registry.has_snapshot());
  CHECK(registry.current() == nullptr);
  auto r = registry.refresh();
  REQUIRE_OK(r);
  const auto snap = registry.current();
  REQUIRE(snap);
  CHECK(snap == *r);
  CHECK(snap->version == 1);
  CHECK(snap->path == (dir / "m.json").string());
  CHECK(snap->content_hash.size() == 64);
  CHECK(snap->connector_count() == 1);
  CHECK(cc::verify_signed_body(snap->body, cc::as_bytes(kKey)));
  CHECK(cc::verify_hmac_sha256(cc::as_bytes(kKey), snap->canonical_payload(), snap->signature));
  CHECK(snap->etag.size() == 34);
  CHECK(snap->etag.front() == '"');
  CHECK(snap->etag.back() == '"');
  CHECK_FALSE(snap->body_gzip.empty());
  CHECK_FALSE(snap->body_brotli.empty());
  CHECK(snap->metrics_text.find("brainwav_mcp_connector_proxy_up{connector=\"alpha\"} 1") !=
        std::string::npos);
  CHECK(snap->generated_at == "2025-10-10T00:00:00Z");
}

TEST_CASE("unchanged content does no work and publishes nothing", "[registry]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", manifest(60));
  cc::Registry registry(options_for(dir / "m.json"));
  int published = 0;
  registry.subscribe([&](const std::shared_ptr<const cc::Snapshot>&) { ++published; });
  REQUIRE_OK(registry.refresh());
  const auto first = registry.current();
  REQUIRE_OK(registry.refresh());
  CHECK(registry.current() == first);
  // Different bytes, same payload: still version 1.
  cc::test::write_file(dir / "m.json", manifest(60) + "\n\n");
  REQUIRE_OK(registry.refresh());
  CHECK(registry.current() == first);
  CHECK(published == 1);
  cc::test::write_file(dir / "m.json", manifest(61));
  REQUIRE_OK(registry.refresh());
  CHECK(registry.current()->version == 2);
  CHECK(published == 2);
  const std::string text = registry.metrics().render_text(registry.current().get());
  CHECK(text.find("cortex_connectors_reloads_total{result=\"unchanged\"} 2") != std::string::npos);
  CHECK(text.find("cortex_connectors_reloads_total{result=\"success\"} 2") != std::string::npos);
  CHECK(text.find("cortex_connectors_snapshot_version 2") != std::string::npos);
}

TEST_CASE("a bad edit keeps the last good snapshot and records the failure", "[registry]") {
  cc::test::TempDir dir;
  const auto path = dir / "m.json";
  cc::test::write_file(path, manifest(60));
  cc::Registry registry(options_for(path));
  REQUIRE_OK(registry.refresh());
  const auto good = registry.current();

  // A half-written file: truncated JSON.
  const std::string full = manifest(90);
  cc::test::write_file(path, full.substr(0, full.size() / 2));
  auto r = registry.refresh();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kParse);
  CHECK(registry.current() == good);
  auto failure = registry.last_failure();
  REQUIRE(failure);
  CHECK(failure->consecutive == 1);
  CHECK(failure->error.message.find(path.string()) != std::string::npos);
  // The same bad bytes again: the same error, counted as unchanged.
  CHECK_FALSE(registry.refresh());
  // A schema violation.
  cc::test::write_file(path, manifest(0));
  auto invalid = registry.refresh();
  REQUIRE_FALSE(invalid);
  REQUIRE(invalid.error().issues.size() == 1);
  CHECK(invalid.error().issues[0].pointer == "/connectors/0/ttlSeconds");
  CHECK(registry.last_failure()->consecutive == 2);
  CHECK(registry.current() == good);
  // A fix that serves the same bytes as before ends the failure without a new version.
  cc::test::write_file(path, manifest(60) + " ");
  REQUIRE_OK(registry.refresh());
  CHECK(registry.current() == good);
  CHECK_FALSE(registry.last_failure());
  cc::test::write_file(path, manifest(0));
  REQUIRE_FALSE(registry.refresh());
  // The complete write that follows replaces it.
  cc::test::write_file(path, full);
  REQUIRE_OK(registry.refresh());
  CHECK(registry.current()->version == 2);
  CHECK_FALSE(registry.last_failure());
  // A missing file lists the path tried and keeps the snapshot.
  std::filesystem::remove(path);
  auto missing = registry.refresh();
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == cc::ErrorCode::kNotFound);
  REQUIRE(missing.error().issues.size() == 1);
  CHECK(missing.error().issues[0].pointer == path.string());
  CHECK(registry.current()->version == 2);
  // Errors never carry the key.
  CHECK(registry.last_failure()->error.message.find(kKey) == std::string::npos);
}

TEST_CASE("generatedAt falls back to the first load time of the content", "[registry]") {
  cc::test::TempDir dir;
  const auto path = dir / "m.json";
  auto now = std::chrono::system_clock::from_time_t(1760054400);  // 2025-10-10T00:00:00Z
  cc::RegistryOptions o = options_for(path);
  o.clock = [&] { return now; };
  cc::Registry registry(o);
  cc::test::write_file(path, manifest(60, ""));
  REQUIRE_OK(registry.refresh());
  CHECK(registry.current()->generated_at == "2025-10-10T00:00:00Z");
  now += 1h;
  cc::test::write_file(path, manifest(60, "") + " ");  // same content, new bytes
  REQUIRE_OK(registry.refresh());
  CHECK(registry.current()->version == 1);
  CHECK(registry.current()->generated_at == "2025-10-10T00:00:00Z");
  cc::test::write_file(path, manifest(30, ""));  // new content
  REQUIRE_OK(registry.refresh());
  CHECK(registry.current()->version == 2);
  CHECK(registry.current()->generated_at == "2025-10-10T01:00:00Z");
  CHECK(cc::verify_signed_body(registry.current()->body, cc::as_bytes(kKey)));
  CHECK(registry.current()->body.find("2025-10-10T01:00:00Z") != std::string::npos);
}

TEST_CASE("asynchronous first load and waiting for a version", "[registry]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", manifest(60));
  cc::Registry registry(options_for(dir / "m.json"));
  registry.refresh_async();
  const auto snap = registry.wait_for_version(1, 10s);
  REQUIRE(snap);
  CHECK(snap->version == 1);
  CHECK(registry.has_snapshot());
  CHECK(registry.wait_for_version(2, 10ms) == nullptr);
}

TEST_CASE("first_version continues a count and listeners can leave", "[registry]") {
  cc::test::TempDir dir;
  cc::RegistryOptions o = options_for(dir / "m.json");
  o.first_version = 41;
  std::vector<cc::RefreshReport> reports;
  o.on_refresh = [&](const cc::RefreshReport& r) { reports.push_back(r); };
  cc::Registry registry(o);
  std::vector<std::uint64_t> seen;
  const auto id = registry.subscribe([&](const auto& s) { seen.push_back(s->version); });
  REQUIRE_OK(registry.refresh_from_text(manifest(60), "inline"));
  REQUIRE_OK(registry.refresh_from_text(manifest(61)));
  registry.unsubscribe(id);
  REQUIRE_OK(registry.refresh_from_text(manifest(62)));
  CHECK(seen == std::vector<std::uint64_t>{41, 42});
  CHECK(registry.current()->version == 43);
  REQUIRE(reports.size() == 3);
  CHECK(reports[0].result == cc::ReloadResult::kSuccess);
  CHECK(reports[0].path == "inline");
  CHECK(reports[0].timings.parse.count() > 0);
  CHECK(reports[2].version == 43);
}

TEST_CASE("refresh reports carry what a tracer needs", "[registry][tracing]") {
  cc::test::TempDir dir;
  cc::RegistryOptions o = options_for(dir / "m.json");
  std::vector<std::string> order;
  std::uint64_t reported_version = 0;
  std::chrono::system_clock::time_point started;
  bool failure_had_snapshot = true;
  o.on_refresh = [&](const cc::RefreshReport& r) {
    order.push_back("report");
    if (r.result == cc::ReloadResult::kSuccess) {
      REQUIRE(r.snapshot != nullptr);
      reported_version = r.snapshot->version;
      started = r.started_at;
    } else if (r.result == cc::ReloadResult::kFailure) {
      failure_had_snapshot = r.snapshot != nullptr;
    }
  };
  cc::Registry registry(o);
  registry.subscribe([&](const auto&) { order.push_back("listener"); });
  const auto before = std::chrono::system_clock::now();
  REQUIRE_OK(registry.refresh_from_text(manifest(60)));
  const auto after = std::chrono::system_clock::now();
  CHECK(order == std::vector<std::string>{"report", "listener"});
  CHECK(reported_version == registry.current()->version);
  CHECK(started >= before);
  CHECK(started <= after);
  CHECK_FALSE(registry.refresh_from_text("{").has_value());
  CHECK_FALSE(failure_had_snapshot);
}

TEST_CASE("stale connector series leave the metrics with the connector", "[registry]") {
  cc::Registry registry(options_for("unused"));
  REQUIRE_OK(registry.refresh_from_text(manifest(60, "2025-10-10T00:00:00Z", "beta")));
  auto text = registry.metrics().render_text(registry.current().get());
  CHECK(text.find("brainwav_mcp_connector_proxy_up{connector=\"beta\"} 0") != std::string::npos);
  REQUIRE_OK(registry.refresh_from_text(manifest(60)));
  text = registry.metrics().render_text(registry.current().get());
  CHECK(text.find("connector=\"beta\"") == std::string::npos);
  CHECK(text.find("brainwav_mcp_connector_proxy_up{connector=\"alpha\"} 1") != std::string::npos);
}

TEST_CASE("readers never see a torn or unsigned body while a writer churns", "[registry][stress]") {
  cc::Registry registry(options_for("unused"));
  REQUIRE_OK(registry.refresh_from_text(manifest(1)));
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::atomic<long> bad{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      std::uint64_t last = 0;
      while (!stop.load()) {
        const auto snap = registry.current();
        if (!snap || snap->version < last ||
            !cc::verify_hmac_sha256(cc::as_bytes(kKey), snap->canonical_payload(),
                                    snap->signature) ||
            !cc::parse_json(snap->body)) {
          bad.fetch_add(1);
        }
        last = snap ? snap->version : last;
        reads.fetch_add(1);
      }
    });
  }
  int good_writes = 0;
  for (int i = 0; i < 300; ++i) {
    const std::string text = manifest(2 + i);
    switch (i % 3) {
      case 0:
        (void)registry.refresh_from_text(text);
        ++good_writes;
        break;
      case 1:
        (void)registry.refresh_from_text(text.substr(0, text.size() / 2));
        break;
      default:
        (void)registry.refresh_from_text(manifest(0));
        break;
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(bad.load() == 0);
  CHECK(reads.load() > 0);
  CHECK(registry.current()->version == static_cast<std::uint64_t>(good_writes) + 1);
}

TEST_CASE("watching: edits, renames, re-creation and symlink swaps publish new versions",
          "[registry][watcher]") {
  cc::test::TempDir dir;
  // Kubernetes ConfigMap layout: connectors.manifest.json -> ..data/m.json, ..data -> ..v1
  std::filesystem::create_directory(dir / "..v1");
  cc::test::write_file(dir / "..v1/m.json", manifest(60));
  std::filesystem::create_directory_symlink("..v1", dir / "..data");
  std::filesystem::create_symlink("..data/m.json", dir / "connectors.manifest.json");
  cc::RegistryOptions o = options_for(dir / "connectors.manifest.json");
  cc::Registry registry(o);
  REQUIRE_OK(registry.refresh());
  REQUIRE(registry.start_watching());
  CHECK_FALSE(registry.start_watching());  // already watching

  // ConfigMap update: new timestamped dir, ..data swapped by rename.
  std::filesystem::create_directory(dir / "..v2");
  cc::test::write_file(dir / "..v2/m.json", manifest(61));
  std::filesystem::create_directory_symlink("..v2", dir / "..data_tmp");
  std::filesystem::rename(dir / "..data_tmp", dir / "..data");
  std::filesystem::remove_all(dir / "..v1");
  REQUIRE(registry.wait_for_version(2, 10s));

  // A half-written file never replaces the good snapshot; the complete write that follows does.
  const auto target = dir / "..v2/m.json";
  const std::string full = manifest(62);
  cc::test::write_file(target, full.substr(0, full.size() / 2));
  REQUIRE(cc::test::eventually_true([&] { return registry.last_failure().has_value(); }));
  CHECK(registry.current()->version == 2);
  cc::test::write_file(target, full);
  const auto v3 = registry.wait_for_version(3, 10s);
  REQUIRE(v3);
  CHECK(v3->body.find("\"ttlSeconds\":62") != std::string::npos);

  // Deletion, then re-creation.
  std::filesystem::remove(target);
  REQUIRE(cc::test::eventually_true([&] {
    auto f = registry.last_failure();
    return f && f->error.code == cc::ErrorCode::kNotFound;
  }));
  cc::test::write_file(target, manifest(63));
  REQUIRE(registry.wait_for_version(4, 10s));
  registry.stop_watching();
}

TEST_CASE("watching falls back to polling where inotify is not wanted", "[registry][watcher]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", manifest(60));
  cc::Registry registry(options_for(dir / "m.json"));
  REQUIRE_OK(registry.refresh());
  REQUIRE(registry.start_watching(20ms, /*force_poll=*/true));
  cc::test::write_file(dir / "m.json", manifest(70));
  REQUIRE(registry.wait_for_version(2, 10s));
}

TEST_CASE("pre-compressed bodies inflate to the body, small and large", "[registry]") {
  cc::Registry registry(options_for("unused"));
  std::string blobs;
  for (int i = 0; i < 8; ++i) {
    blobs += ", \"blob" + std::to_string(i) + "\": \"" +
             std::string(50000, static_cast<char>('a' + i)) + "\"";
  }
  std::string large = manifest(60);
  large.insert(large.find("\"connectors\""), "\"metadata\": {\"k\": 1" + blobs + "}, ");
  for (const std::string& text : {manifest(60), large}) {
    REQUIRE_OK(registry.refresh_from_text(text));
    const auto snap = registry.current();
    std::string inflated;
    REQUIRE(cc::internal::gzip_decompress(snap->body_gzip, inflated));
    CHECK(inflated == snap->body);
    CHECK_FALSE(snap->body_brotli.empty());
    CHECK(snap->body_brotli.size() < snap->body.size());
  }
  CHECK(registry.current()->body.size() > (std::size_t{256} << 10));
}

TEST_CASE("large bodies are published before they are compressed", "[registry]") {
  cc::Registry registry(options_for("unused"));
  std::vector<std::shared_ptr<const cc::Snapshot>> seen;
  registry.subscribe([&](const std::shared_ptr<const cc::Snapshot>& s) { seen.push_back(s); });
  std::string blobs = "\"k\": 1";
  for (int i = 0; i < 6; ++i) {
    blobs += ", \"blob" + std::to_string(i) + "\": \"" + std::string(50000, 'z') + "\"";
  }
  std::string large = manifest(60);
  large.insert(large.find("\"connectors\""), "\"metadata\": {" + blobs + "}, ");
  REQUIRE_OK(registry.refresh_from_text(large));
  REQUIRE(seen.size() == 1);  // listeners hear of the version once
  const auto first = seen.front();
  CHECK(first->body.size() > (std::size_t{256} << 10));
  // Published identity-only: a server serves the body itself until the encodings exist.
  CHECK(first->body_gzip.empty());
  CHECK(first->body_brotli.empty());
  const auto later = registry.current();
  CHECK(later->version == first->version);
  CHECK(later->body == first->body);
  CHECK(later->etag == first->etag);
  CHECK(later->body_gzip == cc::internal::gzip_compress(later->body, 6));
  CHECK(later->body_brotli == cc::internal::brotli_compress(later->body, 5));

  // Explicit settings compress before publication.
  auto options = options_for("unused");
  options.gzip_level = 1;
  cc::Registry fixed(options);
  bool compressed_when_published = false;
  fixed.subscribe([&](const std::shared_ptr<const cc::Snapshot>& s) {
    compressed_when_published = !s->body_gzip.empty() && !s->body_brotli.empty();
  });
  REQUIRE_OK(fixed.refresh_from_text(large));
  CHECK(compressed_when_published);
}

TEST_CASE("snapshots keep the typed manifest unless told not to", "[registry]") {
  auto text = manifest(60, "", "beta");
  cc::Registry keeping(options_for("unused"));
  REQUIRE_OK(keeping.refresh_from_text(text));
  const auto kept = keeping.current();
  REQUIRE(kept->manifest != nullptr);
  CHECK(kept->manifest->connectors.size() == 2);
  CHECK(kept->connector_count() == 2);
  CHECK_FALSE(kept->manifest_generated_at);

  auto options = options_for("unused");
  options.keep_manifest = false;
  std::vector<std::string> reported_ids;
  options.on_refresh = [&](const cc::RefreshReport& r) {
    if (r.result != cc::ReloadResult::kSuccess) return;
    CHECK(r.manifest == nullptr);  // never built
    // The tracer still gets the ids, during the call.
    for (const auto& id : r.connector_ids) reported_ids.push_back(id);
  };
  cc::Registry dropping(options);
  REQUIRE_OK(dropping.refresh_from_text(text));
  const auto dropped = dropping.current();
  CHECK(dropped->manifest == nullptr);
  CHECK(dropped->connector_count() == 2);
  CHECK(reported_ids == std::vector<std::string>{"alpha", "beta"});
  // generatedAt still falls back to the first load time of unchanged content without the model.
  const auto first_time = dropped->generated_at;
  REQUIRE_OK(dropping.refresh_from_text(text + " "));
  CHECK(dropping.current()->generated_at == first_time);
  REQUIRE_OK(dropping.refresh_from_text(manifest(60, "2025-10-10T00:00:00Z")));
  CHECK(dropping.current()->manifest_generated_at);
}

TEST_CASE("small bodies are published fast and then recompressed at the best settings",
          "[registry]") {
  cc::Registry registry(options_for("unused"));
  std::vector<std::shared_ptr<const cc::Snapshot>> seen;
  registry.subscribe([&](const std::shared_ptr<const cc::Snapshot>& s) { seen.push_back(s); });
  REQUIRE_OK(registry.refresh_from_text(manifest(60)));
  REQUIRE(seen.size() == 1);  // listeners hear of the version once
  const auto first = seen.front();
  const auto best = registry.current();
  CHECK(best->version == first->version);
  CHECK(best->body == first->body);
  CHECK(best->etag == first->etag);
  // What listeners got: the fast settings; what current() serves now: the best ones.
  CHECK(first->body_gzip == cc::internal::gzip_compress(first->body, 6));
  CHECK(first->body_brotli == cc::internal::brotli_compress(first->body, 1));
  CHECK(best->body_gzip == cc::internal::gzip_compress(best->body, 9));
  CHECK(best->body_brotli == cc::internal::brotli_compress(best->body, 11));
  CHECK(best->body_brotli.size() <= first->body_brotli.size());

  // Explicit settings are used as given, once.
  auto options = options_for("unused");
  options.gzip_level = 1;
  options.brotli_quality = 2;
  cc::Registry fixed(options);
  REQUIRE_OK(fixed.refresh_from_text(manifest(60)));
  CHECK(fixed.current()->body_gzip == cc::internal::gzip_compress(fixed.current()->body, 1));
  CHECK(fixed.current()->body_brotli == cc::internal::brotli_compress(fixed.current()->body, 2));
}

TEST_CASE("publish_signed serves another registry's verified bytes, and only those",
          "[registry][scaling]") {
  cc::RegistryOptions source_options;
  source_options.signing_key = std::string(kKey);
  cc::Registry source(source_options);
  REQUIRE_OK(source.refresh_from_text(manifest(30, "2025-10-10T00:00:00Z", "beta")));
  const auto original = source.current();

  cc::RegistryOptions replica_options;
  replica_options.signing_key = std::string(kKey);
  cc::Registry replica(replica_options);
  std::vector<std::uint64_t> heard;
  replica.subscribe(
      [&](const std::shared_ptr<const cc::Snapshot>& s) { heard.push_back(s->version); });
  cc::SignedSnapshot s{original->body, 7, original->content_hash, "test"};
  auto published = replica.publish_signed(s);
  REQUIRE_OK(published);
  const auto snap = *published;
  CHECK(snap->version == 7);
  CHECK(snap->body == original->body);
  CHECK(snap->etag == original->etag);
  CHECK(snap->signature == original->signature);
  CHECK(snap->canonical_payload() == original->canonical_payload());
  std::string inflated;
  REQUIRE(cc::internal::gzip_decompress(snap->body_gzip, inflated));
  CHECK(inflated == snap->body);
  CHECK(snap->connector_count() == 2);
  CHECK(snap->metrics_text.find(R"(connector="beta"} 0)") != std::string::npos);
  CHECK(heard == std::vector<std::uint64_t>{7});
  // What the payload says of the manifest, kept as a Manifest (keep_manifest is the default).
  REQUIRE(snap->manifest != nullptr);
  const cc::Manifest& kept = *snap->manifest;
  CHECK(kept.id == "01J7X5MB4K1ZW0000000000000");
  CHECK(kept.brand == "brAInwav");
  CHECK(kept.generated_at == "2025-10-10T00:00:00Z");
  REQUIRE(kept.connectors.size() == 2);
  CHECK(kept.connectors[0].id == "alpha");
  CHECK(kept.connectors[0].name == "Alpha");
  CHECK(kept.connectors[0].display_name == "Alpha");
  CHECK(kept.connectors[0].endpoint == "https://a.invalid");
  CHECK(kept.connectors[0].ttl_seconds == 30);
  CHECK(kept.connectors[0].scopes == std::vector<std::string>{"s"});
  CHECK(kept.connectors[0].is_enabled());
  CHECK(kept.connectors[1].id == "beta");
  CHECK(kept.connectors[1].ttl_seconds == 5);
  CHECK_FALSE(kept.connectors[1].is_enabled());

  // The same version again, or an older one, publishes nothing.
  REQUIRE_OK(source.refresh_from_text(manifest(20)));
  CHECK((*replica.publish_signed({source.current()->body, 7, "", "test"}))->version == 7);
  CHECK((*replica.publish_signed({source.current()->body, 6, "", "test"}))->version == 7);
  CHECK(heard.size() == 1);

  // A body that does not verify never replaces the current one, and is the last failure.
  std::string tampered = source.current()->body;
  tampered.replace(tampered.find("https://a.invalid"), 17, "https://b.invalid");
  auto bad = replica.publish_signed({tampered, 8, "", "test"});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == cc::ErrorCode::kSignature);
  CHECK(replica.current()->version == 7);
  REQUIRE(replica.last_failure());
  CHECK(replica.last_failure()->error.message.find(kKey) == std::string::npos);

  // Verified but not as served (not canonical): refused too.
  std::string spaced = source.current()->body;
  spaced.insert(1, " ");
  auto loose = replica.publish_signed({spaced, 8, "", "test"});
  REQUIRE_FALSE(loose);
  CHECK(loose.error().code == cc::ErrorCode::kInvalid);
  CHECK(cc::verify_service_map(source.current()->body, cc::as_bytes(kKey)));  // sanity

  // Another key: refused.
  cc::RegistryOptions other_options;
  other_options.signing_key = "another-key";
  cc::Registry other(other_options);
  CHECK_FALSE(other.publish_signed({source.current()->body, 1, "", "test"}));
  CHECK_FALSE(other.has_snapshot());

  REQUIRE_OK(replica.publish_signed({source.current()->body, 9, "", "test"}));
  CHECK(replica.current()->body == source.current()->body);
  CHECK_FALSE(replica.last_failure());
  CHECK(heard == std::vector<std::uint64_t>{7, 9});
}

TEST_CASE("publish_signed adopts a higher version of the current body, bytes unchanged",
          "[registry][scaling]") {
  cc::RegistryOptions source_options;
  source_options.signing_key = std::string(kKey);
  cc::Registry source(source_options);
  REQUIRE_OK(source.refresh_from_text(manifest(30)));
  const std::string body = source.current()->body;

  cc::RegistryOptions replica_options;
  replica_options.signing_key = std::string(kKey);
  cc::Registry replica(replica_options);
  std::vector<std::shared_ptr<const cc::Snapshot>> heard;
  replica.subscribe([&](const std::shared_ptr<const cc::Snapshot>& s) { heard.push_back(s); });
  REQUIRE_OK(replica.publish_signed({body, 8, "", "test"}));
  const auto first = replica.current();

  // The publisher numbered the same bytes anew (restarted without its history): the replica
  // takes the version, so that every replica reports the same one, and serves the same bytes.
  auto adopted = replica.publish_signed({body, 9, "", "test"});
  REQUIRE_OK(adopted);
  CHECK((*adopted)->version == 9);
  CHECK(replica.current()->version == 9);
  CHECK(replica.current()->body == first->body);
  CHECK(replica.current()->etag == first->etag);
  CHECK(replica.current()->body_gzip == first->body_gzip);
  CHECK(replica.current()->signature == first->signature);
  CHECK(replica.metrics()
            .render_text(replica.current().get())
            .find("cortex_connectors_snapshot_version 9") != std::string::npos);
  // Listeners hear of it (an SSE hub must carry the new id), with the same bytes.
  REQUIRE(heard.size() == 2);
  CHECK(heard[1]->version == 9);
  CHECK(heard[1]->body == heard[0]->body);
  // Lower or equal versions still publish nothing.
  CHECK((*replica.publish_signed({body, 8, "", "test"}))->version == 9);
  CHECK((*replica.publish_signed({body, 9, "", "test"}))->version == 9);
  CHECK(heard.size() == 2);
}

TEST_CASE("resume_from: the body published elsewhere keeps its version after a restart",
          "[registry][scaling]") {
  // A publisher without history (or with a lost one) and a manifest without generatedAt: the
  // body is rebuilt exactly as it was (generatedAt from the stored body) and keeps its version.
  auto now = std::chrono::system_clock::from_time_t(1760054400);  // 2025-10-10T00:00:00Z
  cc::RegistryOptions first_options;
  first_options.signing_key = std::string(kKey);
  first_options.clock = [&] { return now; };
  first_options.first_version = 8;
  cc::Registry first(first_options);
  REQUIRE_OK(first.refresh_from_text(manifest(60, "")));
  const auto stored = first.current();
  REQUIRE(stored->version == 8);

  now += 1h;
  cc::RegistryOptions o;
  o.signing_key = std::string(kKey);
  o.clock = [&] { return now; };
  o.resume_from = cc::SignedSnapshot{stored->body, 8, stored->content_hash, "redis"};
  SECTION("the same manifest: the same body under the same version") {
    cc::Registry restarted(o);
    REQUIRE_OK(restarted.refresh_from_text(manifest(60, "")));
    CHECK(restarted.current()->version == 8);
    CHECK(restarted.current()->body == stored->body);
    // Later changes continue above it.
    REQUIRE_OK(restarted.refresh_from_text(manifest(50, "")));
    CHECK(restarted.current()->version == 9);
  }
  SECTION("another manifest: a version above the stored one") {
    cc::Registry restarted(o);
    REQUIRE_OK(restarted.refresh_from_text(manifest(40, "")));
    CHECK(restarted.current()->version == 9);
    CHECK(restarted.current()->generated_at == "2025-10-10T01:00:00Z");
  }
  SECTION("a recorded snapshot older than the stored one is not resumed") {
    // The history holds version 3 of this very manifest; the deployment has moved on to 8.
    auto store = std::make_shared<cc::MemoryHistoryStore>();
    {
      cc::RegistryOptions h = o;
      h.resume_from.reset();
      h.history = std::make_shared<cc::HistoryRecorder>(store);
      h.first_version = 3;
      cc::Registry recorded(h);
      REQUIRE_OK(recorded.refresh_from_text(manifest(70, "2025-10-10T00:00:00Z")));
      REQUIRE(recorded.current()->version == 3);
      h.history->flush();
    }
    cc::RegistryOptions h = o;
    h.history = std::make_shared<cc::HistoryRecorder>(store);
    cc::Registry restarted(h);
    REQUIRE_OK(restarted.refresh_from_text(manifest(70, "2025-10-10T00:00:00Z")));
    CHECK(restarted.current()->version > 8);
  }
}
