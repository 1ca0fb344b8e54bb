#!/usr/bin/env bash
# Installs the Debian 12 packages the HTTP load benchmark (bench/load/run.sh) needs:
# wrk (throughput and latency), hyperfine (cold start), nginx-light (the baseline),
# curl (polling), procps (ps / pgrep for the RSS checks), python3 (manifest generator).
# Idempotent: installs nothing and prints nothing when every package is already present.
set -euo pipefail

packages=(wrk hyperfine nginx-light curl procps python3)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# nginx-light's postinst may try to start the system service; policy-rc.d is not touched here,
# run.sh always starts its own instance with its own config on a free port.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
