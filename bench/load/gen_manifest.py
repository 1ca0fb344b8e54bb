#!/usr/bin/env python3
"""Writes a valid connectors manifest with N synthetic connectors (bench/load/run.sh input).

usage: gen_manifest.py N OUT.json
Deterministic: the same N gives the same bytes (fixed "generatedAt", so the service map the
server serves equals `cortex-connectors service-map --plain` byte for byte).
"""
import json
import sys


def connector(i: int) -> dict:
    return {
        "id": f"c-{i:06d}",
        "name": f"Connector {i}",
        "version": "1.0.0",
        "endpoint": f"https://c{i}.example.invalid/mcp",
        "auth": {"type": "bearer", "headerName": "Authorization"},
        "scopes": ["s:read", "s:write"],
        "ttlSeconds": 300,
        "description": f"Synthetic load-test connector number {i}.",
        "tags": ["a", "b"],
        "quotas": {"perMinute": 60},
        "metadata": {"owner": "team"},
    }


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    n = int(sys.argv[1])
    doc = {
        "id": "01J7X5MB4K1ZW0000000000000",
        "manifestVersion": "1",
        "generatedAt": "2025-10-10T00:00:00Z",
        "connectors": [connector(i) for i in range(1, n + 1)],
    }
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
