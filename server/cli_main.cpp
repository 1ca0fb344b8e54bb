// cortex-connectors: the command-line tool.
//
//   canonicalize [FILE|-]   print the RFC 8785 form of a JSON document (no trailing newline)
//   verify [FILE|-]         check a saved service-map body's signature (key from
//                           CONNECTORS_SIGNATURE_KEY); exit 0 valid, 1 invalid
//
// Exit codes: 0 success, 1 the input is invalid, 2 usage or configuration error.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cortex_connectors/cortex_connectors.h"

namespace cc = cortex_connectors;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage =
    "usage: cortex-connectors <command> [args]\n"
    "  canonicalize [FILE|-]   print the RFC 8785 canonical form of a JSON document\n"
    "  verify [FILE|-]         check a service-map body's signature (CONNECTORS_SIGNATURE_KEY)\n"
    "  version                 print the library version\n";

int usage_error(std::string_view message) {
  fmt::print(stderr, "[brAInwav] {}\n{}", message, kUsage);
  return kExitUsage;
}

// Reads a whole file, or standard input for "-". Returns nullopt after printing the reason.
std::optional<std::string> read_input(std::string_view path) {
  std::FILE* f = path == "-" ? stdin : std::fopen(std::string(path).c_str(), "rb");
  if (f == nullptr) {
    fmt::print(stderr, "[brAInwav] cannot open {}: {}\n", path, std::strerror(errno));
    return std::nullopt;
  }
  std::string data;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  if (f != stdin) std::fclose(f);
  if (failed) {
    fmt::print(stderr, "[brAInwav] cannot read {}\n", path);
    return std::nullopt;
  }
  return data;
}

int cmd_canonicalize(std::span<char*> args) {
  if (args.size() > 1) return usage_error("canonicalize takes at most one FILE");
  auto input = read_input(args.empty() ? "-" : args[0]);
  if (!input) return kExitInvalid;
  auto canonical = cc::canonicalize(*input);
  if (!canonical) {
    fmt::print(stderr, "{}\n", cc::describe(canonical.error()));
    return kExitInvalid;
  }
  std::fwrite(canonical->data(), 1, canonical->size(), stdout);
  return kExitOk;
}

int cmd_verify(std::span<char*> args) {
  if (args.size() > 1) return usage_error("verify takes at most one FILE");
  const char* key = std::getenv("CONNECTORS_SIGNATURE_KEY");
  if (key == nullptr || *key == '\0') {
    return usage_error("CONNECTORS_SIGNATURE_KEY is not set");
  }
  auto input = read_input(args.empty() ? "-" : args[0]);
  if (!input) return kExitInvalid;
  auto verified = cc::verify_signed_body(*input, cc::as_bytes(key));
  if (!verified) {
    fmt::print(stderr, "{}\n", cc::describe(verified.error()));
    return kExitInvalid;
  }
  fmt::print("[brAInwav] signature valid\n");
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::span<char*> all(argv, static_cast<std::size_t>(argc));
  if (all.size() < 2) return usage_error("missing command");
  const std::string_view command = all[1];
  auto args = all.subspan(2);
  try {
    if (command == "canonicalize") return cmd_canonicalize(args);
    if (command == "verify") return cmd_verify(args);
    if (command == "version") {
      fmt::print("cortex-connectors {}\n", cc::version_string());
      return kExitOk;
    }
    if (command == "--help" || command == "-h" || command == "help") {
      fmt::print("{}", kUsage);
      return kExitOk;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "[brAInwav] internal error: {}\n", e.what());
    return kExitInvalid;
  }
  return usage_error(fmt::format("unknown command \"{}\"", command));
}
