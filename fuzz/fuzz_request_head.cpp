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

#include "cortex_connectors/negotiation.h"
#include "fuzz_check.h"  // last: it defines the FUZZ_CHECK() macro
#include "http_server.h"

namespace srv = cortex_connectors::server;

namespace {}  // namespace

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

  FUZZ_CHECK(head.size() >= 4 && head.ends_with("\r\n\r\n"));
  const srv::RequestHead parsed = srv::parse_head(head);
  FUZZ_CHECK(parsed.method == "GET" || parsed.method == "HEAD");
  FUZZ_CHECK(parsed.headers.size() <= options.max_header_count);
  std::size_t authorizations = 0;
  for (const auto& [name, value] : parsed.headers) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(name.find_first_of(" \t") == std::string_view::npos);
    FUZZ_CHECK(!cortex_connectors::ascii_iequals(name, "range") &&
               !cortex_connectors::ascii_iequals(name, "if-range"));
    FUZZ_CHECK(!cortex_connectors::ascii_iequals(name, "transfer-encoding"));
    if (cortex_connectors::ascii_iequals(name, "content-length")) FUZZ_CHECK(value == "0");
    if (cortex_connectors::ascii_iequals(name, "authorization")) ++authorizations;
    FUZZ_CHECK(value.empty() || (value.front() != ' ' && value.back() != ' '));
  }
  FUZZ_CHECK(authorizations <= 1);
  std::string rebuilt(parsed.path);
  if (parsed.query.data() != nullptr) rebuilt.append("?").append(parsed.query);
  FUZZ_CHECK(rebuilt == parsed.target);
  FUZZ_CHECK(parsed.path.size() <= parsed.target.size());
  (void)parsed.query_param("mode");
  (void)parsed.header("last-event-id");
  return 0;
}
