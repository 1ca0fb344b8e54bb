// Test helper, preloaded (LD_PRELOAD) into a program: counts the calls that load OpenSSL's error
// strings into libcrypto's table and writes the count to $OPENSSL_STRINGS_PROBE_OUT at exit.
// libcrypto and libssl reach ERR_load_strings_const() through the dynamic linker, so this
// definition, loaded first, is the one they call. See "the server skips the OpenSSL error strings
// ..." in test_server.cpp.
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include <dlfcn.h>

struct ERR_string_data_st;

namespace {

using LoadStrings = int (*)(const ERR_string_data_st*);
std::atomic<int> calls{0};

[[gnu::destructor]] void report() {
  const char* out = std::getenv("OPENSSL_STRINGS_PROBE_OUT");
  std::FILE* f = out != nullptr ? std::fopen(out, "w") : nullptr;
  if (f == nullptr) return;
  std::fprintf(f, "%d\n", calls.load());
  std::fclose(f);
}

}  // namespace

extern "C" [[gnu::visibility("default")]] int ERR_load_strings_const(
    const ERR_string_data_st* strings) {
  static const auto real =
      reinterpret_cast<LoadStrings>(::dlsym(RTLD_NEXT, "ERR_load_strings_const"));
  ++calls;
  return real(strings);
}
