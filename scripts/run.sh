#!/usr/bin/env bash
# Builds the project and runs the main program on the bundled example manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build} bash scripts/build.sh
exec "${BUILD_DIR:-build}/server/cortex-connectors" canonicalize examples/connectors.manifest.json
