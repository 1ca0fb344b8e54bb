// Links the installed library and checks one canonical form and one signature round trip.
#include <cstdio>

#include <cortex_connectors/cortex_connectors.h>

int main() {
  namespace cc = cortex_connectors;
  auto canonical = cc::canonicalize(R"({"b": 2, "a": [1.50, "x"]})");
  if (!canonical || *canonical != R"({"a":[1.5,"x"],"b":2})") return 1;
  const auto sig = cc::sign_hmac_sha256(cc::as_bytes("k"), *canonical);
  if (!cc::verify_hmac_sha256(cc::as_bytes("k"), *canonical, sig)) return 1;
  std::printf("consumer ok: cortex_connectors %s\n", std::string(cc::version_string()).c_str());
  return 0;
}
