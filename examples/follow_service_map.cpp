// Follows a cortex-connectors server's service map and prints each new verified version as it
// arrives, the way an MCP proxy would embed ServiceMapClient.
//
//   CONNECTORS_SIGNATURE_KEY=k CONNECTORS_API_KEY=a example_follow_service_map
//   [http://127.0.0.1:3026] [--delta] [--poll]
//
// The keys come from the environment only (never arguments: they would show in `ps`).
// Ctrl-C stops it.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <cortex_connectors/service_map.h>
#include <cortex_connectors/service_map_client.h>
#include <pthread.h>

namespace cc = cortex_connectors;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): before any thread
  return v != nullptr ? v : "";
}

}  // namespace

int main(int argc, char** argv) {
  cc::ServiceMapClientOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg =
        argv[i];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic)
    if (arg == "--delta") {
      options.delta = true;
    } else if (arg == "--poll") {
      options.use_stream = false;
    } else if (arg.rfind("http://", 0) == 0 || arg.rfind("https://", 0) == 0) {
      options.base_url = std::string(arg);
    } else {
      std::fprintf(stderr, "usage: %s [URL] [--delta] [--poll]\n", argv[0]);
      return 2;
    }
  }
  options.signing_key = env("CONNECTORS_SIGNATURE_KEY");
  options.api_key = env("CONNECTORS_API_KEY");
  if (options.api_key.empty()) options.api_key = env("MCP_API_KEY");
  if (options.signing_key.empty()) {
    std::fprintf(stderr, "[brAInwav] CONNECTORS_SIGNATURE_KEY is required\n");
    return 2;
  }
  options.on_update = [](const std::shared_ptr<const cc::VerifiedServiceMap>& map) {
    std::printf("version %llu: id %s, generatedAt %s, %zu connectors, expires %s\n",
                static_cast<unsigned long long>(map->version), map->id.c_str(),
                map->generated_at.c_str(), map->connector_count,
                cc::format_rfc3339(map->expires_at).c_str());
    for (const auto& c : map->payload.find("connectors")->as_array()) {
      const cc::Json* enabled = c.find("enabled");
      std::printf(
          "  %-32s %s%s\n", c.find("id")->as_string().c_str(),
          c.find("endpoint")->as_string().c_str(),
          enabled != nullptr && enabled->is_bool() && !enabled->as_bool() ? " (disabled)" : "");
    }
    std::fflush(stdout);
  };
  options.on_error = [](const cc::Error& error) {
    std::fprintf(stderr, "%s\n", cc::describe(error).c_str());
  };

  // Block SIGINT/SIGTERM before the client's thread starts (it inherits the mask), then wait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  cc::ServiceMapClient client(std::move(options));
  if (auto s = client.start(); !s) {
    std::fprintf(stderr, "%s\n", cc::describe(s.error()).c_str());
    return 2;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  client.stop();
  return 0;
}
