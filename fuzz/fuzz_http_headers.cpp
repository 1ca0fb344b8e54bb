// The request header values the service parses itself (src/http.cpp, src/sse.cpp):
// Last-Event-ID, If-None-Match, Accept-Encoding, Authorization and X-Request-Id. Every input is
// given to every parser, each checked against a property the parser promises.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cortex_connectors/negotiation.h"
#include "cortex_connectors/sse.h"
#include "fuzz_check.h"  // last: it defines the FUZZ_CHECK() macro

namespace cc = cortex_connectors;

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool contains_nocase(std::string_view text, std::string_view needle) {
  return std::search(text.begin(), text.end(), needle.begin(), needle.end(),
                     [](char a, char b) { return lower(a) == lower(b); }) != text.end();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);  // NOLINT

  // Last-Event-ID: a value only for 1-20 digits that fit 64 bits, and it is their value.
  if (const auto id = cc::parse_last_event_id(text)) {
    FUZZ_CHECK(!text.empty() && text.size() <= 20);
    FUZZ_CHECK(std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }));
    std::string_view digits = text;
    while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
    FUZZ_CHECK(std::to_string(*id) == digits);
  }

  // If-None-Match: only "*" or a list naming the tag matches.
  constexpr std::string_view kEtag = "\"c0ffee\"";
  if (cc::if_none_match(text, kEtag)) {
    FUZZ_CHECK(trim(text) == "*" || text.find(kEtag) != std::string_view::npos);
  }

  // Accept-Encoding: a coding never mentioned (nor covered by "*") is never chosen.
  const cc::ContentEncoding chosen = cc::choose_encoding(text);
  const bool star = text.find('*') != std::string_view::npos;
  if (chosen == cc::ContentEncoding::kBrotli) FUZZ_CHECK(star || contains_nocase(text, "br"));
  if (chosen == cc::ContentEncoding::kGzip) FUZZ_CHECK(star || contains_nocase(text, "gzip"));
  FUZZ_CHECK(!cc::to_string(chosen).empty());

  // Authorization: kOk only for "Bearer <a configured key>", whatever the whitespace around.
  static const std::array<std::string, 3> kKeys = {"fuzz-api-key-1", "", "K2"};
  const cc::AuthResult auth = cc::check_bearer(text, kKeys);
  if (auth == cc::AuthResult::kOk) {
    const std::string_view t = trim(text);
    FUZZ_CHECK(t.size() > 7 && contains_nocase(t.substr(0, 6), "bearer"));
    const std::string_view token = trim(t.substr(6));
    FUZZ_CHECK(token == kKeys[0] || token == kKeys[2]);
  }
  if (trim(text).empty()) FUZZ_CHECK(auth == cc::AuthResult::kMissing);

  // X-Request-Id: echoed only when made of the safe characters.
  if (cc::is_sane_request_id(text)) {
    FUZZ_CHECK(!text.empty() && text.size() <= 128);
    for (char c : text) {
      FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-');
    }
  }
  return 0;
}
