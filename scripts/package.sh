#!/usr/bin/env bash
# Builds the Debian packages (docs/deploying.md) in a Release tree, build-package/ (or
# $BUILD_DIR), installing the build dependencies first:
#   cortex-connectors-server_<version>_<arch>.deb   libcortexconnectors-dev_<version>_<arch>.deb
# Extra arguments go to the CMake configure step. Install with
#   sudo apt install ./build-package/cortex-connectors-server_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_dir=${BUILD_DIR:-build-package}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DCORTEX_CONNECTORS_WERROR=ON -DCORTEX_CONNECTORS_BUILD_TESTS=OFF \
  -DCORTEX_CONNECTORS_BUILD_EXAMPLES=OFF "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
(cd "$build_dir" && cpack -G DEB)
for deb in "$build_dir"/*.deb; do
  echo "== $deb"
  dpkg-deb -f "$deb" Package Version Architecture Depends
done
