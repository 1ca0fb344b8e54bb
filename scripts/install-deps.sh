#!/usr/bin/env bash
# Installs the Debian 12 packages cortex_connectors builds, tests and benchmarks with, or, when
# packages are named as arguments, those instead (scripts/install-bench-deps.sh does that).
# Idempotent: installs nothing and prints nothing when every package is already present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git python3
  libsimdjson-dev libsodium-dev libfmt-dev prometheus-cpp-dev catch2
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev libsqlite3-dev
  libsystemd-dev  # sd_notify for the Type=notify unit (server/service_notify.h)
  systemd dpkg-dev  # packaging tests: systemd-analyze checks the unit; cpack runs dpkg-shlibdeps
  libbenchmark-dev clang-format
  libhiredis-dev redis-server  # scaling roles (server/redis_*.cpp) and their tests
  clang libclang-rt-14-dev  # libFuzzer: scripts/fuzz.sh
  prometheus  # promtool checks the metrics text in the tests
  chromium chromium-driver python3-selenium  # the dashboard's browser test (tests/e2e/)
  python3-jsonschema  # the manifest's JSON Schema checked by an independent validator
)
[ $# -gt 0 ] && packages=("$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
