// Chaos under load: the real server on 127.0.0.1 while its manifest is rewritten hundreds of
// times (valid edits, invalid JSON, schema violations, truncated writes, atomic renames,
// delete-then-recreate, permission flips), HTTP clients hammer the service map and SSE
// subscribers (full and delta mode) listen. Bounded by wall time, not by counts, because it also
// runs in the sanitizer builds: CORTEX_CONNECTORS_CHAOS_SECONDS (default 30) of rewriting.
//
// What the design guarantees, and what is asserted:
// - once ready, every service-map request is answered 200 (or 304), never 5xx;
// - every body and every event verifies against its signature (verify_service_map) and carries
//   a version that was written as a valid manifest: an invalid or partial file is never served;
// - a client never sees versions go backwards: snapshot versions only grow, and SSE event ids
//   strictly increase on one connection;
// - conflation: a manifest overwritten before the watcher reads it is never loaded, and a
//   subscriber busy with one event is sent the newest snapshot next, so intermediate versions
//   may be skipped; the latest valid version is seen by every subscriber and every client;
// - /health reports "degraded" with the error while the file is bad, and "ok" once it is fixed.
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/sse.h"
#include "cortex_connectors/verify.h"
#include "server_process.h"
#include "sse_client.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::ServerProcess;
using cc::test::SseClient;
using namespace std::chrono_literals;

namespace {

const std::string kSigningKey = "chaos-signing-key";
const std::string kApiKey = "chaos-api-key";

std::chrono::seconds chaos_duration() {
  const char* v = std::getenv("CORTEX_CONNECTORS_CHAOS_SECONDS");
  return std::chrono::seconds(v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : 30);
}

// The fixture with metadata {"rev": rev}: every revision is a distinct payload.
std::string manifest_rev(long rev) {
  std::string text = cc::test::read_data("manifests/original-fixture.manifest.json");
  const std::string at = "\"ttlSeconds\": 600,";
  text.replace(text.find(at), at.size(),
               at + " \"metadata\": {\"rev\": " + std::to_string(rev) + "},");
  return text;
}

// What every reader records; checked on the main thread (Catch2 assertions are not
// thread-safe).
struct Findings {
  std::mutex mutex;
  std::vector<std::string> failures;
  std::atomic<long> failure_count{0};
  void fail(std::string what) {
    failure_count.fetch_add(1);
    std::lock_guard lock(mutex);
    if (failures.size() < 20) failures.push_back(std::move(what));
  }
};

// Revisions written as valid manifests (published before the file is written).
class ValidRevisions {
 public:
  void add(long rev) {
    std::lock_guard lock(mutex_);
    revs_.insert(rev);
  }
  bool contains(long rev) {
    std::lock_guard lock(mutex_);
    return revs_.count(rev) != 0;
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return revs_.size();
  }

 private:
  std::mutex mutex_;
  std::set<long> revs_;
};

// The revision of a verified payload, or -1.
long rev_of(const cc::Json& payload) {
  const cc::Json* metadata = payload.find("metadata");
  const cc::Json* rev = metadata != nullptr ? metadata->find("rev") : nullptr;
  return rev != nullptr && rev->is_number() ? static_cast<long>(rev->as_number()) : -1;
}

void write_atomically(const std::filesystem::path& path, const std::string& content) {
  const auto tmp = path.parent_path() / ".chaos-tmp";
  cc::test::write_file(tmp, content);
  std::filesystem::rename(tmp, path);
}

}  // namespace

TEST_CASE("chaos: manifest rewrites under HTTP and SSE load lose nothing and serve nothing bad",
          "[chaos]") {
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  ValidRevisions valid;
  valid.add(1);
  cc::test::write_file(manifest, manifest_rev(1));
  ServerProcess server({"--port", "0", "--heartbeat-seconds", "1"},
                       {"CONNECTORS_SIGNATURE_KEY=" + kSigningKey, "CONNECTORS_API_KEY=" + kApiKey,
                        "CONNECTORS_MANIFEST_PATH=" + manifest.string(),
                        "CONNECTORS_POLL_INTERVAL_MS=50", "LOG_LEVEL=warning"});
  const int port = server.port();
  REQUIRE(port > 0);
  httplib::Client probe("127.0.0.1", port);
  REQUIRE(cc::test::eventually_true([&] {
    auto r = probe.Get("/ready");
    return r && r->status == 200;
  }));

  Findings findings;
  std::atomic<bool> stop{false};
  std::atomic<long> requests{0}, ok_200{0}, not_modified{0}, events{0}, deltas{0};
  std::atomic<long> health_polls{0}, health_degraded{0};

  // HTTP clients: keep-alive, some with If-None-Match of the last ETag.
  std::vector<std::thread> threads;
  constexpr int kClients = 4;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port);
      c.set_keep_alive(true);
      c.set_read_timeout(10s);
      std::string etag;
      long last_version = 0;
      while (!stop) {
        httplib::Headers h = {{"Authorization", "Bearer " + kApiKey}};
        if (i % 2 == 1 && !etag.empty()) h.emplace("If-None-Match", etag);
        auto r = c.Get("/v1/connectors/service-map", h);
        requests.fetch_add(1);
        if (!r) {
          findings.fail("client: no response (" + httplib::to_string(r.error()) + ")");
          continue;
        }
        if (r->status == 304) {
          not_modified.fetch_add(1);
          continue;
        }
        if (r->status != 200) {
          findings.fail("client: status " + std::to_string(r->status) + " " + r->body);
          continue;
        }
        ok_200.fetch_add(1);
        etag = r->get_header_value("ETag");
        auto verified = cc::verify_service_map(r->body, cc::as_bytes(kSigningKey));
        if (!verified) {
          findings.fail("client: body does not verify: " + cc::describe(verified.error()));
          continue;
        }
        const long rev = rev_of(verified->payload);
        if (!valid.contains(rev)) findings.fail("client: served rev " + std::to_string(rev));
        // Revisions are written in increasing order: the served one never goes back.
        if (rev < last_version) {
          findings.fail("client: rev went back from " + std::to_string(last_version) + " to " +
                        std::to_string(rev));
        }
        last_version = std::max(last_version, rev);
      }
    });
  }

  // SSE subscribers: three full, one delta. Connected here (SseClient asserts), read there.
  constexpr int kSubscribers = 4;
  std::vector<std::unique_ptr<SseClient>> subscribers;
  std::vector<std::atomic<long>> seen_rev(kSubscribers);
  std::vector<std::set<long>> seen_sets(kSubscribers);
  for (int i = 0; i < kSubscribers; ++i) {
    const std::string target =
        i == 0 ? "/v1/connectors/stream?mode=delta" : "/v1/connectors/stream";
    subscribers.push_back(std::make_unique<SseClient>(
        port, target, std::vector<std::string>{"Authorization: Bearer " + kApiKey}));
    REQUIRE(subscribers.back()->head().rfind("HTTP/1.1 200", 0) == 0);
    seen_rev[static_cast<std::size_t>(i)] = 0;
  }
  std::atomic<bool> subscribers_stop{false};
  for (int i = 0; i < kSubscribers; ++i) {
    threads.emplace_back([&, i] {
      const auto idx = static_cast<std::size_t>(i);
      SseClient& sub = *subscribers[idx];
      std::uint64_t last_id = 0;
      cc::Json payload;  // the delta subscriber's current payload
      while (!subscribers_stop) {
        auto e = sub.next_event(500ms);
        if (!e) {
          if (sub.eof()) {
            findings.fail("subscriber " + std::to_string(i) + ": stream ended");
            return;
          }
          continue;
        }
        events.fetch_add(1);
        const auto id = cc::parse_last_event_id(e->id);
        if (!id || *id <= last_id) {
          findings.fail("subscriber: event id " + e->id + " after " + std::to_string(last_id));
        }
        if (id) last_id = *id;
        auto data = cc::parse_json(e->data);
        if (!data) {
          findings.fail("subscriber: torn event data: " + cc::describe(data.error()));
          continue;
        }
        std::optional<cc::Result<cc::VerifiedServiceMap>> verified;
        if (e->event == "status") {
          const cc::Json* body = data->find("payload");
          if (body == nullptr) {
            findings.fail("subscriber: status event without payload");
            continue;
          }
          verified.emplace(
              cc::verify_service_map(cc::canonical_json(*body).value(), cc::as_bytes(kSigningKey)));
        } else if (e->event == "delta") {
          deltas.fetch_add(1);
          auto next = cc::apply_delta(payload, *data);
          const cc::Json* signature = data->find("signature");
          if (!next || signature == nullptr || !signature->is_string()) {
            findings.fail("subscriber: delta does not apply");
            continue;
          }
          verified.emplace(cc::verify_service_map_payload(*next, signature->as_string(),
                                                          cc::as_bytes(kSigningKey)));
        } else {
          findings.fail("subscriber: unexpected event " + e->event);
          continue;
        }
        if (!*verified) {
          findings.fail("subscriber: " + e->event +
                        " does not verify: " + cc::describe(verified->error()));
          continue;
        }
        payload = (*verified)->payload;
        const long rev = rev_of(payload);
        if (!valid.contains(rev)) findings.fail("subscriber: rev " + std::to_string(rev));
        if (rev <= seen_rev[idx]) {
          findings.fail("subscriber: rev " + std::to_string(rev) + " after " +
                        std::to_string(seen_rev[idx].load()));
        }
        seen_rev[idx] = rev;
        seen_sets[idx].insert(rev);
      }
    });
  }

  // /health: degraded with the error while the file is bad.
  std::atomic<bool> health_bad_without_error{false};
  threads.emplace_back([&] {
    httplib::Client c("127.0.0.1", port);
    while (!stop) {
      auto r = c.Get("/health");
      health_polls.fetch_add(1);
      if (!r || r->status != 200) {
        findings.fail("health: no 200");
        continue;
      }
      auto h = cc::parse_json(r->body);
      if (!h) {
        findings.fail("health: not JSON");
        continue;
      }
      const std::string status = h->find("status")->as_string();
      if (status == "degraded") {
        health_degraded.fetch_add(1);
        const cc::Json* last = h->find("lastError");
        if (last == nullptr || last->find("message") == nullptr) health_bad_without_error = true;
      } else if (status != "ok") {
        findings.fail("health: status " + status);
      }
      std::this_thread::sleep_for(20ms);
    }
  });

  // The writer: hundreds of rewrites of every kind until the time is up.
  const bool root = ::geteuid() == 0;
  std::mt19937 rng(20251127);
  std::map<std::string, long> rewrites;
  long rev = 1;
  const auto end = std::chrono::steady_clock::now() + chaos_duration();
  while (std::chrono::steady_clock::now() < end) {
    const int kind = static_cast<int>(rng() % 8);
    switch (kind) {
      case 0: {  // a valid edit, written in place (truncate, then write)
        valid.add(++rev);
        cc::test::write_file(manifest, manifest_rev(rev));
        ++rewrites["valid in place"];
        break;
      }
      case 1: {  // a valid edit, atomic rename over the file
        valid.add(++rev);
        write_atomically(manifest, manifest_rev(rev));
        ++rewrites["valid rename"];
        break;
      }
      case 2: {  // invalid JSON
        const std::string text = manifest_rev(-rev);
        write_atomically(manifest, text.substr(0, text.size() / 2 + rng() % 100));
        ++rewrites["invalid JSON"];
        break;
      }
      case 3: {  // valid JSON, schema violation
        std::string text = manifest_rev(-rev);
        text.replace(text.find("\"ttlSeconds\": 300"), 17, "\"ttlSeconds\": 0");
        write_atomically(manifest, text);
        ++rewrites["schema violation"];
        break;
      }
      case 4: {  // a truncated write, completed a moment later
        valid.add(++rev);
        const std::string text = manifest_rev(rev);
        const std::size_t cut = text.size() / 3;
        cc::test::write_file(manifest, text.substr(0, cut));
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 120));
        std::ofstream(manifest, std::ios::binary | std::ios::app) << text.substr(cut);
        ++rewrites["truncated then completed"];
        break;
      }
      case 5: {  // delete, then re-create
        std::filesystem::remove(manifest);
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 120));
        valid.add(++rev);
        cc::test::write_file(manifest, manifest_rev(rev));
        ++rewrites["delete then recreate"];
        break;
      }
      case 6: {  // permission flip: unreadable for a while (root still reads it), then a new
                 // version
        ::chmod(manifest.c_str(), 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 120));
        ::chmod(manifest.c_str(), 0644);
        valid.add(++rev);
        write_atomically(manifest, manifest_rev(rev));
        ++rewrites["permission flip"];
        break;
      }
      default: {  // a burst of valid edits faster than the watcher's debounce
        for (int k = 0; k < 5; ++k) {
          valid.add(++rev);
          write_atomically(manifest, manifest_rev(rev));
        }
        ++rewrites["burst of 5 valid"];
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 60));
  }
  // The end state: one more valid version, which everyone must reach.
  const long final_rev = ++rev;
  valid.add(final_rev);
  write_atomically(manifest, manifest_rev(final_rev));
  ++rewrites["valid rename"];
  const bool all_reached = cc::test::eventually_true(
      [&] {
        for (auto& s : seen_rev) {
          if (s.load() != final_rev) return false;
        }
        return true;
      },
      30s);
  const bool health_ok = cc::test::eventually_true([&] {
    auto r = probe.Get("/health");
    return r && r->body.find("\"status\":\"ok\"") != std::string::npos;
  });
  stop = true;
  subscribers_stop = true;
  for (auto& t : threads) t.join();
  auto last = probe.Get("/v1/connectors/service-map", {{"Authorization", "Bearer " + kApiKey}});
  REQUIRE(last);
  REQUIRE(last->status == 200);
  auto last_map = cc::verify_service_map(last->body, cc::as_bytes(kSigningKey));
  REQUIRE_OK(last_map);

  long total_rewrites = 0;
  std::string kinds;
  for (const auto& [k, n] : rewrites) {
    total_rewrites += n;
    kinds += " " + k + "=" + std::to_string(n);
  }
  std::string seen;
  for (const auto& s : seen_sets) seen += " " + std::to_string(s.size());
  const std::string report =
      "chaos: " + std::to_string(chaos_duration().count()) +
      " s, rewrites=" + std::to_string(total_rewrites) + " (" + kinds.substr(1) +
      "), valid versions written=" + std::to_string(valid.size()) +
      ", requests=" + std::to_string(requests.load()) + " (200=" + std::to_string(ok_200.load()) +
      " 304=" + std::to_string(not_modified.load()) + "), events=" + std::to_string(events.load()) +
      " (delta=" + std::to_string(deltas.load()) +
      "), distinct versions seen per subscriber:" + seen +
      ", health polls=" + std::to_string(health_polls.load()) +
      " (degraded=" + std::to_string(health_degraded.load()) +
      "), failures=" + std::to_string(findings.failure_count.load()) +
      (root ? " (running as root: permission flips do not deny reads)" : "");
  std::printf("%s\n", report.c_str());
  INFO(report);
  for (const auto& f : findings.failures) INFO(f);
  CHECK(findings.failure_count == 0);
  CHECK(all_reached);
  CHECK(health_ok);
  CHECK(rev_of(last_map->payload) == final_rev);
  CHECK(total_rewrites >= 100);
  CHECK(requests > 100);
  CHECK(events > kSubscribers);
  CHECK(health_degraded > 0);  // invalid files were seen and reported
  CHECK_FALSE(health_bad_without_error);
  for (auto& s : seen_sets) CHECK(s.count(final_rev) == 1);
}
