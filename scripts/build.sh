#!/usr/bin/env bash
# Configures and builds cortex_connectors into build/ (or $BUILD_DIR), installing the Debian
# packages it needs first. Extra arguments go to the CMake configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCORTEX_CONNECTORS_WERROR=ON "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
