// Forward declarations of the public types, for headers that only pass them around.
#pragma once

namespace cortex_connectors {

class Json;
struct Issue;
struct Error;
template <class T>
class Result;
class Status;
struct JsonParseOptions;

}  // namespace cortex_connectors
