#!/usr/bin/env bash
# Installs the Debian 12 packages the HTTP load benchmark (bench/load/run.sh) needs:
# wrk (throughput and latency), hyperfine (cold start), nginx-light (the baseline),
# curl (polling), procps (ps / pgrep for the RSS checks), python3 (manifest generator).
# Idempotent: installs nothing and prints nothing when every package is already present.
# nginx-light's postinst may try to start the system service; policy-rc.d is not touched here,
# run.sh always starts its own instance with its own config on a free port.
set -euo pipefail
exec bash "$(dirname "$0")/install-deps.sh" wrk hyperfine nginx-light curl procps python3
