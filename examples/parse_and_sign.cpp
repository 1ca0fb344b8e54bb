// Builds a small document, prints its canonical form and signs it: the library's core loop.
#include <cstdio>

#include "cortex_connectors/cortex_connectors.h"

int main() {
  namespace cc = cortex_connectors;
  cc::Json payload = cc::Json::object();
  payload.set("id", "01J7X5MB4K1ZW0000000000000");
  payload.set("brand", "brAInwav");
  payload.set("ttlSeconds", 300);
  auto canonical = cc::canonical_json(payload);
  if (!canonical) return 1;
  const std::string signature = cc::sign_hmac_sha256(cc::as_bytes("example-key"), *canonical);
  std::printf("%s\n%s\n", canonical->c_str(), signature.c_str());
  return cc::verify_hmac_sha256(cc::as_bytes("example-key"), *canonical, signature) ? 0 : 1;
}
