// Loads a manifest into a Registry and prints the signed body of the current snapshot: the
// README's embedding example.
//   example_registry_snapshot [MANIFEST]   (key from CONNECTORS_SIGNATURE_KEY, default "example")
#include <cstdio>
#include <cstdlib>

#include "cortex_connectors/cortex_connectors.h"

namespace cc = cortex_connectors;

int main(int argc, char** argv) {
  const char* key = std::getenv("CONNECTORS_SIGNATURE_KEY");
  cc::RegistryOptions options;
  options.manifest_path = argc > 1 ? argv[1] : "config/connectors.manifest.json";
  options.signing_key = key ? key : "example";
  cc::Registry registry(options);
  if (auto r = registry.refresh(); !r) {
    std::fprintf(stderr, "%s\n", cc::describe(r.error()).c_str());  // every finding, with pointers
    return 1;
  }
  auto snapshot = registry.current();  // lock-free; immutable; share freely
  std::fwrite(snapshot->body.data(), 1, snapshot->body.size(), stdout);
  std::printf("\n");
  return 0;
}
