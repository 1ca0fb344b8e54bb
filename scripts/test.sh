#!/usr/bin/env bash
# Builds everything with warnings as errors and runs every test (unit, CLI, install + consumer).
#   scripts/test.sh                      RelWithDebInfo build in build/
#   scripts/test.sh --sanitize address,undefined   (or thread) build in build-<sanitizer>/
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=""
if [ "${1:-}" = "--sanitize" ]; then
  sanitize=${2:?--sanitize needs address,undefined or thread}
fi
if [ -n "$sanitize" ]; then
  export BUILD_DIR=${BUILD_DIR:-build-${sanitize//,/-}}
  bash scripts/build.sh -DCMAKE_BUILD_TYPE=Debug -DCORTEX_CONNECTORS_SANITIZE="$sanitize"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
  # tests/tsan.supp: reports raised inside the uninstrumented libcpp-httplib (see that file).
  export TSAN_OPTIONS="halt_on_error=1:suppressions=$PWD/tests/tsan.supp"
else
  export BUILD_DIR=${BUILD_DIR:-build}
  # The plain build also runs each benchmark briefly (bench_smoke_*), so they keep working.
  bash scripts/build.sh -DCORTEX_CONNECTORS_BUILD_BENCH=ON
fi
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)"
