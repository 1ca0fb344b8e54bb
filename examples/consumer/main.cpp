// Links the installed library and checks one canonical form and one signature round trip.
#include <cstdio>

#include <cortex_connectors/cortex_connectors.h>
#ifdef CONSUMER_WITH_CLIENT
#include <cortex_connectors/service_map_client.h>
#endif
#ifdef CONSUMER_WITH_HISTORY_SQLITE
#include <cortex_connectors/sqlite_history.h>
#endif

int main() {
  namespace cc = cortex_connectors;
  auto canonical = cc::canonicalize(R"({"b": 2, "a": [1.50, "x"]})");
  if (!canonical || *canonical != R"({"a":[1.5,"x"],"b":2})") return 1;
  const auto sig = cc::sign_hmac_sha256(cc::as_bytes("k"), *canonical);
  if (!cc::verify_hmac_sha256(cc::as_bytes("k"), *canonical, sig)) return 1;
  // verify.h: a signed body that is no service map is refused with the member's pointer.
  const std::string body = R"({"payload":{"a":1},"signature":")" +
                           cc::sign_hmac_sha256(cc::as_bytes("k"), R"({"a":1})") + "\"}";
  auto verified = cc::verify_service_map(body, cc::as_bytes("k"));
  if (verified || verified.error().issues.at(0).pointer != "/payload/brand") return 1;
#ifdef CONSUMER_WITH_CLIENT
  cc::ServiceMapClientOptions options;  // links and checks options; no network needed
  if (cc::ServiceMapClient(options).start().error().code != cc::ErrorCode::kUsage) return 1;
  std::printf("consumer ok: client component linked\n");
#endif
#ifdef CONSUMER_WITH_HISTORY_SQLITE
  // An in-memory database: links SQLite and creates the tables.
  auto store = cc::SqliteHistoryStore::open(":memory:");
  if (!store || (*store)->latest_version().value() != 0) return 1;
  std::printf("consumer ok: history_sqlite component linked\n");
#endif
  std::printf("consumer ok: cortex_connectors %s\n", std::string(cc::version_string()).c_str());
  return 0;
}
