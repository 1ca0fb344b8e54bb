// Test helper, preloaded (LD_PRELOAD) into a program: counts what OpenSSL loads, the error
// strings (ERR_load_strings_const), the configuration file (CONF_modules_load_file_ex) and the
// digest algorithms fetched (EVP_MD_fetch), and writes "strings N config M fetch K" to
// $OPENSSL_STRINGS_PROBE_OUT at exit. The program and libcrypto reach them through the dynamic
// linker, so these definitions, loaded first, are the ones they call.
// See "the server declines OpenSSL's strings and configuration ..." in test_server.cpp.
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include <dlfcn.h>

struct ERR_string_data_st;
struct ossl_lib_ctx_st;
struct evp_md_st;

namespace {

std::atomic<int> strings{0};
std::atomic<int> config{0};
std::atomic<int> fetch{0};

template <class F>
F next(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

[[gnu::destructor]] void report() {
  const char* out = std::getenv("OPENSSL_STRINGS_PROBE_OUT");
  std::FILE* f = out != nullptr ? std::fopen(out, "w") : nullptr;
  if (f == nullptr) return;
  std::fprintf(f, "strings %d config %d fetch %d\n", strings.load(), config.load(), fetch.load());
  std::fclose(f);
}

}  // namespace

extern "C" [[gnu::visibility("default")]] int ERR_load_strings_const(
    const ERR_string_data_st* str) {
  using Fn = int (*)(const ERR_string_data_st*);
  static const auto real = next<Fn>("ERR_load_strings_const");
  ++strings;
  return real(str);
}

extern "C" [[gnu::visibility("default")]] int CONF_modules_load_file_ex(ossl_lib_ctx_st* libctx,
                                                                        const char* filename,
                                                                        const char* appname,
                                                                        unsigned long flags) {
  using Fn = int (*)(ossl_lib_ctx_st*, const char*, const char*, unsigned long);
  static const auto real = next<Fn>("CONF_modules_load_file_ex");
  ++config;
  return real(libctx, filename, appname, flags);
}

extern "C" [[gnu::visibility("default")]] evp_md_st* EVP_MD_fetch(ossl_lib_ctx_st* libctx,
                                                                  const char* algorithm,
                                                                  const char* properties) {
  using Fn = evp_md_st* (*)(ossl_lib_ctx_st*, const char*, const char*);
  static const auto real = next<Fn>("EVP_MD_fetch");
  ++fetch;
  return real(libctx, algorithm, properties);
}
