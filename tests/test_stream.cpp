// GET /v1/connectors/stream on the real server: real sockets, real manifest edits.
#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/sqlite_history.h"
#include "cortex_connectors/sse.h"
#include "server_process.h"
#include "sse_client.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::Event;
using cc::test::original_fixture;
using cc::test::original_fixture_with_ttl;
using cc::test::replace_file;
using cc::test::ServerProcess;
using cc::test::SseClient;
using namespace std::chrono_literals;

namespace {

const std::string kSigningKey = "stream-test-signing-key";
const std::string kApiKey = "stream-test-api-key";

struct StreamServer {
  cc::test::TempDir dir;
  std::filesystem::path manifest = dir / "connectors.manifest.json";
  std::unique_ptr<ServerProcess> server;

  explicit StreamServer(std::vector<std::string> extra_env = {},
                        std::vector<std::string> args = {}) {
    cc::test::write_file(manifest, original_fixture());
    std::vector<std::string> env = {"CONNECTORS_SIGNATURE_KEY=" + kSigningKey,
                                    "CONNECTORS_API_KEY=" + kApiKey,
                                    "CONNECTORS_MANIFEST_PATH=" + manifest.string(),
                                    "CONNECTORS_POLL_INTERVAL_MS=50", "LOG_LEVEL=warning"};
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    args.insert(args.begin(), {"--port", "0"});
    server = std::make_unique<ServerProcess>(args, env);
    REQUIRE(server->port() > 0);
  }
  int port() const { return server->port(); }
};

const std::vector<std::string> kAuth = {"Authorization: Bearer " + kApiKey};

cc::Json health(int port) {
  httplib::Client http("127.0.0.1", port);
  auto r = http.Get("/health");
  REQUIRE(r);
  auto j = cc::parse_json(r->body);
  REQUIRE_OK(j);
  return *j;
}

// The signed body inside a status event.
std::string body_of(const Event& e) {
  auto data = cc::parse_json(e.data);
  REQUIRE_OK(data);
  CHECK(data->find("timestamp")->is_string());
  return *cc::canonical_json(*data->find("payload"));
}

}  // namespace

TEST_CASE("stream: auth, headers, first status event and heartbeats only while unchanged",
          "[stream]") {
  StreamServer s({}, {"--heartbeat-seconds", "1"});
  {
    SseClient anon(s.port(), "/v1/connectors/stream", {});
    CHECK(anon.head().rfind("HTTP/1.1 401", 0) == 0);
    SseClient wrong(s.port(), "/v1/connectors/stream", {"Authorization: Bearer nope"});
    CHECK(wrong.head().rfind("HTTP/1.1 403", 0) == 0);
  }
  SseClient c(s.port(), "/v1/connectors/stream", kAuth);
  const std::string head = c.head();
  CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(head.find("Content-Type: text/event-stream\r\n") != std::string::npos);
  CHECK(head.find("Cache-Control: no-cache\r\n") != std::string::npos);
  CHECK(head.find("X-Accel-Buffering: no\r\n") != std::string::npos);
  CHECK(head.find("X-Request-Id: ") != std::string::npos);
  auto retry = c.next();
  REQUIRE(retry);
  CHECK(retry->event == "retry");
  CHECK(retry->data == "3000");
  auto first = c.next_event(10s);
  REQUIRE(first);
  CHECK(first->event == "status");
  CHECK(first->id == "1");
  CHECK(cc::verify_signed_body(body_of(*first), cc::as_bytes(kSigningKey)));
  // Unchanged manifest: heartbeats only, never the same payload again.
  int heartbeats = 0;
  const auto until = std::chrono::steady_clock::now() + 2500ms;
  while (std::chrono::steady_clock::now() < until) {
    auto e = c.next(100ms);
    if (!e) continue;
    CHECK(e->comment);
    if (e->comment) CHECK(e->data == " heartbeat");
    ++heartbeats;
  }
  CHECK(heartbeats >= 2);
}

TEST_CASE("stream: one status event per change, none for a same-payload rewrite", "[stream]") {
  StreamServer s;
  SseClient c(s.port(), "/v1/connectors/stream", kAuth);
  REQUIRE(c.head().rfind("HTTP/1.1 200", 0) == 0);
  auto first = c.next_event(10s);
  REQUIRE(first);
  CHECK(first->id == "1");
  replace_file(s.manifest, original_fixture() + "\n ");  // same payload
  replace_file(s.manifest, original_fixture_with_ttl(100));
  auto second = c.next_event(10s);
  REQUIRE(second);
  CHECK(second->id == "2");
  CHECK(second->event == "status");
  auto payload = cc::verify_signed_body(body_of(*second), cc::as_bytes(kSigningKey));
  REQUIRE_OK(payload);
  CHECK(payload->find("ttlSeconds")->as_number() == 100);
  CHECK_FALSE(c.next_event(700ms));  // nothing more
}

TEST_CASE("stream: Last-Event-ID of the current version resends nothing", "[stream]") {
  StreamServer s;
  {
    SseClient first(s.port(), "/v1/connectors/stream", kAuth);
    REQUIRE(first.head().rfind("HTTP/1.1 200", 0) == 0);
    REQUIRE(first.next_event(10s));
  }
  SseClient resumed(s.port(), "/v1/connectors/stream", {kAuth[0], "Last-Event-ID: 1"});
  REQUIRE(resumed.head().rfind("HTTP/1.1 200", 0) == 0);
  CHECK_FALSE(resumed.next_event(700ms));
  replace_file(s.manifest, original_fixture_with_ttl(90));
  auto e = resumed.next_event(10s);
  REQUIRE(e);
  CHECK(e->id == "2");
  // An unknown or stale id gets the full current status.
  SseClient stale(s.port(), "/v1/connectors/stream", {kAuth[0], "Last-Event-ID: 1"});
  REQUIRE(stale.head().rfind("HTTP/1.1 200", 0) == 0);
  auto full = stale.next_event(10s);
  REQUIRE(full);
  CHECK(full->id == "2");
  SseClient junk(s.port(), "/v1/connectors/stream", {kAuth[0], "Last-Event-ID: 2x"});
  REQUIRE(junk.head().rfind("HTTP/1.1 200", 0) == 0);
  CHECK(junk.next_event(10s)->id == "2");
}

TEST_CASE("stream: a Last-Event-ID sent before the first snapshot gets the full status event",
          "[stream]") {
  // Before this process has published anything, an id can only come from an earlier one, whose
  // version 1 may be other content (a new state directory): it names nothing here.
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";  // absent at start
  ServerProcess server({"--port", "0"},
                       {"CONNECTORS_SIGNATURE_KEY=" + kSigningKey, "CONNECTORS_API_KEY=" + kApiKey,
                        "CONNECTORS_MANIFEST_PATH=" + manifest.string(),
                        "CONNECTORS_POLL_INTERVAL_MS=50", "LOG_LEVEL=warning"});
  REQUIRE(server.port() > 0);
  SseClient plain(server.port(), "/v1/connectors/stream", {kAuth[0], "Last-Event-ID: 1"});
  REQUIRE(plain.head().rfind("HTTP/1.1 200", 0) == 0);
  SseClient delta(server.port(), "/v1/connectors/stream?mode=delta",
                  {kAuth[0], "Last-Event-ID: 1"});
  REQUIRE(delta.head().rfind("HTTP/1.1 200", 0) == 0);
  CHECK_FALSE(plain.next_event(300ms));
  cc::test::write_file(manifest, original_fixture());
  for (SseClient* c : {&plain, &delta}) {
    auto e = c->next_event(10s);
    REQUIRE(e);
    CHECK(e->id == "1");
    CHECK(e->event == "status");
    CHECK(cc::verify_signed_body(body_of(*e), cc::as_bytes(kSigningKey)));
  }
}

TEST_CASE("stream: delta mode rebuilds every payload byte for byte", "[stream]") {
  StreamServer s;
  SseClient c(s.port(), "/v1/connectors/stream?mode=delta", kAuth);
  REQUIRE(c.head().rfind("HTTP/1.1 200", 0) == 0);
  auto first = c.next_event(10s);
  REQUIRE(first);
  REQUIRE(first->event == "status");
  auto body = cc::parse_json(body_of(*first));
  REQUIRE_OK(body);
  cc::Json payload = *body->find("payload");
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> ttl(1, 119);
  int last_ttl = 600;
  for (int round = 0; round < 15; ++round) {
    int t = ttl(rng);
    if (t == last_ttl) t = t % 119 + 1;
    last_ttl = t;
    std::string text = original_fixture_with_ttl(t);
    if (round % 3 == 1) {
      text.replace(text.find("\"Beta Connector\""), 16, "\"Beta " + std::to_string(round) + "\"");
    }
    replace_file(s.manifest, text);
    auto e = c.next_event(10s);
    REQUIRE(e);
    std::string signature;
    if (e->event == "delta") {
      auto delta = cc::parse_json(e->data);
      REQUIRE_OK(delta);
      auto rebuilt = cc::apply_delta(payload, *delta);
      REQUIRE_OK(rebuilt);
      payload = std::move(*rebuilt);
      signature = delta->find("signature")->as_string();
    } else {
      // Conflated (changes came faster than the stream): a full event resets the base.
      REQUIRE(e->event == "status");
      auto full = cc::parse_json(body_of(*e));
      payload = *full->find("payload");
      signature = full->find("signature")->as_string();
    }
    CHECK(
        cc::verify_hmac_sha256(cc::as_bytes(kSigningKey), *cc::canonical_json(payload), signature));
    CHECK(payload.find("ttlSeconds")->as_number() == std::min(t, 120));
  }
}

namespace {

long rss_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

TEST_CASE("stream: a subscriber that stops reading stalls nobody", "[stream]") {
  // ASan keeps freed memory in a quarantine (256 MB by default), which would read as growth.
  // History in memory, one entry: what is measured is the SSE side.
  StreamServer s({"CONNECTORS_MAX_SUBSCRIBERS=50", "CONNECTORS_HISTORY=off",
                  "CONNECTORS_HISTORY_MAX_ENTRIES=1",
                  "ASAN_OPTIONS=quarantine_size_mb=1:detect_leaks=1:abort_on_error=1"});
  // ~500 KB events: far more than socket buffers hold.
  std::string blobs;
  for (int i = 0; i < 10; ++i) {
    blobs += ", \"blob" + std::to_string(i) + "\": \"" + std::string(50000, 'x') + "\"";
  }
  std::string big = original_fixture();
  const std::string owner = "\"metadata\": {\"owner\": \"integrations\"";
  big.replace(big.find(owner), owner.size(), owner + blobs);
  replace_file(s.manifest, big);
  SseClient stuck(s.port(), "/v1/connectors/stream", kAuth, /*rcvbuf=*/4096);  // never reads
  SseClient live(s.port(), "/v1/connectors/stream", kAuth);
  REQUIRE(live.head().rfind("HTTP/1.1 200", 0) == 0);
  auto wait_for_ttl = [&](int ttl) {
    for (;;) {
      auto e = live.next_event(10s);
      REQUIRE(e);
      auto payload = cc::verify_signed_body(body_of(*e), cc::as_bytes(kSigningKey));
      REQUIRE_OK(payload);
      if (payload->find("ttlSeconds")->as_number() == ttl) return;
    }
  };
  auto edit = [&](int ttl) {
    std::string text = big;
    text.replace(text.find("\"ttlSeconds\": 600"), 17, "\"ttlSeconds\": " + std::to_string(ttl));
    replace_file(s.manifest, text);
    wait_for_ttl(ttl);  // the live subscriber sees every version before the next edit
  };
  // The history recorder (nice 10) may lag behind on a loaded machine, holding the snapshots
  // it has still to record: measure with its queue empty, so that only the SSE side counts.
  auto rss_settled = [&] {
    REQUIRE(cc::test::eventually_true([&] {
      const cc::Json h = health(s.port());
      const cc::Json* history = h.find("history");
      return history != nullptr && history->find("pending")->as_number() == 0;
    }));
    return rss_kb(s.server->pid());
  };
  for (int i = 1; i <= 5; ++i) edit(i);
  const long before = rss_settled();
  for (int i = 6; i <= 45; ++i) edit(i);
  const long after = rss_settled();
  // 40 more events of ~500 KB each were published while one subscriber read nothing: queued,
  // they would add ~20 MB. Conflation keeps at most the event being written.
  INFO("RSS before " << before << " kB, after " << after << " kB");
  CHECK(before > 0);
  CHECK(after - before < 10 * 1024);
}

TEST_CASE("stream: the subscriber cap answers 503", "[stream]") {
  StreamServer s({"CONNECTORS_MAX_SUBSCRIBERS=2"});
  SseClient a(s.port(), "/v1/connectors/stream", kAuth);
  SseClient b(s.port(), "/v1/connectors/stream", kAuth);
  REQUIRE(a.head().rfind("HTTP/1.1 200", 0) == 0);
  REQUIRE(b.head().rfind("HTTP/1.1 200", 0) == 0);
  SseClient c(s.port(), "/v1/connectors/stream", kAuth);
  const std::string head = c.head();
  CHECK(head.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(head.find("Retry-After: 5") != std::string::npos);
  // A place frees when a subscriber leaves.
  a.close();
  bool admitted = false;
  for (int i = 0; i < 100 && !admitted; ++i) {
    SseClient d(s.port(), "/v1/connectors/stream", kAuth);
    admitted = d.head().rfind("HTTP/1.1 200", 0) == 0;
    if (!admitted) std::this_thread::sleep_for(20ms);
  }
  CHECK(admitted);
}

TEST_CASE("stream: SIGTERM ends every stream and exits 0 promptly", "[stream]") {
  StreamServer s;
  std::vector<std::unique_ptr<SseClient>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<SseClient>(s.port(), "/v1/connectors/stream", kAuth));
    REQUIRE(clients.back()->head().rfind("HTTP/1.1 200", 0) == 0);
  }
  std::chrono::milliseconds took{};
  CHECK(s.server->stop(SIGTERM, 5s, &took) == 0);
  CHECK(took < 1500ms);
  for (auto& c : clients) {
    while (c->next(2s)) {
    }
    CHECK(c->eof());
  }
}

TEST_CASE("stream: an EventSource-style client that reconnects sees the newest version",
          "[stream]") {
  StreamServer s;
  std::string last_id;
  {
    SseClient c(s.port(), "/v1/connectors/stream", kAuth);
    REQUIRE(c.head().rfind("HTTP/1.1 200", 0) == 0);
    last_id = c.next_event(10s)->id;
  }
  // Changes while disconnected.
  replace_file(s.manifest, original_fixture_with_ttl(50));
  REQUIRE(cc::test::run_program({"/bin/sh", "-c", "true"}).exit_code == 0);
  for (int ttl : {40, 30}) {
    std::this_thread::sleep_for(200ms);
    replace_file(s.manifest, original_fixture_with_ttl(ttl));
  }
  // Reconnects with Last-Event-ID until it holds the payload with ttl 30.
  bool seen = false;
  for (int attempt = 0; attempt < 50 && !seen; ++attempt) {
    SseClient c(s.port(), "/v1/connectors/stream", {kAuth[0], "Last-Event-ID: " + last_id});
    REQUIRE(c.head().rfind("HTTP/1.1 200", 0) == 0);
    while (auto e = c.next_event(300ms)) {
      last_id = e->id;
      auto payload = cc::verify_signed_body(body_of(*e), cc::as_bytes(kSigningKey));
      REQUIRE_OK(payload);
      seen = seen || payload->find("ttlSeconds")->as_number() == 30;
    }
  }
  CHECK(seen);
  CHECK(std::stoi(last_id) >= 2);
}

TEST_CASE("stream: the broadcast metric counts one observation per published version", "[stream]") {
  StreamServer s({"ENABLE_PROMETHEUS=true"});
  std::vector<std::unique_ptr<SseClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<SseClient>(s.port(), "/v1/connectors/stream", kAuth));
    REQUIRE(clients.back()->head().rfind("HTTP/1.1 200", 0) == 0);
    REQUIRE(clients.back()->next_event(10s));
  }
  CHECK(s.server->log().find("\"max_subscribers\":") != std::string::npos);
  httplib::Client http("127.0.0.1", s.port());
  auto observations = [&] {
    auto r = http.Get("/metrics", {{"Authorization", "Bearer " + kApiKey}});
    REQUIRE(r);
    const std::string key = "cortex_connectors_sse_broadcast_duration_seconds_count ";
    const auto at = r->body.find(key);
    REQUIRE(at != std::string::npos);
    CHECK(r->body.find("cortex_connectors_sse_subscribers 3\n") != std::string::npos);
    return std::stol(r->body.substr(at + key.size()));
  };
  // Version 1 may or may not have been published after the subscribers connected, and a
  // broadcast is recorded just after its last send, so a client can see the event first: let
  // the count settle before and after.
  auto settled = [&] {
    long last = observations();
    for (;;) {
      std::this_thread::sleep_for(200ms);
      const long now = observations();
      if (now == last) return now;
      last = now;
    }
  };
  const long before = settled();
  for (int ttl : {50, 40}) {
    replace_file(s.manifest, original_fixture_with_ttl(ttl));
    for (auto& c : clients) REQUIRE(c->next_event(10s));
  }
  // Two versions reached three subscribers: two observations, not six.
  CHECK(settled() == before + 2);
}

namespace {

// A server on `state_dir` serving `manifest`, heartbeats every second.
std::unique_ptr<ServerProcess> history_server(const std::filesystem::path& manifest,
                                              const std::filesystem::path& state_dir) {
  auto p = std::make_unique<ServerProcess>(
      std::vector<std::string>{"--port", "0", "--heartbeat-seconds", "1"},
      std::vector<std::string>{"CONNECTORS_SIGNATURE_KEY=" + kSigningKey,
                               "CONNECTORS_API_KEY=" + kApiKey,
                               "CONNECTORS_MANIFEST_PATH=" + manifest.string(),
                               "CONNECTORS_STATE_DIR=" + state_dir.string(),
                               "CONNECTORS_POLL_INTERVAL_MS=50", "LOG_LEVEL=info"});
  REQUIRE(p->port() > 0);
  return p;
}

// Waits until the server's snapshot version differs from `not_version`; returns it.
std::uint64_t wait_version_change(int port, std::uint64_t not_version) {
  std::uint64_t v = 0;
  REQUIRE(cc::test::eventually_true([&] {
    const cc::Json h = health(port);
    const cc::Json* version = h.find("version");
    v = version ? static_cast<std::uint64_t>(version->as_number()) : 0;
    return v != 0 && v != not_version;
  }));
  return v;
}

// The first thing after the retry field of a delta-mode stream resumed from `last_id`.
Event resume(int port, const std::string& last_id) {
  SseClient c(port, "/v1/connectors/stream?mode=delta", {kAuth[0], "Last-Event-ID: " + last_id});
  REQUIRE(c.head().rfind("HTTP/1.1 200", 0) == 0);
  auto retry = c.next();
  REQUIRE(retry);
  REQUIRE(retry->event == "retry");
  auto e = c.next(5s);
  REQUIRE(e);
  return *e;
}

cc::Json payload_of_status(const Event& e) {
  REQUIRE(e.event == "status");
  return *cc::parse_json(body_of(e))->find("payload");
}

// Applies a delta event to `base` and checks the signature of the result.
cc::Json apply_checked(const cc::Json& base, const Event& e) {
  REQUIRE(e.event == "delta");
  auto delta = cc::parse_json(e.data);
  REQUIRE_OK(delta);
  auto rebuilt = cc::apply_delta(base, *delta);
  REQUIRE_OK(rebuilt);
  CHECK(cc::verify_hmac_sha256(cc::as_bytes(kSigningKey), *cc::canonical_json(*rebuilt),
                               delta->find("signature")->as_string()));
  return *rebuilt;
}

}  // namespace

TEST_CASE("stream: a Last-Event-ID from before a restart resumes with the delta from it",
          "[stream][history]") {
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  const auto state = dir / "state";
  cc::test::write_file(manifest, original_fixture());
  cc::Json p1;
  cc::Json p2;
  {
    auto server = history_server(manifest, state);
    SseClient c(server->port(), "/v1/connectors/stream?mode=delta", kAuth);
    REQUIRE(c.head().rfind("HTTP/1.1 200", 0) == 0);
    auto first = c.next_event(10s);
    REQUIRE(first);
    CHECK(first->id == "1");
    p1 = payload_of_status(*first);
    replace_file(manifest, original_fixture_with_ttl(50));
    auto second = c.next_event(10s);
    REQUIRE(second);
    CHECK(second->id == "2");
    p2 = apply_checked(p1, *second);
    REQUIRE(server->stop(SIGTERM, 5s) == 0);
  }
  auto server = history_server(manifest, state);
  REQUIRE(wait_version_change(server->port(), 0) == 2);  // same manifest: resumed, not renumbered
  // Current: nothing but heartbeats.
  const Event current = resume(server->port(), "2");
  CHECK(current.comment);
  // Older and retained: exactly the delta from it.
  const Event from1 = resume(server->port(), "1");
  CHECK(from1.id == "2");
  CHECK(*cc::canonical_json(apply_checked(p1, from1)) == *cc::canonical_json(p2));
  // Unknown (never handed out, or beyond the current version): the full status event.
  CHECK(payload_of_status(resume(server->port(), "77")) == p2);
  CHECK(payload_of_status(resume(server->port(), "99999")) == p2);
  // A change after the restart numbers after the first process's reservation.
  replace_file(manifest, original_fixture_with_ttl(40));
  const std::uint64_t v3 = wait_version_change(server->port(), 2);
  CHECK(v3 > 1024);
  const Event from1_again = resume(server->port(), "1");
  CHECK(from1_again.id == std::to_string(v3));
  CHECK(apply_checked(p1, from1_again).find("ttlSeconds")->as_number() == 40);
  const Event from2 = resume(server->port(), "2");
  CHECK(apply_checked(p2, from2).find("ttlSeconds")->as_number() == 40);
  CHECK(health(server->port()).find("history")->find("store")->as_string() == "sqlite");
}

TEST_CASE("history: kill -9 while publishing never corrupts the store or reuses a version",
          "[stream][history]") {
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  const auto state = dir / "state";
  cc::test::write_file(manifest, original_fixture());
  std::uint64_t highest_seen = 0;
  int ttl = 100;
  std::mt19937 rng(9);
  for (int round = 0; round < 3; ++round) {
    auto server = history_server(manifest, state);
    std::uint64_t v = wait_version_change(server->port(), 0);
    CHECK(v >= highest_seen);  // equal only when the newest was resumed
    // Rewrites as fast as the watcher takes them, then SIGKILL in the middle of the stream.
    for (int i = 0; i < 8; ++i) {
      replace_file(manifest, original_fixture_with_ttl(--ttl));
      v = wait_version_change(server->port(), v);
      CHECK(v > highest_seen);
      highest_seen = std::max(highest_seen, v);
    }
    // The kill lands before, during or after that reload's recording.
    replace_file(manifest, original_fixture_with_ttl(--ttl));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
    ::kill(server->pid(), SIGKILL);
    server->wait_exit(5s);
  }
  // Every recorded entry is whole and verifies; the versions only grow.
  auto store = cc::SqliteHistoryStore::open((state / cc::kHistoryDatabaseName).string(), true);
  REQUIRE_OK(store);
  auto list = (*store)->list();
  REQUIRE_OK(list);
  CHECK(list->size() >= 20);
  std::uint64_t previous = 0;
  for (const auto& info : *list) {
    CHECK(info.version > previous);
    previous = info.version;
    auto e = (*store)->load(info.version);
    REQUIRE_OK(e);
    CHECK(cc::verify_hmac_sha256(cc::as_bytes(kSigningKey), e->payload, e->signature));
    CHECK(cc::parse_json(e->manifest).has_value());
  }
}

TEST_CASE("history: a corrupt or unwritable store degrades to memory, never a refused start",
          "[stream][history]") {
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  cc::test::write_file(manifest, original_fixture());
  SECTION("a corrupt database file") {
    std::filesystem::create_directories(dir / "state");
    cc::test::write_file(dir / "state" / cc::kHistoryDatabaseName, std::string(10000, '\x5a'));
    auto server = history_server(manifest, dir / "state");
    const std::uint64_t v = wait_version_change(server->port(), 0);
    // Numbered from the wall clock (ms), so no id of an earlier run can name this snapshot.
    CHECK(v > 1'600'000'000'000ULL);
    const cc::Json h = health(server->port());
    CHECK(h.find("status")->as_string() == "ok");
    CHECK(h.find("history")->find("degraded")->as_bool());
    CHECK(h.find("history")->find("store")->as_string() == "memory");
    CHECK(h.find("history")->find("reason")->as_string().find("history.sqlite3") !=
          std::string::npos);
    CHECK(server->log().find("history store unavailable") != std::string::npos);
    // The file is left for the operator to inspect.
    CHECK(cc::test::read_file(dir / "state" / cc::kHistoryDatabaseName) ==
          std::string(10000, '\x5a'));
    // Deltas still work within this process.
    replace_file(manifest, original_fixture_with_ttl(30));
    wait_version_change(server->port(), v);
    CHECK(resume(server->port(), std::to_string(v)).event == "delta");
  }
  SECTION("a database path that cannot be opened") {
    std::filesystem::create_directories(dir / "state" / cc::kHistoryDatabaseName);
    auto server = history_server(manifest, dir / "state");
    wait_version_change(server->port(), 0);
    CHECK(health(server->port()).find("history")->find("degraded")->as_bool());
    CHECK(server->log().find("history store unavailable") != std::string::npos);
  }
  SECTION("a state directory that cannot be created") {
    cc::test::write_file(dir / "not-a-dir", "x");
    auto server = history_server(manifest, dir / "not-a-dir" / "state");
    wait_version_change(server->port(), 0);
    const cc::Json h = health(server->port());
    CHECK(h.find("history")->find("degraded")->as_bool());
    CHECK(server->log().find("cannot create the state directory") != std::string::npos);
  }
}

TEST_CASE("history: the CLI lists, shows and diffs versions, and rollback republishes one",
          "[stream][history]") {
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  const auto state = dir / "state";
  cc::test::write_file(manifest, original_fixture());
  auto server = history_server(manifest, state);
  REQUIRE(wait_version_change(server->port(), 0) == 1);
  replace_file(manifest, original_fixture_with_ttl(50));
  REQUIRE(wait_version_change(server->port(), 1) == 2);
  REQUIRE(cc::test::eventually_true([&] {
    auto list = cc::test::run_cli({"history", "list", "--state-dir", state.string()});
    return list.exit_code == 0 && list.out.find("\n2\t") != std::string::npos;
  }));
  auto list = cc::test::run_cli({"history", "list", "--state-dir", state.string()});
  CHECK(list.out.rfind("1\t", 0) == 0);
  auto show = cc::test::run_cli({"history", "show", "1", "--state-dir", state.string()});
  CHECK(show.exit_code == 0);
  CHECK(show.out == original_fixture());
  auto body =
      cc::test::run_cli({"history", "show", "2", "--service-map", "--state-dir", state.string()});
  CHECK(cc::verify_signed_body(body.out, cc::as_bytes(kSigningKey)));
  auto diff = cc::test::run_cli({"history", "diff", "1", "2", "--state-dir", state.string()});
  CHECK(diff.exit_code == 0);
  // generatedAt differs too when the two loads fall in different seconds.
  CHECK(diff.out.rfind("1 -> 2\n", 0) == 0);
  CHECK(diff.out.find("field ttlSeconds: 50\n") != std::string::npos);
  CHECK(diff.out.find("\n+ ") == std::string::npos);
  CHECK(diff.out.find("\n- ") == std::string::npos);
  CHECK(diff.out.find("\n~ ") == std::string::npos);
  CHECK(cc::test::run_cli({"history", "show", "9", "--state-dir", state.string()}).exit_code == 1);
  CHECK(cc::test::run_cli({"history", "show", "x", "--state-dir", state.string()}).exit_code == 2);
  CHECK(cc::test::run_cli({"history", "list", "--state-dir", (dir / "none").string()}).exit_code ==
        2);

  // Rollback: version 1's manifest back in place, published as version 3 with 1's payload.
  auto rb = cc::test::run_cli(
      {"rollback", "1", "--manifest", manifest.string(), "--state-dir", state.string()});
  CHECK(rb.exit_code == 0);
  CHECK(cc::test::read_file(manifest) == original_fixture());
  CHECK(wait_version_change(server->port(), 2) == 3);
  httplib::Client http("127.0.0.1", server->port());
  auto r = http.Get("/v1/connectors/service-map", {{"Authorization", "Bearer " + kApiKey}});
  REQUIRE(r);
  auto v1 = cc::parse_json(
      cc::test::run_cli({"history", "show", "1", "--service-map", "--state-dir", state.string()})
          .out);
  // The same service map; only generatedAt, which the manifest leaves to the load time, is new.
  cc::Json served = *cc::parse_json(r->body)->find("payload");
  cc::Json recorded = *v1->find("payload");
  served.set("generatedAt", "");
  recorded.set("generatedAt", "");
  CHECK(served == recorded);
  // History is never rewritten: 1 and 2 are still there as they were.
  CHECK(cc::test::run_cli({"history", "show", "2", "--state-dir", state.string()}).out ==
        original_fixture_with_ttl(50));
}

namespace {

// The lines of `cortex-connectors history list` for `state` ("version\ttime\thash\tbytes\tpath"),
// none when it fails.
std::vector<std::string> history_list(const std::filesystem::path& state) {
  auto r = cc::test::run_cli({"history", "list", "--state-dir", state.string()});
  std::vector<std::string> lines;
  std::istringstream in(r.exit_code == 0 ? r.out : std::string());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Waits until the history of `state` lists `version`.
void wait_recorded(const std::filesystem::path& state, std::uint64_t version) {
  const std::string prefix = std::to_string(version) + "\t";
  REQUIRE(cc::test::eventually_true([&] {
    const auto lines = history_list(state);
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
  }));
}

const cc::Json& history_of(const cc::Json& health) {
  const cc::Json* h = health.find("history");
  REQUIRE(h != nullptr);
  return *h;
}

// Why the history of a /health body is degraded, "" when it is not.
std::string history_reason(const cc::Json& health) {
  const cc::Json* reason = history_of(health).find("reason");
  return reason != nullptr && reason->is_string() ? reason->as_string() : std::string();
}

}  // namespace

TEST_CASE(
    "history: a server with another manifest on the same state directory leaves the "
    "first's history alone",
    "[stream][history]") {
  cc::test::TempDir dir;
  const auto a = dir / "a" / "connectors.manifest.json";
  const auto b = dir / "b" / "connectors.manifest.json";
  const auto state = dir / "state";
  std::filesystem::create_directories(a.parent_path());
  std::filesystem::create_directories(b.parent_path());
  cc::test::write_file(a, original_fixture());
  cc::test::write_file(b, original_fixture_with_ttl(50));
  const std::string db = (state / cc::kHistoryDatabaseName).string();
  auto first = history_server(a, state);
  REQUIRE(wait_version_change(first->port(), 0) == 1);
  wait_recorded(state, 1);
  {
    // It serves (history never takes the service map down), with its history in memory and the
    // reason on /health and in the log.
    auto second = history_server(b, state);
    const std::uint64_t v = wait_version_change(second->port(), 0);
    CHECK(v > 1'600'000'000'000ULL);  // numbered from the wall clock: nothing durable
    const cc::Json h = health(second->port());
    CHECK(h.find("status")->as_string() == "ok");
    CHECK(history_of(h).find("degraded")->as_bool());
    CHECK(history_of(h).find("store")->as_string() == "memory");
    const std::string reason = history_reason(h);
    CHECK(reason.find(db + " belongs to the manifest " + cc::normalize_manifest_path(a) + ", not " +
                      cc::normalize_manifest_path(b)) != std::string::npos);
    CHECK(reason.find("--state-dir or CONNECTORS_STATE_DIR") != std::string::npos);
    CHECK(second->log().find("history store unavailable") != std::string::npos);
    // Its changes stay in its memory; the first keeps recording.
    replace_file(b, original_fixture_with_ttl(40));
    wait_version_change(second->port(), v);
    replace_file(a, original_fixture_with_ttl(30));
    REQUIRE(wait_version_change(first->port(), 1) == 2);
    wait_recorded(state, 2);
    CHECK_FALSE(history_of(health(first->port())).find("degraded")->as_bool());
  }
  const auto lines = history_list(state);
  REQUIRE(lines.size() == 2);
  for (const auto& line : lines) CHECK(line.ends_with("\t" + a.string()));
  REQUIRE(first->stop(SIGTERM, 5s) == 0);

  // With the first stopped, the store still belongs to its manifest.
  auto again = history_server(b, state);
  wait_version_change(again->port(), 0);
  CHECK(history_reason(health(again->port()))
            .find("belongs to the manifest " + cc::normalize_manifest_path(a)) !=
        std::string::npos);
  CHECK(history_list(state) == lines);

  // Rollback writes the manifest the history belongs to, and refuses another.
  auto refused =
      cc::test::run_cli({"rollback", "1", "--manifest", b.string(), "--state-dir", state.string()});
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find(cc::normalize_manifest_path(a)) != std::string::npos);
  CHECK(cc::test::read_file(b) == original_fixture_with_ttl(40));
  auto rolled = cc::test::run_cli({"rollback", "1", "--state-dir", state.string()}, {},
                                  {"CONNECTORS_MANIFEST_PATH="});
  CHECK(rolled.exit_code == 0);
  CHECK(cc::test::read_file(a) == original_fixture());
}

TEST_CASE(
    "history: a second server on a store in use is told so, and once the first stops a "
    "server takes the store again",
    "[stream][history]") {
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  const auto state = dir / "state";
  cc::test::write_file(manifest, original_fixture());
  auto first = history_server(manifest, state);
  REQUIRE(wait_version_change(first->port(), 0) == 1);
  wait_recorded(state, 1);
  auto second = history_server(manifest, state);
  const std::uint64_t second_v1 = wait_version_change(second->port(), 0);
  CHECK(second_v1 > 1'600'000'000'000ULL);
  const cc::Json h = health(second->port());
  CHECK(history_of(h).find("degraded")->as_bool());
  const std::string reason = history_reason(h);
  CHECK(reason.find((state / cc::kHistoryDatabaseName).string() +
                    " is in use by another process (pid " + std::to_string(first->pid()) + ")") !=
        std::string::npos);
  CHECK(reason.find("--state-dir or CONNECTORS_STATE_DIR") != std::string::npos);
  CHECK(second->log().find("history store unavailable") != std::string::npos);

  // Both reload the change; only the first records it. The CLI reads while the first writes.
  replace_file(manifest, original_fixture_with_ttl(50));
  REQUIRE(wait_version_change(first->port(), 1) == 2);
  wait_version_change(second->port(), second_v1);
  wait_recorded(state, 2);
  const auto lines = history_list(state);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].rfind("1\t", 0) == 0);
  CHECK(lines[1].rfind("2\t", 0) == 0);

  // The degraded second holds nothing: once the first stops, a new server takes the store and
  // resumes its newest version.
  REQUIRE(first->stop(SIGTERM, 5s) == 0);
  auto third = history_server(manifest, state);
  CHECK(wait_version_change(third->port(), 0) == 2);
  const cc::Json h3 = health(third->port());
  CHECK_FALSE(history_of(h3).find("degraded")->as_bool());
  CHECK(history_of(h3).find("store")->as_string() == "sqlite");
}

TEST_CASE("stream: with history off, versions never go backwards across restarts", "[stream]") {
  // A raw SSE client keeps the id of the last event; the server restarts without history and
  // with changed content. Versions numbered from 1 again would make that id name the new
  // content, and the client would be sent nothing.
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  cc::test::write_file(manifest, original_fixture());
  const std::vector<std::string> env = {
      "CONNECTORS_SIGNATURE_KEY=" + kSigningKey, "CONNECTORS_API_KEY=" + kApiKey,
      "CONNECTORS_MANIFEST_PATH=" + manifest.string(), "LOG_LEVEL=warning"};
  auto ready = [](int port) {
    return cc::test::eventually_true([port] {
      httplib::Client http("127.0.0.1", port);
      auto r = http.Get("/ready");
      return r && r->status == 200;
    });
  };
  std::string kept_id;
  {
    ServerProcess server({"--port", "0", "--no-history"}, env);
    REQUIRE(server.port() > 0);
    REQUIRE(ready(server.port()));
    SseClient c(server.port(), "/v1/connectors/stream", kAuth);
    auto first = c.next_event(10s);
    REQUIRE(first);
    CHECK(first->event == "status");
    kept_id = first->id;
    // The wall clock's milliseconds (after 2020-01-01), not 1.
    CHECK(std::stoull(kept_id) > 1'577'836'800'000ULL);
    CHECK(server.stop(SIGTERM, 10s) == 0);
  }
  replace_file(manifest, original_fixture_with_ttl(50));
  ServerProcess server({"--port", "0", "--no-history"}, env);
  REQUIRE(server.port() > 0);
  REQUIRE(ready(server.port()));
  auto headers = kAuth;
  headers.push_back("Last-Event-ID: " + kept_id);
  SseClient c(server.port(), "/v1/connectors/stream", headers);
  auto e = c.next_event(10s);
  REQUIRE(e);
  CHECK(e->event == "status");
  CHECK(std::stoull(e->id) > std::stoull(kept_id));
  CHECK(body_of(*e).find("\"ttlSeconds\":50") != std::string::npos);
}
