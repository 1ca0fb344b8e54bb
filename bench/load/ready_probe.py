#!/usr/bin/env python3
"""exec -> first 200 of /ready, and VmRSS 1.5 s later, for one manifest (see RESULTS.md).

usage: ready_probe.py SERVER_BINARY MANIFEST RUNS [SERVER ARGS...]
environment: STATE=DIR  history state directory reused by every run (a restart); default: a new
             temporary directory per run (a first start)
Prints the median and every run. Starts the server on a free 127.0.0.1 port with throw-away keys
and stops it after each run.
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    binary, manifest, runs, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    ready, rss = [], []
    for _ in range(runs):
        port = free_port()
        state = os.environ.get("STATE") or tempfile.mkdtemp()
        env = dict(os.environ, CONNECTORS_SIGNATURE_KEY="probe-signing-key-" + "x" * 16,
                   CONNECTORS_API_KEY="probe", LOG_LEVEL="warning", CONNECTORS_STATE_DIR=state)
        t0 = time.monotonic()
        p = subprocess.Popen([binary, "--port", str(port), "--manifest", manifest] + extra,
                             env=env, stderr=subprocess.DEVNULL)
        try:
            while status(port, "/ready") != 200:
                if p.poll() is not None or time.monotonic() - t0 > 30:
                    print("server did not become ready", file=sys.stderr)
                    return 1
                time.sleep(0.0005)
            ready.append((time.monotonic() - t0) * 1000)
            time.sleep(1.5)
            with open(f"/proc/{p.pid}/status") as f:
                line = next(l for l in f if l.startswith("VmRSS"))
            rss.append(int(line.split()[1]) / 1024)
        finally:
            p.terminate()
            p.wait()
    print(f"ready median {statistics.median(ready):.1f} ms {[round(x) for x in ready]}  "
          f"RSS median {statistics.median(rss):.1f} MB {[round(x, 1) for x in rss]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
