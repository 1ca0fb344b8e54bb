// ECMAScript Number.prototype.toString for finite doubles (ECMA-262 section 6.1.6.1.20), which
// RFC 8785 section 3.2.2.3 requires. The shortest round-trip digits come from std::to_chars
// (libstdc++ implements Ryu); this file only lays them out as ECMAScript does.
#pragma once

#include <string>

namespace cortex_connectors::internal {

// Appends the ECMAScript form of `value`. REQUIRES: std::isfinite(value).
void append_es6_number(std::string& out, double value);

}  // namespace cortex_connectors::internal
