// cortex_connectors_precompress DIR: writes FILE.gz and FILE.br beside every regular file below
// DIR, as nginx's gzip_static and brotli_static and the server's dashboard bundle
// (server/static_files.h) read them. The dashboard bundle step runs it at build time, so that a
// starting server loads the compressed bodies instead of making them. Both files are written for
// every file, with the compressors and settings the server itself uses
// (internal::static_gzip(), static_brotli()); the server keeps a representation only when it is
// smaller. The output depends on the input bytes only. A build tool: not installed.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "internal/compress.h"

namespace fs = std::filesystem;

namespace {

bool read_file(const fs::path& path, std::string& out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool ok = std::ferror(f) == 0;
  std::fclose(f);
  return ok;
}

bool write_file(const fs::path& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return (std::fclose(f) == 0) && ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: cortex_connectors_precompress DIR\n");
    return 2;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(argv[1])) {
    const auto ext = entry.path().extension();
    if (entry.is_regular_file() && ext != ".gz" && ext != ".br") files.push_back(entry.path());
  }
  for (const auto& path : files) {
    std::string bytes;
    if (!read_file(path, bytes)) {
      std::fprintf(stderr, "cortex_connectors_precompress: cannot read %s\n", path.c_str());
      return 1;
    }
    fs::path gz = path;
    gz += ".gz";
    fs::path br = path;
    br += ".br";
    if (!write_file(gz, cortex_connectors::internal::static_gzip(bytes)) ||
        !write_file(br, cortex_connectors::internal::static_brotli(bytes))) {
      std::fprintf(stderr, "cortex_connectors_precompress: cannot write beside %s\n", path.c_str());
      return 1;
    }
  }
  return 0;
}
