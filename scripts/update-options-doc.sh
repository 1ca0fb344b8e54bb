#!/usr/bin/env bash
# Rewrites the options table of docs/server.md (the lines between <!-- options:begin --> and
# <!-- options:end -->) from the server's own option table, as `cortex-connectors-server
# --help-markdown` prints it. Run it after adding or changing an option in server/config.cpp;
# the test "docs/server.md holds the options table the binary prints" fails until then.
#   scripts/update-options-doc.sh                    uses build/server/cortex-connectors-server
#   scripts/update-options-doc.sh path/to/cortex-connectors-server
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:-${BUILD_DIR:-build}/server/cortex-connectors-server}
table=$(mktemp)
trap 'rm -f "$table" docs/server.md.tmp' EXIT
"$server" --help-markdown >"$table"
awk -v table="$table" '
  /<!-- options:end -->/ { while ((getline line < table) > 0) print line; skip = 0 }
  !skip { print }
  /<!-- options:begin -->/ { skip = 1 }
' docs/server.md >docs/server.md.tmp
mv docs/server.md.tmp docs/server.md
