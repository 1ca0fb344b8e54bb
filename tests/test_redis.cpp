// The publisher and replica roles (docs/scaling.md) as separate server processes around a real
// redis-server this test starts on a free 127.0.0.1 port. Skipped, with a message, when
// redis-server is not installed (scripts/install-deps.sh installs it).
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/verify.h"
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

const std::string kSigningKey = "redis-test-signing-key";
const std::string kApiKey = "redis-test-api-key";
// Per test process: ctest runs test cases in parallel, each with its own redis-server.
const std::string kPrefix = "test:connectors:" + std::to_string(::getpid());
const std::vector<std::string> kAuth = {"Authorization: Bearer " + kApiKey};

std::optional<std::string> redis_binary() {
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (::access(p, X_OK) == 0) return std::string(p);
  }
  return std::nullopt;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // NOLINT
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);  // NOLINT
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A redis-server without persistence: a restart loses every key, the harder case.
class RedisServer {
 public:
  RedisServer(std::string binary, int port) : binary_(std::move(binary)), port_(port) {}
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  void start() {
    REQUIRE(pid_ < 0);
    launch();
    REQUIRE(pid_ > 0);
    REQUIRE(cc::test::eventually_true([this] { return ping(); }, 5s));
    // Ours answered, not another test's that took the port first.
    REQUIRE(::waitpid(pid_, nullptr, WNOHANG) == 0);
  }

  // Starts the process without waiting for it (callable from another thread: no REQUIRE).
  void launch() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      const std::string port = std::to_string(port_);
      ::execl(binary_.c_str(), binary_.c_str(), "--port", port.c_str(), "--bind", "127.0.0.1",
              "--save", "", "--appendonly", "no", "--daemonize", "no", nullptr);
      ::_exit(127);
    }
  }

  void stop() {
    if (pid_ < 0) return;
    ::kill(pid_, SIGKILL);  // as a crash would: no goodbye to the clients
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // Runs one command; the reply as text (strings, integers, status), "" for anything else.
  std::string command(const std::vector<std::string>& args) const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      return "(no connection)";
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    std::string out;
    if (r != nullptr) {
      if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
          r->type == REDIS_REPLY_ERROR) {
        out.assign(r->str, r->len);
      } else if (r->type == REDIS_REPLY_INTEGER) {
        out = std::to_string(r->integer);
      }
      freeReplyObject(r);
    }
    redisFree(c);
    return out;
  }

  bool ping() const { return command({"PING"}) == "PONG"; }

 private:
  std::string binary_;
  int port_;
  pid_t pid_ = -1;
};

std::vector<std::string> base_env() {
  return {"CONNECTORS_SIGNATURE_KEY=" + kSigningKey,
          "CONNECTORS_API_KEY=" + kApiKey,
          "CONNECTORS_POLL_INTERVAL_MS=50",
          "CONNECTORS_REDIS_PREFIX=" + kPrefix,
          "LOG_LEVEL=info",
          "ENABLE_PROMETHEUS=true"};
}

std::unique_ptr<ServerProcess> start_publisher(const RedisServer& redis,
                                               const std::filesystem::path& manifest,
                                               std::vector<std::string> extra_args = {}) {
  auto env = base_env();
  env.push_back("CONNECTORS_MANIFEST_PATH=" + manifest.string());
  std::vector<std::string> args = {"--port", "0", "--role", "publisher", "--redis", redis.url()};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto p = std::make_unique<ServerProcess>(args, env);
  REQUIRE(p->port() > 0);
  return p;
}

std::unique_ptr<ServerProcess> start_replica(int redis_port,
                                             std::vector<std::string> extra_args = {},
                                             std::vector<std::string> extra_env = {}) {
  std::vector<std::string> args = {"--port",  "0",
                                   "--role",  "replica",
                                   "--redis", "redis://127.0.0.1:" + std::to_string(redis_port)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto env = base_env();
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  auto p = std::make_unique<ServerProcess>(args, env);
  REQUIRE(p->port() > 0);
  return p;
}

struct Fetched {
  int status = 0;
  std::string body;
  std::string etag;
  std::string retry_after;
};

Fetched get(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5, 0);
  auto r = c.Get(path.c_str(), {{"Authorization", "Bearer " + kApiKey}});
  if (!r) return {};
  return {r->status, r->body, r->get_header_value("ETag"), r->get_header_value("Retry-After")};
}

cc::Json health(int port) {
  auto r = get(port, "/health");
  auto j = cc::parse_json(r.body);
  REQUIRE_OK(j);
  return *j;
}

std::uint64_t scaling_number(int port, std::string_view member) {
  const cc::Json h = health(port);
  const cc::Json* s = h.find("scaling");
  if (s == nullptr || s->find(member) == nullptr || !s->find(member)->is_number()) return 0;
  return static_cast<std::uint64_t>(s->find(member)->as_number());
}

bool scaling_flag(int port, std::string_view member) {
  const cc::Json h = health(port);
  const cc::Json* s = h.find("scaling");
  return s != nullptr && s->find(member) != nullptr && s->find(member)->is_bool() &&
         s->find(member)->as_bool();
}

// Waits until the service map of `port` is `body`.
bool serves(int port, const std::string& body, std::chrono::milliseconds timeout = 10s) {
  return cc::test::eventually_true(
      [&] { return get(port, "/v1/connectors/service-map").body == body; }, timeout);
}

// The next status event of `client` (heartbeats skipped); its body and id.
std::optional<Event> next_status(SseClient& client, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto e = client.next(std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now()));
    if (!e) return std::nullopt;
    if (!e->comment && e->event == "status") return e;
  }
  return std::nullopt;
}

std::string body_of(const Event& e) {
  auto data = cc::parse_json(e.data);
  REQUIRE_OK(data);
  return *cc::canonical_json(*data->find("payload"));
}

// Stores `body` with a link changed (http:// for https://; its signatures no longer match) in
// Redis as the next version and announces it, as someone with write access to Redis could.
// Returns the version that was current before.
std::uint64_t store_tampered(RedisServer& redis, const std::string& body) {
  const std::uint64_t version =
      std::stoull(redis.command({"HGET", kPrefix + ":snapshot", "version"}));
  std::string tampered = body;
  const auto at = tampered.find("https://");
  REQUIRE(at != std::string::npos);
  tampered.replace(at, 8, "http://");
  redis.command(
      {"HSET", kPrefix + ":snapshot", "version", std::to_string(version + 1), "body", tampered});
  redis.command({"XADD", kPrefix + ":events", "*", "version", std::to_string(version + 1)});
  return version;
}

std::string scaling_text(int port, std::string_view member) {
  const cc::Json h = health(port);
  const cc::Json* s = h.find("scaling");
  const cc::Json* v = s != nullptr ? s->find(member) : nullptr;
  return v != nullptr && v->is_string() ? v->as_string() : std::string();
}

// The publication time in the envelope stored in Redis.
std::chrono::system_clock::time_point envelope_time(const RedisServer& redis) {
  auto doc = cc::parse_json(redis.command({"HGET", kPrefix + ":snapshot", "envelope"}));
  if (!doc || doc->find("signed") == nullptr) return {};
  const cc::Json* at = doc->find("signed")->find("publishedAt");
  if (at == nullptr || !at->is_string()) return {};
  return cc::parse_rfc3339(at->as_string()).value_or(std::chrono::system_clock::time_point{});
}

// What the publisher stored for one version, as someone with write access to Redis can copy it.
struct StoredCopy {
  std::string version;
  std::string body;
  std::string envelope;

  static StoredCopy of(const RedisServer& redis) {
    const std::string key = kPrefix + ":snapshot";
    return {redis.command({"HGET", key, "version"}), redis.command({"HGET", key, "body"}),
            redis.command({"HGET", key, "envelope"})};
  }
  // Writes `body` and `envelope` under `as_version` and announces it, as an attacker would.
  void replay(RedisServer& redis, const std::string& as_version) const {
    redis.command(
        {"HSET", kPrefix + ":snapshot", "version", as_version, "body", body, "envelope", envelope});
    redis.command({"XADD", kPrefix + ":events", "*", "version", as_version});
  }
};

// `manifest` with its own generatedAt: the same manifest then always yields the same body.
std::string with_generated_at(std::string manifest) {
  manifest.insert(1, R"("generatedAt": "2025-10-10T00:00:00Z",)");
  return manifest;
}

std::uint64_t health_version(int port) {
  const cc::Json h = health(port);
  const cc::Json* v = h.find("version");
  return v != nullptr && v->is_number() ? static_cast<std::uint64_t>(v->as_number()) : 0;
}

#define REQUIRE_REDIS()                                                                   \
  auto redis_bin = redis_binary();                                                        \
  if (!redis_bin) {                                                                       \
    WARN("SKIPPED: redis-server is not installed (scripts/install-deps.sh installs it)"); \
    return;                                                                               \
  }

// Redis, a publisher of the fixture and `replica_count` replicas, each replica serving the
// publisher's first snapshot (`first`).
struct Deployment {
  RedisServer redis;
  cc::test::TempDir dir;
  std::filesystem::path manifest = dir / "connectors.manifest.json";
  std::unique_ptr<ServerProcess> publisher;
  std::vector<std::unique_ptr<ServerProcess>> replicas;
  std::string first;

  Deployment(const std::string& redis_binary, int replica_count,
             const std::string& manifest_text = original_fixture(),
             const std::vector<std::string>& publisher_args = {})
      : redis(redis_binary, free_port()) {
    redis.start();
    cc::test::write_file(manifest, manifest_text);
    publisher = start_publisher(redis, manifest, publisher_args);
    for (int i = 0; i < replica_count; ++i) replicas.push_back(start_replica(redis.port()));
    REQUIRE(cc::test::eventually_true(
        [&] { return get(publisher->port(), "/v1/connectors/service-map").status == 200; }));
    first = get(publisher->port(), "/v1/connectors/service-map").body;
    REQUIRE(cc::test::eventually_true([&] {
      return redis.command({"HGET", kPrefix + ":snapshot", "body"}) == first;
    }));
    for (const auto& r : replicas) REQUIRE(serves(r->port(), first));
  }
};

}  // namespace

TEST_CASE("one publisher and two replicas serve the same signed bytes, SSE follows every change",
          "[redis][server]") {
  REQUIRE_REDIS();
  Deployment d(*redis_bin, 2);
  auto& redis = d.redis;
  const auto& manifest = d.manifest;
  auto& publisher = d.publisher;
  auto& replica_a = d.replicas[0];
  auto& replica_b = d.replicas[1];
  const Fetched first = get(publisher->port(), "/v1/connectors/service-map");
  for (const auto* r : {replica_a.get(), replica_b.get()}) {
    const Fetched f = get(r->port(), "/v1/connectors/service-map");
    CHECK(f.etag == first.etag);
    CHECK(get(r->port(), "/ready").status == 200);
    const cc::Json h = health(r->port());
    CHECK(h.find("status")->as_string() == "ok");
    CHECK(h.find("version")->as_number() == health(publisher->port()).find("version")->as_number());
    CHECK(h.find("connectors")->as_number() == 3);
    CHECK(h.find("scaling")->find("role")->as_string() == "replica");
  }
  CHECK(health(publisher->port()).find("scaling")->find("lease")->as_bool());
  CHECK(redis.command({"HGET", kPrefix + ":snapshot", "body"}) == first.body);

  SseClient sse_a(replica_a->port(), "/v1/connectors/stream", kAuth);
  SseClient sse_b(replica_b->port(), "/v1/connectors/stream", kAuth);
  REQUIRE(sse_a.head().find("200") != std::string::npos);
  REQUIRE(sse_b.head().find("200") != std::string::npos);
  std::uint64_t last_id = 0;
  for (SseClient* c : {&sse_a, &sse_b}) {
    auto e = next_status(*c);
    REQUIRE(e);
    CHECK(body_of(*e) == first.body);
    last_id = std::stoull(e->id);
  }

  // Every change reaches the subscribers of both replicas, with the publisher's version and
  // byte-identical bodies.
  for (int ttl : {100, 90, 80}) {
    replace_file(manifest, original_fixture_with_ttl(ttl));
    std::string body_a;
    for (SseClient* c : {&sse_a, &sse_b}) {
      auto e = next_status(*c);
      REQUIRE(e);
      CHECK(std::stoull(e->id) == last_id + 1);
      CHECK(body_of(*e).find("\"ttlSeconds\":" + std::to_string(ttl)) != std::string::npos);
      if (body_a.empty()) {
        body_a = body_of(*e);
      } else {
        CHECK(body_of(*e) == body_a);
      }
    }
    ++last_id;
    CHECK(get(publisher->port(), "/v1/connectors/service-map").body == body_a);
  }

  // A second publisher on the same prefix by mistake: it does not get the lease, says so, and
  // does not write (its edits would otherwise fight the first one's).
  cc::test::TempDir other_dir;
  const auto other_manifest = other_dir / "connectors.manifest.json";
  cc::test::write_file(other_manifest, original_fixture_with_ttl(42));
  auto second = start_publisher(redis, other_manifest, {"--no-history"});
  REQUIRE(cc::test::eventually_true(
      [&] { return get(second->port(), "/v1/connectors/service-map").status == 200; }));
  const cc::Json h = health(second->port());
  CHECK(h.find("status")->as_string() == "degraded");
  CHECK_FALSE(h.find("scaling")->find("lease")->as_bool());
  CHECK(second->log().find("ANOTHER PUBLISHER holds the Redis lease") != std::string::npos);
  CHECK(redis.command({"HGET", kPrefix + ":snapshot", "version"}) == std::to_string(last_id));
  CHECK(get(replica_a->port(), "/v1/connectors/service-map").body.find("\"ttlSeconds\":80") !=
        std::string::npos);
}

TEST_CASE("a replica started while Redis is down answers 503, then serves", "[redis][server]") {
  REQUIRE_REDIS();
  RedisServer redis(*redis_bin, free_port());  // not started yet
  auto replica = start_replica(redis.port());
  const Fetched none = get(replica->port(), "/v1/connectors/service-map");
  CHECK(none.status == 503);
  CHECK_FALSE(none.retry_after.empty());
  CHECK(get(replica->port(), "/ready").status == 503);
  CHECK(health(replica->port()).find("status")->as_string() == "starting");
  CHECK_FALSE(scaling_flag(replica->port(), "connected"));

  // Redis up, but no snapshot yet: still 503.
  redis.start();
  REQUIRE(cc::test::eventually_true([&] { return scaling_flag(replica->port(), "connected"); }));
  CHECK(get(replica->port(), "/ready").status == 503);

  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  cc::test::write_file(manifest, original_fixture());
  auto publisher = start_publisher(redis, manifest);
  REQUIRE(cc::test::eventually_true(
      [&] { return get(publisher->port(), "/v1/connectors/service-map").status == 200; }));
  REQUIRE(serves(replica->port(), get(publisher->port(), "/v1/connectors/service-map").body));
  CHECK(get(replica->port(), "/ready").status == 200);

  // SIGHUP (systemctl reload): a replica has no manifest to reload; it says so and serves on.
  REQUIRE(::kill(replica->pid(), SIGHUP) == 0);
  REQUIRE(cc::test::eventually_true([&] {
    return replica->log().find("reload requested (SIGHUP): ignored, a replica has no manifest") !=
           std::string::npos;
  }));
  CHECK(get(replica->port(), "/ready").status == 200);
}

TEST_CASE("a publisher started while Redis is down waits for it before it listens",
          "[redis][server]") {
  REQUIRE_REDIS();
  RedisServer redis(*redis_bin, free_port());
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  cc::test::write_file(manifest, original_fixture());
  // Redis comes up while the publisher is retrying (ServerProcess waits for "listening").
  std::thread later([&redis] {
    std::this_thread::sleep_for(500ms);
    redis.launch();
  });
  auto publisher = start_publisher(redis, manifest);
  later.join();
  const std::string log = publisher->log();
  const auto waiting = log.find("publisher waiting for Redis");
  CHECK(waiting != std::string::npos);
  CHECK(waiting < log.find("\"msg\":\"listening\""));
  REQUIRE(cc::test::eventually_true([&] {
    return redis.command({"HGET", kPrefix + ":snapshot", "body"}) ==
           get(publisher->port(), "/v1/connectors/service-map").body;
  }));
  CHECK(redis.command({"HGET", kPrefix + ":snapshot", "version"}) == "1");
}

TEST_CASE("Redis restarts mid-stream: replicas keep serving, reconnect and catch up",
          "[redis][server]") {
  REQUIRE_REDIS();
  Deployment d(*redis_bin, 1);
  auto& redis = d.redis;
  const auto& manifest = d.manifest;
  auto& publisher = d.publisher;
  auto& replica = d.replicas[0];
  const std::string first = d.first;
  SseClient sse(replica->port(), "/v1/connectors/stream", kAuth);
  REQUIRE(sse.head().find("200") != std::string::npos);
  auto e = next_status(sse);
  REQUIRE(e);
  const std::uint64_t id = std::stoull(e->id);

  redis.stop();  // every key is lost: no persistence
  REQUIRE(cc::test::eventually_true([&] { return !scaling_flag(replica->port(), "connected"); }));
  // The last verified snapshot is still served, and the stream stays open.
  CHECK(get(replica->port(), "/v1/connectors/service-map").body == first);
  CHECK(get(replica->port(), "/ready").status == 200);
  CHECK(health(replica->port()).find("status")->as_string() == "degraded");

  // Two edits while Redis is down: the publisher serves them locally; only the newest will
  // reach the replicas (intermediate versions are skipped).
  replace_file(manifest, original_fixture_with_ttl(70));
  REQUIRE(cc::test::eventually_true([&] {
    return get(publisher->port(), "/v1/connectors/service-map").body.find("\"ttlSeconds\":70") !=
           std::string::npos;
  }));
  replace_file(manifest, original_fixture_with_ttl(60));
  REQUIRE(cc::test::eventually_true([&] {
    return get(publisher->port(), "/v1/connectors/service-map").body.find("\"ttlSeconds\":60") !=
           std::string::npos;
  }));
  const std::string newest = get(publisher->port(), "/v1/connectors/service-map").body;

  redis.start();  // empty: the publisher writes its current snapshot again
  auto next = next_status(sse, 15s);
  REQUIRE(next);
  CHECK(body_of(*next) == newest);
  CHECK(std::stoull(next->id) == id + 2);
  CHECK(get(replica->port(), "/v1/connectors/service-map").body == newest);
  REQUIRE(cc::test::eventually_true([&] { return scaling_flag(replica->port(), "connected"); }));
  CHECK(scaling_number(replica->port(), "rejected") == 0);
}

TEST_CASE("a restarted publisher continues above the stored version", "[redis][server]") {
  REQUIRE_REDIS();
  RedisServer redis(*redis_bin, free_port());
  redis.start();
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  cc::test::write_file(manifest, original_fixture());
  auto replica = start_replica(redis.port());
  std::uint64_t stored = 0;
  {
    auto publisher = start_publisher(redis, manifest, {"--no-history"});
    // The watcher is armed after the first load: edit only once that is done.
    // Without history the first version is the wall clock's milliseconds.
    REQUIRE(cc::test::eventually_true([&] {
      return !redis.command({"HGET", kPrefix + ":snapshot", "version"}).empty();
    }));
    replace_file(manifest, original_fixture_with_ttl(50));
    REQUIRE(cc::test::eventually_true([&] {
      return redis.command({"HGET", kPrefix + ":snapshot", "body"}).find("\"ttlSeconds\":50") !=
             std::string::npos;
    }));
    stored = std::stoull(redis.command({"HGET", kPrefix + ":snapshot", "version"}));
    CHECK(publisher->stop(SIGTERM, 5s) == 0);
  }
  // The lease is released on a clean stop.
  CHECK(redis.command({"EXISTS", kPrefix + ":publisher"}) == "0");
  // No history (a new machine, a lost state directory): versions still come after Redis's.
  replace_file(manifest, original_fixture_with_ttl(40));
  auto publisher = start_publisher(redis, manifest, {"--no-history"});
  REQUIRE(cc::test::eventually_true([&] {
    return redis.command({"HGET", kPrefix + ":snapshot", "body"}).find("\"ttlSeconds\":40") !=
           std::string::npos;
  }));
  CHECK(std::stoull(redis.command({"HGET", kPrefix + ":snapshot", "version"})) > stored);
  CHECK(health(publisher->port()).find("version")->as_number() > static_cast<double>(stored));
  REQUIRE(serves(replica->port(), get(publisher->port(), "/v1/connectors/service-map").body));
  CHECK(health(replica->port()).find("version")->as_number() > static_cast<double>(stored));
}

TEST_CASE("a tampered snapshot in Redis is rejected and the last good one kept",
          "[redis][server]") {
  REQUIRE_REDIS();
  Deployment d(*redis_bin, 1);
  auto& redis = d.redis;
  auto& replica = d.replicas[0];
  const std::string good = d.first;
  // Someone with write access to Redis points a connector elsewhere, keeping the signature.
  const std::uint64_t version = store_tampered(redis, good);

  REQUIRE(
      cc::test::eventually_true([&] { return scaling_number(replica->port(), "rejected") == 1; }));
  CHECK(get(replica->port(), "/v1/connectors/service-map").body == good);
  CHECK(health(replica->port()).find("version")->as_number() == static_cast<double>(version));
  CHECK(replica->log().find("ALARM: snapshot in Redis REJECTED") != std::string::npos);
  const cc::Json h = health(replica->port());
  CHECK(h.find("status")->as_string() == "degraded");  // Redis holds what it refuses
  // The publisher's signed envelope names another version than the one beside it.
  CHECK(h.find("scaling")->find("lastRejectionReason")->as_string() == "version");
  CHECK(h.find("scaling")->find("lastRejection")->as_string().find("is not the envelope's") !=
        std::string::npos);
  const Fetched metrics = get(replica->port(), "/metrics");
  CHECK(metrics.body.find("cortex_connectors_redis_snapshots_rejected_total 1\n") !=
        std::string::npos);
  CHECK(metrics.body.find("cortex_connectors_redis_connected 1\n") != std::string::npos);
  cc::test::check_promtool_metrics(metrics.body);
  // Announced again (a reconnect re-reads it too): one alarm per bad body, not one per read.
  redis.command({"XADD", kPrefix + ":events", "*", "version", std::to_string(version + 1)});
  CHECK(serves(replica->port(), good, 1s));
  CHECK(scaling_number(replica->port(), "rejected") == 1);
}

TEST_CASE("a replica with the publisher's public keys alone verifies, serves and rejects",
          "[redis][server]") {
  REQUIRE_REDIS();
  RedisServer redis(*redis_bin, free_port());
  redis.start();
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  cc::test::write_file(manifest, original_fixture());
  const std::string key_file = (dir / "signing.key").string();
  REQUIRE(cc::test::run_cli({"keygen", key_file}).exit_code == 0);
  auto publisher = start_publisher(redis, manifest, {"--signing-key-file", key_file});
  REQUIRE(cc::test::eventually_true(
      [&] { return get(publisher->port(), "/v1/connectors/service-map").status == 200; }));
  const std::string first = get(publisher->port(), "/v1/connectors/service-map").body;
  const Fetched keys = get(publisher->port(), "/v1/connectors/keys");
  REQUIRE(keys.status == 200);
  const auto pinned = cc::parse_keys_document(keys.body);
  REQUIRE_OK(pinned);
  const auto keys_file = dir / "keys.json";
  cc::test::write_file(keys_file, keys.body);

  // The replica gets no secret at all: no CONNECTORS_SIGNATURE_KEY, no key file.
  auto env = base_env();
  std::erase_if(env,
                [](const std::string& e) { return e.starts_with("CONNECTORS_SIGNATURE_KEY="); });
  const auto start_trusting = [&](const std::filesystem::path& trusted) {
    auto p = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--port", "0", "--role", "replica", "--redis", redis.url(),
                                 "--trusted-keys", trusted.string()},
        env);
    REQUIRE(p->port() > 0);
    return p;
  };
  auto replica = start_trusting(keys_file);
  REQUIRE(serves(replica->port(), first));
  CHECK(replica->log().find("1 Ed25519 key(s), no HMAC key") != std::string::npos);
  // It publishes the keys it trusts, as the publisher does.
  const auto replica_keys =
      cc::parse_keys_document(get(replica->port(), "/v1/connectors/keys").body);
  REQUIRE_OK(replica_keys);
  CHECK(*replica_keys == *pinned);

  // Changes arrive verified, over HTTP and SSE.
  SseClient sse(replica->port(), "/v1/connectors/stream", kAuth);
  REQUIRE(sse.head().find("200") != std::string::npos);
  auto e = next_status(sse);
  REQUIRE(e);
  CHECK(body_of(*e) == first);
  replace_file(manifest, original_fixture_with_ttl(90));
  e = next_status(sse);
  REQUIRE(e);
  CHECK(body_of(*e).find("\"ttlSeconds\":90") != std::string::npos);
  const std::string second = get(publisher->port(), "/v1/connectors/service-map").body;
  CHECK(body_of(*e) == second);
  CHECK(get(replica->port(), "/v1/connectors/service-map").body == second);

  // A body changed in Redis (the Ed25519 signature no longer matches) is rejected.
  store_tampered(redis, second);
  REQUIRE(
      cc::test::eventually_true([&] { return scaling_number(replica->port(), "rejected") == 1; }));
  CHECK(get(replica->port(), "/v1/connectors/service-map").body == second);
  CHECK(health(replica->port()).find("scaling")->find("lastRejectionReason")->as_string() ==
        "version");

  // A replica that trusts another key serves nothing it cannot verify: 503, alarmed.
  const auto other = cc::Ed25519Key::generate().public_key();
  const auto other_file = dir / "other-keys.json";
  cc::test::write_file(
      other_file,
      cc::build_keys_document(std::span(&other, 1), std::chrono::system_clock::now()).body);
  auto stranger = start_trusting(other_file);
  REQUIRE(
      cc::test::eventually_true([&] { return scaling_number(stranger->port(), "rejected") >= 1; }));
  CHECK(get(stranger->port(), "/v1/connectors/service-map").status == 503);
  CHECK(get(stranger->port(), "/ready").status == 503);
  CHECK(stranger->log().find("ALARM: snapshot in Redis REJECTED") != std::string::npos);
}

TEST_CASE("role and Redis flags: a bad combination exits 2 with one line", "[redis][server]") {
  cc::test::TempDir dir;
  const std::string not_keys = (dir / "not-keys.json").string();
  cc::test::write_file(not_keys, R"({"keys":"none"})");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--role", "replica"}, "need --redis"},
      {{"--redis", "redis://127.0.0.1:6379"}, "needs --role publisher"},
      {{"--role", "leader", "--redis", "redis://127.0.0.1"},
       "must be single, publisher or replica"},
      {{"--role", "replica", "--redis", "http://127.0.0.1"}, "must start with redis://"},
      {{"--role", "replica", "--redis", "redis://127.0.0.1:99999"}, "port must be 1-65535"},
      {{"--role", "replica", "--redis", "redis://127.0.0.1", "--manifest", "m.json"},
       "drop --manifest"},
      {{"--role", "publisher", "--redis", "redis://:s3cret@127.0.0.1:0"}, "port must be 1-65535"},
      {{"--role", "replica", "--redis", "redis://[::1:6379"}, "needs a closing ]"},
      {{"--role", "replica", "--redis", "redis://[::1]x:6379"}, "must be redis://"},
      {{"--role", "replica", "--redis", "redis://127.0.0.1/x"}, "database (/N)"},
      {{"--trusted-keys", "keys.json"}, "is for --role replica"},
      {{"--role", "publisher", "--redis", "redis://127.0.0.1", "--trusted-keys", "keys.json"},
       "is for --role replica"},
      {{"--role", "replica", "--redis", "redis://127.0.0.1", "--trusted-keys", "keys.json",
        "--signing-key-file", "k.key"},
       "not both"},
      {{"--role", "replica", "--redis", "redis://127.0.0.1", "--trusted-keys",
        "/nonexistent/keys.json"},
       "cannot open key file /nonexistent/keys.json"},
      {{"--role", "replica", "--redis", "redis://127.0.0.1", "--trusted-keys", not_keys},
       not_keys + " is not a usable keys document"},
      {{"--role", "publisher", "--redis", "redis://127.0.0.1", "--max-snapshot-age", "60"},
       "--max-snapshot-age / CONNECTORS_MAX_SNAPSHOT_AGE is for --role replica"},
      {{"--role", "replica", "--redis", "redis://127.0.0.1", "--max-snapshot-age", "-1"},
       "must be 0-31536000 seconds"},
      {{"--role", "replica", "--redis", "redis://127.0.0.1", "--envelope-refresh-seconds", "5"},
       "is for --role publisher"},
      {{"--role", "publisher", "--redis", "redis://127.0.0.1", "--envelope-refresh-seconds", "0"},
       "must be 1-86400"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv = {CORTEX_CONNECTORS_SERVER};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = cc::test::run_program(argv, {}, base_env());
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(message) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find("s3cret") == std::string::npos);
  }
}

TEST_CASE("a publisher restarted without its state keeps the version of an unchanged body",
          "[redis][server]") {
  REQUIRE_REDIS();
  RedisServer redis(*redis_bin, free_port());
  redis.start();
  cc::test::TempDir dir;
  const auto manifest = dir / "connectors.manifest.json";
  cc::test::write_file(manifest, with_generated_at(original_fixture()));
  auto publisher = start_publisher(redis, manifest);
  REQUIRE(cc::test::eventually_true(
      [&] { return get(publisher->port(), "/v1/connectors/service-map").status == 200; }));
  const std::string first = get(publisher->port(), "/v1/connectors/service-map").body;
  const std::uint64_t version = health_version(publisher->port());
  auto early = start_replica(redis.port());
  REQUIRE(serves(early->port(), first));
  SseClient sse(early->port(), "/v1/connectors/stream", kAuth);
  REQUIRE(sse.head().find("200") != std::string::npos);
  auto e = next_status(sse);
  REQUIRE(e);
  CHECK(std::stoull(e->id) == version);

  // A crash, and a restart that lost the state directory: the same manifest is the same body.
  CHECK(publisher->stop(SIGKILL, 5s) != 0);
  publisher = start_publisher(redis, manifest, {"--no-history"});
  // The killed process's lease expires first (10 s).
  REQUIRE(cc::test::eventually_true([&] { return scaling_flag(publisher->port(), "lease"); }, 20s));
  REQUIRE(cc::test::eventually_true([&] {
    return redis.command({"HGET", kPrefix + ":snapshot", "version"}) ==
           std::to_string(health_version(publisher->port()));
  }));
  auto late = start_replica(redis.port());
  REQUIRE(serves(late->port(), first));
  // Every process reports the same version for the same bytes.
  CHECK(health_version(publisher->port()) == version);
  CHECK(health_version(late->port()) == version);
  CHECK(health_version(early->port()) == version);
  CHECK(get(late->port(), "/v1/connectors/service-map").etag ==
        get(early->port(), "/v1/connectors/service-map").etag);

  // The next change is the early subscriber's next event: nothing was sent in between, and
  // its id is the publisher's on every replica.
  replace_file(manifest, with_generated_at(original_fixture_with_ttl(77)));
  e = next_status(sse);
  REQUIRE(e);
  CHECK(body_of(*e).find("\"ttlSeconds\":77") != std::string::npos);
  CHECK(std::stoull(e->id) == health_version(publisher->port()));
  REQUIRE(cc::test::eventually_true(
      [&] { return health_version(late->port()) == health_version(publisher->port()); }));
  CHECK(health_version(early->port()) == health_version(publisher->port()));
}

TEST_CASE("a replica that missed a change adopts the version of the same body without an event",
          "[redis][server]") {
  REQUIRE_REDIS();
  Deployment d(*redis_bin, 1, with_generated_at(original_fixture()));
  auto& redis = d.redis;
  auto& publisher = d.publisher;
  auto& replica = d.replicas[0];
  const std::uint64_t first = health_version(replica->port());
  SseClient full(replica->port(), "/v1/connectors/stream", kAuth);
  SseClient delta(replica->port(), "/v1/connectors/stream?mode=delta", kAuth);
  for (SseClient* c : {&full, &delta}) {
    REQUIRE(c->head().find("200") != std::string::npos);
    auto e = next_status(*c);
    REQUIRE(e);
    CHECK(std::stoull(e->id) == first);
  }

  // While Redis is down the manifest changes and changes back: the replica never sees the
  // middle version, and then finds its own body under a newer version.
  redis.stop();
  REQUIRE(cc::test::eventually_true([&] { return !scaling_flag(replica->port(), "connected"); }));
  replace_file(d.manifest, with_generated_at(original_fixture_with_ttl(70)));
  REQUIRE(cc::test::eventually_true([&] {
    return get(publisher->port(), "/v1/connectors/service-map").body.find("\"ttlSeconds\":70") !=
           std::string::npos;
  }));
  replace_file(d.manifest, with_generated_at(original_fixture()));
  REQUIRE(cc::test::eventually_true(
      [&] { return get(publisher->port(), "/v1/connectors/service-map").body == d.first; }));
  const std::uint64_t renumbered = health_version(publisher->port());
  REQUIRE(renumbered == first + 2);
  redis.start();  // empty: the publisher writes its current snapshot again
  REQUIRE(cc::test::eventually_true([&] { return health_version(replica->port()) == renumbered; },
                                    15s));
  CHECK(get(replica->port(), "/v1/connectors/service-map").body == d.first);

  // New subscribers: either id is current (nothing is resent); without one, the new id.
  const auto with_id = [&](std::uint64_t id) {
    std::vector<std::string> headers = kAuth;
    headers.push_back("Last-Event-ID: " + std::to_string(id));
    return std::make_unique<SseClient>(replica->port(), "/v1/connectors/stream", headers);
  };
  auto old_id = with_id(first);
  auto new_id = with_id(renumbered);
  REQUIRE(old_id->head().find("200") != std::string::npos);
  REQUIRE(new_id->head().find("200") != std::string::npos);
  SseClient fresh(replica->port(), "/v1/connectors/stream", kAuth);
  REQUIRE(fresh.head().find("200") != std::string::npos);
  auto e = next_status(fresh);
  REQUIRE(e);
  CHECK(std::stoull(e->id) == renumbered);
  CHECK(body_of(*e) == d.first);

  // The next change is the first event every earlier subscriber gets; a delta subscriber's
  // names the id it holds as "from", so that it applies.
  replace_file(d.manifest, with_generated_at(original_fixture_with_ttl(55)));
  REQUIRE(
      cc::test::eventually_true([&] { return health_version(replica->port()) == renumbered + 1; }));
  for (SseClient* c : {&full, old_id.get(), new_id.get(), &fresh}) {
    e = c->next_event(10s);
    REQUIRE(e);
    CHECK(e->event == "status");
    CHECK(std::stoull(e->id) == renumbered + 1);
    CHECK(body_of(*e).find("\"ttlSeconds\":55") != std::string::npos);
  }
  e = delta.next_event(10s);
  REQUIRE(e);
  CHECK(e->event == "delta");
  CHECK(std::stoull(e->id) == renumbered + 1);
  auto data = cc::parse_json(e->data);
  REQUIRE_OK(data);
  CHECK(data->find("from")->as_number() == static_cast<double>(first));
}

TEST_CASE("a Redis writer cannot roll replicas back with an older genuine body or envelope",
          "[redis][server]") {
  REQUIRE_REDIS();
  // No re-sign during the test: the publisher would repair a lowered version at its next one.
  Deployment d(*redis_bin, 0, original_fixture(), {"--envelope-refresh-seconds", "3600"});
  auto& redis = d.redis;
  auto& publisher = d.publisher;
  const auto& dir = d.dir;
  const auto& manifest = d.manifest;
  const StoredCopy old = StoredCopy::of(redis);
  // The replica keeps its record across restarts in its state directory.
  const std::string state = "CONNECTORS_STATE_DIR=" + (dir / "replica-state").string();
  auto replica = start_replica(redis.port(), {}, {state});
  REQUIRE(serves(replica->port(), old.body));

  // Connector alpha is disabled: a later version, genuinely signed.
  std::string disabled = original_fixture();
  disabled.replace(disabled.find(R"("enabled": true)"), 15, R"("enabled": false)");
  replace_file(manifest, disabled);
  REQUIRE(cc::test::eventually_true(
      [&] { return get(replica->port(), "/v1/connectors/service-map").body != old.body; }));
  const std::string current = get(replica->port(), "/v1/connectors/service-map").body;
  const auto enabled = [](const std::string& body) {
    std::size_t n = 0;
    for (auto at = body.find(R"("enabled":true)"); at != std::string::npos;
         at = body.find(R"("enabled":true)", at + 1)) {
      ++n;
    }
    return n;
  };
  REQUIRE(enabled(current) + 1 == enabled(old.body));
  const std::uint64_t version = health_version(replica->port());
  REQUIRE(std::to_string(version) == redis.command({"HGET", kPrefix + ":snapshot", "version"}));

  // 1. The old body (its signatures verify) under a higher version, the envelope left as is.
  redis.command(
      {"HSET", kPrefix + ":snapshot", "version", std::to_string(version + 1), "body", old.body});
  redis.command({"XADD", kPrefix + ":events", "*", "version", std::to_string(version + 1)});
  REQUIRE(
      cc::test::eventually_true([&] { return scaling_number(replica->port(), "rejected") == 1; }));
  CHECK(scaling_text(replica->port(), "lastRejectionReason") == "version");
  CHECK(get(replica->port(), "/v1/connectors/service-map").body == current);
  CHECK(health_version(replica->port()) == version);
  CHECK(health(replica->port()).find("status")->as_string() == "degraded");
  CHECK(replica->log().find("ALARM: snapshot in Redis REJECTED (version)") != std::string::npos);

  // 2. The old body with its own, genuine envelope: a version below the one accepted.
  old.replay(redis, old.version);
  REQUIRE(
      cc::test::eventually_true([&] { return scaling_number(replica->port(), "rejected") == 2; }));
  CHECK(scaling_text(replica->port(), "lastRejectionReason") == "rollback");
  CHECK(replica->log().find("ALARM: snapshot in Redis REJECTED (rollback)") != std::string::npos);
  // 3. ... and under a higher version beside it: the envelope names its own.
  old.replay(redis, std::to_string(version + 7));
  REQUIRE(
      cc::test::eventually_true([&] { return scaling_number(replica->port(), "rejected") == 3; }));
  CHECK(scaling_text(replica->port(), "lastRejectionReason") == "version");
  CHECK(get(replica->port(), "/v1/connectors/service-map").body == current);
  CHECK(health_version(replica->port()) == version);
  const Fetched metrics = get(replica->port(), "/metrics");
  CHECK(metrics.body.find("cortex_connectors_redis_snapshots_rejected_total 3\n") !=
        std::string::npos);

  // 4. A restart does not forget: the record in the state directory still refuses the old
  // version, so the restarted replica serves nothing rather than the rolled-back map.
  old.replay(redis, old.version);
  CHECK(replica->stop(SIGTERM, 5s) == 0);
  replica = start_replica(redis.port(), {}, {state});
  REQUIRE(
      cc::test::eventually_true([&] { return scaling_number(replica->port(), "rejected") == 1; }));
  CHECK(scaling_text(replica->port(), "lastRejectionReason") == "rollback");
  CHECK(scaling_number(replica->port(), "recordedVersion") == version);
  CHECK(get(replica->port(), "/v1/connectors/service-map").status == 503);
  CHECK(replica->log().find("ALARM: snapshot in Redis REJECTED (rollback)") != std::string::npos);

  // The genuine current snapshot is served again once the publisher writes it.
  redis.command({"HSET", kPrefix + ":snapshot", "version", std::to_string(version), "body", current,
                 "envelope", ""});
  // A publisher restarted without its state writes the current snapshot again (same body,
  // same version) with a new envelope.
  CHECK(publisher->stop(SIGTERM, 5s) == 0);
  publisher = start_publisher(redis, manifest);
  REQUIRE(serves(replica->port(), current));
  CHECK(health_version(replica->port()) == version);
  CHECK(cc::test::eventually_true(
      [&] { return health(replica->port()).find("status")->as_string() == "ok"; }));
}

TEST_CASE("a replica with a maximum age refuses a stale envelope and keeps its last good map",
          "[redis][server]") {
  REQUIRE_REDIS();
  // A publisher that does not re-sign during the test, like one that stopped or was cut off.
  Deployment d(*redis_bin, 0, original_fixture(), {"--envelope-refresh-seconds", "3600"});
  auto& redis = d.redis;
  const std::string body = d.first;
  const auto published = envelope_time(redis);
  auto serving = start_replica(redis.port(), {"--max-snapshot-age", "2"});
  REQUIRE(serves(serving->port(), body));
  CHECK(health(serving->port()).find("status")->as_string() == "ok");

  // Older than the maximum age: a replica starting now refuses it.
  REQUIRE(cc::test::eventually_true(
      [&] { return std::chrono::system_clock::now() - published > 4s; }, 10s));
  auto late = start_replica(redis.port(), {}, {"CONNECTORS_MAX_SNAPSHOT_AGE=2"});
  REQUIRE(cc::test::eventually_true([&] { return scaling_number(late->port(), "rejected") == 1; }));
  CHECK(scaling_text(late->port(), "lastRejectionReason") == "stale");
  CHECK(get(late->port(), "/v1/connectors/service-map").status == 503);
  CHECK(late->log().find("ALARM: snapshot in Redis REJECTED (stale)") != std::string::npos);

  // The replica that had it keeps serving it, and says it is stale.
  REQUIRE(
      cc::test::eventually_true([&] { return scaling_number(serving->port(), "rejected") == 1; }));
  CHECK(scaling_flag(serving->port(), "stale"));
  CHECK(scaling_text(serving->port(), "lastRejectionReason") == "stale");
  CHECK(health(serving->port()).find("status")->as_string() == "degraded");
  CHECK(get(serving->port(), "/v1/connectors/service-map").body == body);
}

TEST_CASE("the publisher re-signs its envelope so that an idle replica with a maximum age stays ok",
          "[redis][server]") {
  REQUIRE_REDIS();
  Deployment d(*redis_bin, 0, original_fixture(), {"--envelope-refresh-seconds", "1"});
  auto& redis = d.redis;
  auto& publisher = d.publisher;
  const auto first = envelope_time(redis);
  const std::string version = redis.command({"HGET", kPrefix + ":snapshot", "version"});
  auto replica = start_replica(redis.port(), {"--max-snapshot-age", "5"});
  REQUIRE(serves(replica->port(), d.first));

  // Nothing changes for longer than the maximum age; the envelope is signed anew meanwhile.
  REQUIRE(cc::test::eventually_true([&] { return envelope_time(redis) - first > 6s; }, 20s));
  CHECK(redis.command({"HGET", kPrefix + ":snapshot", "version"}) == version);
  REQUIRE(cc::test::eventually_true(
      [&] { return health(replica->port()).find("status")->as_string() == "ok"; }));
  CHECK_FALSE(scaling_flag(replica->port(), "stale"));
  CHECK(scaling_number(replica->port(), "rejected") == 0);
  CHECK(scaling_number(replica->port(), "envelopeAgeSeconds") <= 5);
  CHECK(std::to_string(health_version(replica->port())) == version);
  CHECK(!scaling_text(publisher->port(), "envelopePublishedAt").empty());
}
