// cortex-connectors: the command-line tool.
//
//   canonicalize [FILE|-]   print the RFC 8785 form of a JSON document (no trailing newline)
//   verify [FILE|-]         check a saved service-map body's signature (key from
//                           CONNECTORS_SIGNATURE_KEY); exit 0 valid, 1 invalid
//   verify --public-key KEY | --keys-url-file FILE [FILE|-]
//                           check its Ed25519 "signatures" against pinned public keys instead
//   keygen OUT [--not-before T] [--not-after T]
//                           write a new Ed25519 key file (mode 0600, never overwritten) and
//                           print its kid and public key
//   validate PATH           exit 0 if the manifest is valid, else 1 and every error, one per
//                           line, JSON pointer first
//   service-map [--manifest PATH] [--plain]
//                           print the signed service-map body (pretty, or with --plain the exact
//                           canonical bytes the server serves)
//
// Exit codes: 0 success, 1 the input is invalid, 2 usage or configuration error.
#include <cerrno>
#include <chrono>
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
#include <sys/stat.h>

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
    "  verify (--public-key KEY | --keys-url-file FILE)... [FILE|-]\n"
    "                          check its Ed25519 signatures against pinned public keys\n"
    "  keygen OUT [--not-before RFC3339] [--not-after RFC3339]\n"
    "                          write a new Ed25519 key file (0600) and print kid and public key\n"
    "  validate PATH           check a connectors manifest; every error, one per line\n"
    "  service-map [--manifest PATH] [--plain]\n"
    "                          print the signed service map (CONNECTORS_SIGNATURE_KEY)\n"
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

// verify with pinned Ed25519 public keys: the body's "signatures" over its canonical payload.
int cmd_verify_public(const cc::PublicKeySet& keys, std::string_view path) {
  auto input = read_input(path);
  if (!input) return kExitInvalid;
  auto doc = cc::parse_json(*input);
  const cc::Json* payload = doc && doc->is_object() ? doc->find("payload") : nullptr;
  if (payload == nullptr || !payload->is_object()) {
    fmt::print(stderr, "[brAInwav] not a signed service-map body\n");
    return kExitInvalid;
  }
  const cc::Json* signatures = doc->find("signatures");
  auto canonical = cc::canonical_json(*payload);
  if (!canonical) {
    fmt::print(stderr, "{}\n", cc::describe(canonical.error()));
    return kExitInvalid;
  }
  auto kid = cc::verify_ed25519_signatures(signatures != nullptr ? *signatures : cc::Json(), keys,
                                           *canonical);
  if (!kid) {
    fmt::print(stderr, "{}\n", cc::describe(kid.error()));
    return kExitInvalid;
  }
  fmt::print("[brAInwav] Ed25519 signature valid (kid {})\n", *kid);
  return kExitOk;
}

int cmd_verify(std::span<char*> args) {
  cc::PublicKeySet keys;
  bool pinned = false;
  std::vector<char*> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--public-key" || a == "--keys-url-file") {
      if (i + 1 >= args.size()) return usage_error(fmt::format("verify: {} needs a value", a));
      const std::string_view value = args[++i];
      pinned = true;
      if (a == "--public-key") {
        auto key = cc::parse_public_key(value);
        if (!key) return usage_error("verify: " + key.error().message);
        keys.push_back(std::move(*key));
      } else {
        auto text = read_input(value);
        if (!text) return kExitUsage;
        auto set = cc::parse_keys_document(*text);
        if (!set) return usage_error(fmt::format("verify: {}: {}", value, set.error().message));
        keys.insert(keys.end(), set->begin(), set->end());
      }
    } else if (a.starts_with("--") && a.size() > 2) {
      return usage_error(fmt::format("verify: unknown option \"{}\"", a.substr(0, 64)));
    } else {
      rest.push_back(args[i]);
    }
  }
  if (rest.size() > 1) return usage_error("verify takes at most one FILE");
  if (pinned) return cmd_verify_public(keys, rest.empty() ? "-" : rest[0]);
  args = std::span<char*>(rest);
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

// Prints a manifest error: the summary, then one "pointer: message" line per finding.
void print_manifest_error(const cc::Error& error) {
  fmt::print(stderr, "{}\n", error.message);
  for (const auto& issue : error.issues) {
    fmt::print(stderr, "{}: {}\n", issue.pointer.empty() ? "(root)" : issue.pointer, issue.message);
  }
}

int cmd_validate(std::span<char*> args) {
  if (args.size() != 1) return usage_error("validate takes exactly one PATH");
  auto loaded = cc::load_manifest(std::string_view(args[0]));
  if (!loaded) {
    print_manifest_error(loaded.error());
    return kExitInvalid;
  }
  fmt::print("[brAInwav] {}: valid manifest, {} connectors\n", loaded->file.path,
             loaded->manifest.connectors.size());
  return kExitOk;
}

int cmd_keygen(std::span<char*> args) {
  std::optional<std::string> out;
  std::string not_before;
  std::string not_after;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--not-before" || a == "--not-after") {
      if (i + 1 >= args.size()) return usage_error(fmt::format("keygen: {} needs a value", a));
      const std::string_view v = args[++i];
      if (!cc::is_rfc3339_date_time(v)) {
        return usage_error(fmt::format("keygen: {} must be an RFC 3339 date-time", a));
      }
      (a == "--not-before" ? not_before : not_after) = std::string(v);
    } else if (a.starts_with("--") || out) {
      return usage_error(fmt::format("keygen: unexpected argument \"{}\"", a.substr(0, 64)));
    } else {
      out = std::string(a);
    }
  }
  if (!out) return usage_error("keygen takes an OUT path");
  auto key = cc::Ed25519Key::generate();
  key.set_validity(std::move(not_before), std::move(not_after));
  if (auto written = cc::write_ed25519_key_file(*out, key); !written) {
    fmt::print(stderr, "{}\n", written.error().message);
    return kExitInvalid;
  }
  fmt::print("[brAInwav] wrote Ed25519 key file {} (mode 0600)\nkid: {}\npublic key: {}\n", *out,
             key.kid(), key.public_key().key_base64url());
  return kExitOk;
}

int cmd_service_map(std::span<char*> args) {
  std::optional<std::string_view> manifest_path;
  bool plain = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--plain") {
      plain = true;
    } else if (a == "--manifest" && i + 1 < args.size()) {
      manifest_path = args[++i];
    } else if (a.starts_with("--manifest=")) {
      manifest_path = a.substr(11);
    } else {
      return usage_error(fmt::format("service-map: unexpected argument \"{}\"", a));
    }
  }
  const char* key = std::getenv("CONNECTORS_SIGNATURE_KEY");
  if (key == nullptr || *key == '\0') return usage_error("CONNECTORS_SIGNATURE_KEY is not set");
  auto loaded = cc::load_manifest(manifest_path);
  if (!loaded) {
    print_manifest_error(loaded.error());
    return kExitInvalid;
  }
  // Without generatedAt in the manifest, the file's modification time stands in for the load
  // time, so that repeated runs on unchanged content print the same bytes.
  struct stat st {};
  auto when = std::chrono::system_clock::now();
  if (::stat(loaded->file.path.c_str(), &st) == 0) {
    when = std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
  }
  auto signed_map = cc::sign_service_map(
      cc::build_service_map(loaded->manifest, cc::format_rfc3339(when)), cc::as_bytes(key));
  if (!signed_map) {
    print_manifest_error(signed_map.error());
    return kExitInvalid;
  }
  if (plain) {
    std::fwrite(signed_map->body.data(), 1, signed_map->body.size(), stdout);
    return kExitOk;
  }
  cc::Json body = cc::Json::object();
  body.set("payload", std::move(signed_map->payload));
  body.set("signature", signed_map->signature);
  fmt::print("{}\n", *cc::pretty_json(body));
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
    if (command == "validate") return cmd_validate(args);
    if (command == "keygen") return cmd_keygen(args);
    if (command == "service-map") return cmd_service_map(args);
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
