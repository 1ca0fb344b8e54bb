// The server's own request-head checks (server/http_server.cpp: check_head, parse_head and
// RequestHead's lookups), which every byte a client sends goes through before cpp-httplib.
//
// The input is a request head; like the connection loop, the target cuts it at the first
// CRLF CRLF (appending one when there is none). Beyond "never crashes": an accepted head has a
// GET or HEAD request line, at most max_header_count header lines, each with a non-empty name
// without whitespace before its colon, at most one Authorization, no body, no Range; the parsed
// parts are views of the checked head and the path plus '?' plus query is the target.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http_server.h"

namespace srv = cortex_connectors::server;

namespace {

// A property that does not hold is a finding: report it and abort like a crash.
void check_at(bool condition, const char* what, int line) {
  if (condition) return;
  std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, line, what);
  std::abort();
}
#define check(condition) check_at(static_cast<bool>(condition), #condition, __LINE__)

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string head(reinterpret_cast<const char*>(data), size);  // NOLINT
  const auto end = head.find("\r\n\r\n");
  if (end == std::string::npos) {
    head += "\r\n\r\n";
  } else {
    head.resize(end + 4);
  }
  srv::HardeningOptions options;
  options.max_header_count = 20;
  const srv::HeadResult result = srv::check_head(head, options);
  if (result != srv::HeadResult::kOk) return 0;

  check(head.size() >= 4 && head.ends_with("\r\n\r\n"));
  const srv::RequestHead parsed = srv::parse_head(head);
  check(parsed.method == "GET" || parsed.method == "HEAD");
  check(parsed.headers.size() <= options.max_header_count);
  std::size_t authorizations = 0;
  for (const auto& [name, value] : parsed.headers) {
    check(!name.empty());
    check(name.find_first_of(" \t") == std::string_view::npos);
    check(!iequals(name, "range") && !iequals(name, "if-range"));
    check(!iequals(name, "transfer-encoding"));
    if (iequals(name, "content-length")) check(value == "0");
    if (iequals(name, "authorization")) ++authorizations;
    check(value.empty() || (value.front() != ' ' && value.back() != ' '));
  }
  check(authorizations <= 1);
  std::string rebuilt(parsed.path);
  if (parsed.query.data() != nullptr) rebuilt.append("?").append(parsed.query);
  check(rebuilt == parsed.target);
  check(parsed.path.size() <= parsed.target.size());
  (void)parsed.query_param("mode");
  (void)parsed.header("last-event-id");
  return 0;
}
