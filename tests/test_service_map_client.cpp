// ServiceMapClient against the real server binary (and, for tampered bodies and hung requests,
// a test httplib::Server): fetch, 304, stream changes, restart, delta mode, stop().
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <httplib.h>
#include <signal.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/service_map_client.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/sse.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::eventually_true;
using cc::test::original_fixture;
using cc::test::replace_file;
using cc::test::ServerProcess;
using namespace std::chrono_literals;

namespace {

const std::string kSigningKey = "client-test-signing-key";
const std::string kApiKey = "client-test-api-key";

// The fixture with a fixed generatedAt (the same payload across restarts) and manifest ttl.
std::string fixture_with(int ttl, std::string_view generated_at = "2026-01-01T00:00:00Z") {
  std::string text = original_fixture();
  text.replace(text.find("\"ttlSeconds\": 600"), 17, "\"ttlSeconds\": " + std::to_string(ttl));
  text.replace(text.find("\"brand\": \"brAInwav\","), 20,
               "\"brand\": \"brAInwav\", \"generatedAt\": \"" + std::string(generated_at) + "\",");
  return text;
}

// The real server on a manifest in a temporary directory; restartable on the same port.
struct Server {
  cc::test::TempDir dir;
  std::filesystem::path manifest = dir / "connectors.manifest.json";
  std::unique_ptr<ServerProcess> process;
  int port = 0;

  std::vector<std::string> extra_env;

  explicit Server(const std::string& content, std::vector<std::string> extra = {})
      : extra_env(std::move(extra)) {
    cc::test::write_file(manifest, content);
    start(0);
  }
  void start(int on_port) {
    std::vector<std::string> env = {"CONNECTORS_SIGNATURE_KEY=" + kSigningKey,
                                    "CONNECTORS_API_KEY=" + kApiKey,
                                    "CONNECTORS_MANIFEST_PATH=" + manifest.string(),
                                    "CONNECTORS_POLL_INTERVAL_MS=50", "LOG_LEVEL=warning"};
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    process = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--port", std::to_string(on_port)}, env);
    REQUIRE(process->port() > 0);
    port = process->port();
    REQUIRE(eventually_true([&] {
      httplib::Client cli("127.0.0.1", port);
      auto res = cli.Get("/ready");
      return res && res->status == 200;
    }));
  }
  void stop() { REQUIRE(process->stop(SIGTERM, 10s) == 0); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

  // The body the server serves now.
  std::string body() const {
    httplib::Client cli("127.0.0.1", port);
    auto res = cli.Get("/v1/connectors/service-map", {{"Authorization", "Bearer " + kApiKey}});
    REQUIRE(res);
    REQUIRE(res->status == 200);
    return res->body;
  }
};

// Records every callback of a client.
struct Recorder {
  mutable std::mutex mu;
  std::vector<std::shared_ptr<const cc::VerifiedServiceMap>> updates;
  std::vector<cc::Error> errors;

  void install(cc::ServiceMapClientOptions& o) {
    o.on_update = [this](const std::shared_ptr<const cc::VerifiedServiceMap>& m) {
      std::lock_guard lock(mu);
      updates.push_back(m);
    };
    o.on_error = [this](const cc::Error& e) {
      std::lock_guard lock(mu);
      errors.push_back(e);
    };
  }
  std::size_t count() const {
    std::lock_guard lock(mu);
    return updates.size();
  }
  std::shared_ptr<const cc::VerifiedServiceMap> first() const {
    std::lock_guard lock(mu);
    return updates.empty() ? nullptr : updates.front();
  }
  std::shared_ptr<const cc::VerifiedServiceMap> last() const {
    std::lock_guard lock(mu);
    return updates.empty() ? nullptr : updates.back();
  }
  bool saw_error(cc::ErrorCode code) const {
    std::lock_guard lock(mu);
    return std::any_of(errors.begin(), errors.end(),
                       [&](const cc::Error& e) { return e.code == code; });
  }
  std::string all_errors() const {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& e : errors) out += cc::describe(e) + "\n";
    return out;
  }
};

cc::ServiceMapClientOptions options_for(const std::string& url) {
  cc::ServiceMapClientOptions o;
  o.base_url = url;
  o.api_key = kApiKey;
  o.signing_key = kSigningKey;
  o.poll_interval = 100ms;
  o.reconnect_initial = 50ms;
  o.reconnect_max = 500ms;
  o.honor_server_retry = false;
  return o;
}

double ttl_of(const cc::VerifiedServiceMap& m) { return m.payload.find("ttlSeconds")->as_number(); }

// A test HTTP server with a replaceable service-map body and no stream (404).
struct FakeServer {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::string body;
  std::string stream;
  std::vector<std::string> last_event_ids;           // one per stream request ("" when not sent)
  std::map<std::string, std::string> stream_for_id;  // instead of `stream` for that Last-Event-ID
  std::atomic<int> hold_ms{0};                       // how long each GET waits before answering
  std::atomic<int> gets_started{0};
  std::atomic<bool> releasing{false};
  std::condition_variable cv;

  FakeServer() {
    server.Get("/v1/connectors/service-map",
               [this](const httplib::Request& req, httplib::Response& res) {
                 ++gets_started;
                 if (req.get_header_value("Authorization") != "Bearer " + kApiKey) {
                   res.status = 401;
                   return;
                 }
                 std::unique_lock lock(mu);
                 if (hold_ms.load() > 0) {
                   cv.wait_for(lock, std::chrono::milliseconds(hold_ms.load()),
                               [&] { return releasing.load(); });
                 }
                 res.set_content(body, "application/json");
               });
    // The stream: 404, or `stream` once (then the connection ends and the client reconnects).
    server.Get(
        "/v1/connectors/stream", [this](const httplib::Request& req, httplib::Response& res) {
          std::lock_guard lock(mu);
          last_event_ids.push_back(req.get_header_value("Last-Event-ID"));
          if (auto it = stream_for_id.find(last_event_ids.back()); it != stream_for_id.end()) {
            res.set_content(it->second, "text/event-stream");
            return;
          }
          if (stream.empty()) {
            res.status = 404;
            return;
          }
          res.set_content(stream, "text/event-stream");
        });
    port = server.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { server.listen_after_bind(); });
    REQUIRE(eventually_true([&] { return server.is_running(); }));
  }
  ~FakeServer() {
    releasing = true;
    cv.notify_all();
    server.stop();
    thread.join();
  }
  void serve(std::string b) {
    std::lock_guard lock(mu);
    body = std::move(b);
  }
  void serve_stream(std::string s) {
    std::lock_guard lock(mu);
    stream = std::move(s);
  }
  bool saw_last_event_id(const std::string& id) {
    std::lock_guard lock(mu);
    return std::find(last_event_ids.begin(), last_event_ids.end(), id) != last_event_ids.end();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

std::string status_event(std::string_view id, const std::string& body) {
  return "id: " + std::string(id) + "\nevent: status\ndata: {\"payload\":" + body +
         ",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n\n";
}

std::string signed_body(const cc::Json& payload) {
  auto s = cc::sign_service_map(payload, cc::as_bytes(kSigningKey));
  REQUIRE_OK(s);
  return s->body;
}

cc::Json fixture_payload(int ttl) {
  auto m = cc::parse_manifest(fixture_with(ttl));
  REQUIRE_OK(m);
  return cc::build_service_map(*m, "");
}

}  // namespace

TEST_CASE("client: start() rejects unusable options", "[client]") {
  cc::ServiceMapClientOptions o;
  o.signing_key = "";
  CHECK(cc::ServiceMapClient(o).start().error().code == cc::ErrorCode::kUsage);
  o.signing_key = "k";
  o.base_url = "ftp://example.invalid";
  CHECK(cc::ServiceMapClient(o).start().error().code == cc::ErrorCode::kUsage);
  o.base_url = "http://127.0.0.1:1";
  cc::ServiceMapClient twice(o);
  REQUIRE_OK(twice.start());
  CHECK(twice.start().error().code == cc::ErrorCode::kUsage);
  twice.stop();
  twice.stop();  // idempotent
}

TEST_CASE("client: initial fetch then 304 while unchanged", "[client]") {
  Server s(fixture_with(100));
  Recorder rec;
  auto o = options_for(s.url());
  o.use_stream = false;
  rec.install(o);
  cc::ServiceMapClient client(o);
  // A synchronous first fetch, before the thread starts.
  auto first = client.fetch_now();
  REQUIRE_OK(first);
  CHECK(*first == cc::CacheUpdate::kReplaced);
  REQUIRE(rec.count() == 1);
  CHECK(rec.last()->body() == s.body());
  CHECK(ttl_of(*rec.last()) == 100);
  CHECK(client.fresh() != nullptr);
  // Unchanged: 304s, no new version.
  auto again = client.fetch_now();
  REQUIRE_OK(again);
  CHECK(*again == cc::CacheUpdate::kUnchanged);
  CHECK(client.stats().not_modified == 1);
  REQUIRE_OK(client.start());
  CHECK(eventually_true([&] { return client.stats().not_modified >= 3; }));
  CHECK(rec.count() == 1);
  // A change is fetched (200) and delivered once.
  replace_file(s.manifest, fixture_with(90));
  REQUIRE(eventually_true([&] { return rec.count() == 2; }));
  CHECK(ttl_of(*client.current()) == 90);
  CHECK(eventually_true([&] { return client.stats().not_modified >= 5; }));
  CHECK(rec.count() == 2);
  CHECK(client.stats().rejected == 0);
}

TEST_CASE("client: every manifest change on the stream is observed once and verified", "[client]") {
  Server s(fixture_with(100));
  Recorder rec;
  auto o = options_for(s.url());
  rec.install(o);
  cc::ServiceMapClient client(o);
  REQUIRE_OK(client.start());
  REQUIRE(eventually_true([&] { return rec.count() == 1; }));
  CHECK(client.stats().streaming);
  constexpr int kEdits = 6;
  for (int i = 1; i <= kEdits; ++i) {
    replace_file(s.manifest, fixture_with(100 - i));
    REQUIRE(eventually_true([&] { return rec.count() == static_cast<std::size_t>(i + 1); }));
    CHECK(ttl_of(*rec.last()) == 100 - i);
  }
  // A same-payload rewrite publishes nothing; a fetch confirms the map is the server's.
  replace_file(s.manifest, fixture_with(100 - kEdits) + "\n");
  auto r = client.fetch_now();
  REQUIRE_OK(r);
  CHECK(*r == cc::CacheUpdate::kUnchanged);
  CHECK(client.current()->body() == s.body());
  std::lock_guard lock(rec.mu);
  REQUIRE(rec.updates.size() == kEdits + 1);
  for (std::size_t i = 0; i < rec.updates.size(); ++i) {
    const auto& m = *rec.updates[i];
    CHECK(m.version == i + 1);  // the server's versions, each exactly once
    CHECK(cc::verify_service_map(m.body(), cc::as_bytes(kSigningKey)));
  }
  CHECK(rec.errors.empty());
  CHECK(client.stats().stream_connects == 1);
  CHECK(client.stats().last_event_id == std::to_string(kEdits + 1));
}

TEST_CASE("client: survives a server restart and resumes with Last-Event-ID", "[client]") {
  Server s(fixture_with(100));
  Recorder rec;
  auto o = options_for(s.url());
  rec.install(o);
  cc::ServiceMapClient client(o);
  REQUIRE_OK(client.start());
  // Streaming, with the event's id recorded.
  REQUIRE(eventually_true([&] {
    return rec.count() == 1 && client.stats().streaming && client.stats().last_event_id == "1";
  }));

  const int port = s.port;
  s.stop();
  CHECK(eventually_true([&] { return rec.saw_error(cc::ErrorCode::kIo); }));
  s.start(port);  // same port, same manifest: version 1 again, the same payload
  REQUIRE(eventually_true([&] { return client.stats().stream_connects >= 2; }, 30s));
  REQUIRE(eventually_true([&] { return client.stats().streaming; }, 30s));
  // The same payload again is no new version (whether or not the server honoured
  // Last-Event-ID: a stream that connects before its first snapshot gets the full event).
  CHECK(rec.count() == 1);

  // The resumed stream still delivers changes.
  replace_file(s.manifest, fixture_with(80));
  REQUIRE(eventually_true([&] { return rec.count() == 2; }));
  CHECK(ttl_of(*rec.last()) == 80);
  CHECK(client.current()->body() == s.body());
  CHECK(client.stats().rejected == 0);
}

TEST_CASE("client: a restart with another payload under the same version is not missed",
          "[client]") {
  Server s(fixture_with(100));
  Recorder rec;
  auto o = options_for(s.url());
  rec.install(o);
  cc::ServiceMapClient client(o);
  REQUIRE_OK(client.start());
  REQUIRE(eventually_true([&] { return rec.count() == 1 && client.stats().streaming; }));
  const int port = s.port;
  s.stop();
  cc::test::write_file(s.manifest, fixture_with(70));  // edited while the server was down
  s.start(port);  // version 1 again, but another payload: the conditional GET catches it
  REQUIRE(eventually_true([&] { return rec.count() == 2; }, 30s));
  CHECK(ttl_of(*rec.last()) == 70);
  CHECK(client.current()->body() == s.body());
}

TEST_CASE("client: a reconnect whose GET failed does not claim its Last-Event-ID", "[client]") {
  // The GET before a reconnect is what notices a restarted server that numbers another payload
  // 1 again. When it fails (here always: a path the server does not have; in life, a server
  // still loading), the stream must not resume from the old id: the server would take the
  // client to hold its version 1 and send nothing.
  Server s(fixture_with(100));
  Recorder rec;
  auto o = options_for(s.url());
  o.service_map_path = "/v1/connectors/not-here";
  rec.install(o);
  cc::ServiceMapClient client(o);
  REQUIRE_OK(client.start());
  REQUIRE(eventually_true([&] {
    return rec.count() == 1 && client.stats().streaming && client.stats().last_event_id == "1";
  }));
  const int port = s.port;
  s.stop();
  cc::test::write_file(s.manifest, fixture_with(70));
  s.start(port);
  REQUIRE(eventually_true([&] { return rec.count() == 2; }, 30s));
  CHECK(ttl_of(*rec.last()) == 70);
  CHECK(client.current()->body() == s.body());
  CHECK(eventually_true([&] { return client.stats().last_event_id == "1"; }));
}

TEST_CASE("client: a tampered body is rejected and the last good map kept", "[client]") {
  FakeServer fake;
  const cc::Json good = fixture_payload(100);
  fake.serve(signed_body(good));
  Recorder rec;
  auto o = options_for(fake.url());  // the stream answers 404: the client falls back to polling
  rec.install(o);
  cc::ServiceMapClient client(o);
  REQUIRE_OK(client.start());
  REQUIRE(eventually_true([&] { return rec.count() == 1; }));
  CHECK(rec.saw_error(cc::ErrorCode::kIo));  // the stream's 404

  // The same signature over another payload.
  auto doc = *cc::parse_json(signed_body(good));
  doc.find("payload")->set("ttlSeconds", 5);
  fake.serve(*cc::canonical_json(doc));
  REQUIRE(eventually_true([&] { return rec.saw_error(cc::ErrorCode::kSignature); }));
  CHECK(rec.count() == 1);
  CHECK(ttl_of(*client.current()) == 100);
  CHECK(client.stats().rejected >= 1);
  // Signed with another key, and not JSON at all: rejected too.
  auto other = cc::sign_service_map(fixture_payload(50), cc::as_bytes("another-key"));
  fake.serve(other->body);
  const auto rejected = client.stats().rejected;
  REQUIRE(eventually_true([&] { return client.stats().rejected > rejected; }));
  fake.serve("<html>oops</html>");
  REQUIRE(eventually_true([&] { return rec.saw_error(cc::ErrorCode::kParse); }));
  CHECK(ttl_of(*client.current()) == 100);
  CHECK(rec.count() == 1);
  // A good new version is taken again.
  fake.serve(signed_body(fixture_payload(60)));
  REQUIRE(eventually_true([&] { return rec.count() == 2; }));
  CHECK(ttl_of(*client.current()) == 60);
  // Nothing secret in any error.
  const std::string errors = rec.all_errors();
  CHECK(errors.find(kSigningKey) == std::string::npos);
  CHECK(errors.find(kApiKey) == std::string::npos);
  CHECK(errors.find(doc.find("signature")->as_string()) == std::string::npos);
}

TEST_CASE("client: stream events resume with Last-Event-ID and tampered events are rejected",
          "[client]") {
  FakeServer fake;
  const std::string good = signed_body(fixture_payload(100));
  fake.serve(good);
  fake.serve_stream("retry: 10\n\n" + status_event("5", good));
  Recorder rec;
  auto o = options_for(fake.url());
  rec.install(o);
  cc::ServiceMapClient client(o);
  REQUIRE_OK(client.start());
  REQUIRE(eventually_true([&] { return rec.count() == 1; }));
  CHECK(rec.last()->version == 5);
  // The stream ends after each event; every reconnect resumes from the last verified id.
  REQUIRE(eventually_true([&] { return fake.saw_last_event_id("5"); }));

  auto doc = *cc::parse_json(good);
  doc.find("payload")->set("ttlSeconds", 7);
  fake.serve_stream(status_event("6", *cc::canonical_json(doc)));
  REQUIRE(eventually_true([&] { return rec.saw_error(cc::ErrorCode::kSignature); }));
  CHECK(rec.count() == 1);
  CHECK(ttl_of(*client.current()) == 100);
  CHECK(client.stats().last_event_id == "5");
  CHECK_FALSE(fake.saw_last_event_id("6"));
  // A signed event with a malformed body is rejected the same way.
  fake.serve_stream("event: status\nid: 7\ndata: {\"payload\":{\"signature\":\"x\"}}\n\n");
  REQUIRE(eventually_true([&] { return rec.saw_error(cc::ErrorCode::kInvalid); }));
  CHECK(ttl_of(*client.current()) == 100);
}

TEST_CASE("client: a delta-mode stream resumed with Last-Event-ID applies the delta from it",
          "[client]") {
  FakeServer fake;
  const cc::Json v5 = fixture_payload(100);
  const cc::Json v6 = fixture_payload(60);
  const std::string body5 = signed_body(v5);
  fake.serve(body5);  // the GET before each reconnect: unchanged, so the id stays usable
  fake.serve_stream(status_event("5", body5));
  auto signed6 = cc::sign_service_map(v6, cc::as_bytes(kSigningKey));
  REQUIRE_OK(signed6);
  {
    // Resuming from 5: the delta to 6. Resuming from 6: nothing new (a heartbeat).
    auto delta = cc::sse_delta_event(*cc::canonical_json(v5), 5, signed6->canonical_payload(), 6,
                                     signed6->signature, "");
    REQUIRE_OK(delta);
    std::lock_guard lock(fake.mu);
    fake.stream_for_id["5"] = *delta;
    fake.stream_for_id["6"] = ": heartbeat\n\n";
  }
  Recorder rec;
  auto o = options_for(fake.url());
  o.delta = true;
  rec.install(o);
  // Once 6 is applied, the GET serves it too (before the client's next reconnect).
  o.on_update = [&, record = o.on_update](const std::shared_ptr<const cc::VerifiedServiceMap>& m) {
    if (m->version == 6) fake.serve(signed6->body);
    record(m);
  };
  cc::ServiceMapClient client(o);
  REQUIRE_OK(client.start());
  REQUIRE(eventually_true([&] { return rec.count() == 2; }));
  CHECK(rec.first()->version == 5);
  CHECK(rec.last()->version == 6);
  CHECK(ttl_of(*rec.last()) == 60);
  CHECK(rec.last()->body() == signed6->body);
  REQUIRE(eventually_true([&] { return fake.saw_last_event_id("6"); }));
  CHECK(client.stats().deltas == 1);
  CHECK(client.stats().rejected == 0);
  CHECK(rec.all_errors().find("delta") == std::string::npos);
}

TEST_CASE("client: delta mode equals full mode over a random edit series", "[client]") {
  Server s(fixture_with(100));
  Recorder full_rec;
  Recorder delta_rec;
  auto full_o = options_for(s.url());
  full_rec.install(full_o);
  auto delta_o = options_for(s.url());
  delta_o.delta = true;
  delta_rec.install(delta_o);
  cc::ServiceMapClient full(full_o);
  cc::ServiceMapClient delta(delta_o);
  REQUIRE_OK(full.start());
  REQUIRE_OK(delta.start());
  REQUIRE(eventually_true([&] { return full_rec.count() == 1 && delta_rec.count() == 1; }));

  auto manifest = cc::parse_json(fixture_with(100));
  REQUIRE_OK(manifest);
  const cc::Json prototype = manifest->find("connectors")->as_array().front();
  std::mt19937 rng(20260101);
  int added = 0;
  std::string served = s.body();
  constexpr int kEdits = 12;
  for (int i = 0; i < kEdits; ++i) {
    auto& connectors = manifest->find("connectors")->as_array();
    const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    switch (rng() % 4) {
      case 0:                                 // a top-level field
        manifest->set("ttlSeconds", 60 + i);  // a new value each time
        break;
      case 1:  // replace a connector
        connectors[pick(connectors.size())].set("version", "v" + std::to_string(i));
        break;
      case 2:  // remove one (keeping at least one)
        if (connectors.size() > 1) {
          connectors.erase(connectors.begin() +
                           static_cast<std::ptrdiff_t>(pick(connectors.size())));
          break;
        }
        [[fallthrough]];
      default: {  // add one
        cc::Json c = prototype;
        c.set("id", "added-" + std::to_string(++added));
        connectors.push_back(std::move(c));
      }
    }
    replace_file(s.manifest, *cc::canonical_json(*manifest));
    CAPTURE(i);
    // Wait for the server to publish it, then for both clients to hold exactly that.
    const std::string previous = served;
    REQUIRE(eventually_true([&] { return (served = s.body()) != previous; }));
    REQUIRE(eventually_true([&] {
      auto f = full.current();
      auto d = delta.current();
      return f && d && f->body() == served && d->body() == served;
    }));
  }
  CHECK(full_rec.count() == delta_rec.count());
  CHECK(delta.stats().deltas >= 1);
  CHECK(delta.stats().rejected == 0);
  CHECK(full.stats().deltas == 0);
  std::lock_guard a(full_rec.mu);
  std::lock_guard b(delta_rec.mu);
  for (std::size_t i = 0; i < full_rec.updates.size(); ++i) {
    CHECK(full_rec.updates[i]->body() == delta_rec.updates[i]->body());
    CHECK(full_rec.updates[i]->version == delta_rec.updates[i]->version);
  }
}

TEST_CASE("client: stop() is prompt on an idle stream in backoff and during a request",
          "[client]") {
  const auto timed_stop = [](cc::ServiceMapClient& c) {
    const auto t0 = std::chrono::steady_clock::now();
    c.stop();
    return std::chrono::steady_clock::now() - t0;
  };
  {
    Server s(fixture_with(100));  // heartbeats every 15 s: the stream is idle
    auto o = options_for(s.url());
    cc::ServiceMapClient client(o);
    REQUIRE_OK(client.start());
    REQUIRE(eventually_true([&] { return client.stats().streaming && client.current(); }));
    CHECK(timed_stop(client) < 5s);
  }
  {
    auto o = options_for("http://127.0.0.1:1");  // refused: the client sits in backoff
    o.reconnect_initial = 60s;
    o.reconnect_max = 60s;
    o.poll_interval = 60s;
    Recorder rec;
    rec.install(o);
    cc::ServiceMapClient client(o);
    REQUIRE_OK(client.start());
    REQUIRE(eventually_true([&] { return rec.saw_error(cc::ErrorCode::kIo); }));
    CHECK(timed_stop(client) < 5s);
  }
  {
    FakeServer fake;
    fake.serve(signed_body(fixture_payload(100)));
    fake.hold_ms = 30000;  // the GET hangs until released
    auto o = options_for(fake.url());
    o.use_stream = false;
    o.read_timeout = 60s;
    cc::ServiceMapClient client(o);
    REQUIRE_OK(client.start());
    REQUIRE(eventually_true([&] { return fake.gets_started.load() >= 1; }));
    CHECK(timed_stop(client) < 5s);
  }
}

TEST_CASE("client: pinned Ed25519 keys verify bodies and deltas without the HMAC key", "[client]") {
  cc::test::TempDir keys;
  const auto key_file = (keys / "signing.key").string();
  REQUIRE(cc::test::run_cli({"keygen", key_file}).exit_code == 0);
  Server s(fixture_with(100), {"CONNECTORS_SIGNING_KEY_FILE=" + key_file});
  httplib::Client cli("127.0.0.1", s.port);
  auto doc = cli.Get("/v1/connectors/keys");
  REQUIRE(doc);
  REQUIRE(doc->status == 200);
  auto pinned = cc::parse_keys_document(doc->body);
  REQUIRE_OK(pinned);

  Recorder rec;
  auto o = options_for(s.url());
  o.signing_key.clear();
  o.public_keys = *pinned;
  o.delta = true;
  rec.install(o);
  // The stats a callback sees already count the event that delivers its version.
  std::atomic<cc::ServiceMapClient*> self{nullptr};
  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;  // (events, deltas) per update
  o.on_update = [&, record = o.on_update](const std::shared_ptr<const cc::VerifiedServiceMap>& m) {
    const auto st = self.load()->stats();
    {
      std::lock_guard lock(rec.mu);
      seen.emplace_back(st.events, st.deltas);
    }
    record(m);
  };
  cc::ServiceMapClient client(o);
  self = &client;
  REQUIRE_OK(client.start());
  REQUIRE(eventually_true([&] { return rec.count() == 1; }));
  for (int i = 1; i <= 3; ++i) {
    replace_file(s.manifest, fixture_with(100 - i));
    REQUIRE(eventually_true([&] { return rec.count() == static_cast<std::size_t>(i + 1); }));
    CHECK(ttl_of(*rec.last()) == 100 - i);
  }
  CHECK(client.stats().deltas == 3);
  {
    std::lock_guard lock(rec.mu);
    const std::vector<std::pair<std::uint64_t, std::uint64_t>> counted = {
        {1, 0}, {2, 1}, {3, 2}, {4, 3}};
    CHECK(seen == counted);
  }
  CHECK(rec.last()->kid == pinned->front().kid);
  CHECK(rec.last()->body() == s.body());
  CHECK(rec.all_errors().empty());

  // A client pinned to another key accepts nothing.
  auto other = options_for(s.url());
  other.signing_key.clear();
  other.public_keys = {cc::Ed25519Key::generate().public_key()};
  other.use_stream = false;
  Recorder rejected;
  rejected.install(other);
  cc::ServiceMapClient wrong(other);
  auto r = wrong.fetch_now();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kSignature);
  CHECK(r.error().message.find(pinned->front().kid) != std::string::npos);
  CHECK(rejected.count() == 0);
}
