#!/usr/bin/env bash
# Builds the project and runs the server in --dev mode on the bundled example manifest:
# random signing and API keys are generated and printed once, with a curl command to try.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build} bash scripts/build.sh
exec "${BUILD_DIR:-build}/server/cortex-connectors-server" --dev "$@"
