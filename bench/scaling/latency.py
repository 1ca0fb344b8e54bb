#!/usr/bin/env python3
"""Change-to-last-subscriber latency across replicas (docs/scaling.md, bench/README.md).

Starts a redis-server on a free 127.0.0.1 port, one publisher and two replicas
(cortex-connectors-server --role publisher|replica), and opens --subscribers SSE streams on
each of the three. Then, --changes times, renames a changed manifest over the publisher's and
notes, per subscriber, the monotonic time at which the end of the event with the new version
arrived. Printed per group: the time from rename() to the LAST subscriber of the group.

The publisher's own subscribers are the anchor (a single server: watcher, reload, fan-out);
the replicas add the Redis write, the announcement, the replica's read, verification and
publication. "across replicas" is the later of the two replicas' last subscribers.

Usage: bench/scaling/latency.py --server build/server/cortex-connectors-server \
           [--subscribers 1000] [--changes 30] [--interval-ms 300]
"""
import argparse
import json
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

KEY = "bench-signing-key"
API = "bench-api-key"
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "..", "tests", "data", "manifests",
                       "original-fixture.manifest.json")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port_line(proc, deadline=10.0):
    """Reads the server's JSON log until the 'listening' line; returns the port."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            break
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("msg") == "listening":
            return j["port"]
    raise RuntimeError("server did not listen")


def start_server(binary, args, env, log_path):
    e = {"PATH": "/usr/bin:/bin", "CONNECTORS_SIGNATURE_KEY": KEY, "CONNECTORS_API_KEY": API,
         "LOG_LEVEL": "info", "CONNECTORS_POLL_INTERVAL_MS": "50"}
    e.update(env)
    p = subprocess.Popen([binary, "--port", "0"] + args, env=e, stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True)
    port = wait_port_line(p)
    # Keep draining the log so the server never blocks on a full pipe.
    log = open(log_path, "w")
    subprocess.Popen(["cat"], stdin=p.stderr, stdout=log)
    return p, port


class Subscriber:
    __slots__ = ("sock", "buf", "last_id", "seen_at")

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(("GET /v1/connectors/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Accept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n"
                           % API).encode())
        self.sock.setblocking(False)
        self.buf = b""
        self.last_id = 0
        self.seen_at = {}

    def feed(self, now):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        if not data:
            raise RuntimeError("stream closed")
        self.buf += data
        while True:
            end = self.buf.find(b"\n\n")
            if end < 0:
                break
            block, self.buf = self.buf[:end], self.buf[end + 2:]
            for line in block.split(b"\n"):
                if line.startswith(b"id: "):
                    v = int(line[4:])
                    if v > self.last_id:
                        self.last_id = v
                        self.seen_at[v] = now


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "/usr/bin/redis-server")
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=30)
    ap.add_argument("--interval-ms", type=int, default=300)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="scaling-bench-")
    procs = []
    try:
        rport = free_port()
        redis = subprocess.Popen([a.redis_server, "--port", str(rport), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(redis)
        time.sleep(0.3)
        url = "redis://127.0.0.1:%d" % rport
        fixture = open(FIXTURE).read()
        manifest = os.path.join(tmp, "connectors.manifest.json")
        with open(manifest, "w") as f:
            f.write(fixture)
        pub, pub_port = start_server(a.server, ["--role", "publisher", "--redis", url,
                                                "--manifest", manifest, "--no-history"],
                                     {"CONNECTORS_STATE_DIR": tmp}, os.path.join(tmp, "pub.log"))
        procs.append(pub)
        groups = {"publisher (anchor)": pub_port}
        for name in ("replica A", "replica B"):
            p, port = start_server(a.server, ["--role", "replica", "--redis", url], {},
                                   os.path.join(tmp, name.replace(" ", "_") + ".log"))
            procs.append(p)
            groups[name] = port

        sel = selectors.DefaultSelector()
        subs = {}
        for name, port in groups.items():
            subs[name] = []
            for _ in range(a.subscribers):
                s = Subscriber(port)
                subs[name].append(s)
                sel.register(s.sock, selectors.EVENT_READ, s)

        def pump(until_fn, timeout):
            end = time.monotonic() + timeout
            while not until_fn() and time.monotonic() < end:
                for key, _ in sel.select(timeout=0.05):
                    key.data.feed(time.monotonic())

        every = [s for group in subs.values() for s in group]
        pump(lambda: all(s.last_id >= 1 for s in every), 30)
        if not all(s.last_id >= 1 for s in every):
            raise RuntimeError("not every subscriber got its first event")
        version = max(s.last_id for s in every)

        results = {name: [] for name in groups}
        results["across replicas"] = []
        for i in range(a.changes):
            ttl = 119 - (i % 110)  # the payload ttl is min(this, 120)
            text = fixture.replace('"ttlSeconds": 600', '"ttlSeconds": %d' % ttl, 1)
            staged = manifest + ".tmp"
            with open(staged, "w") as f:
                f.write(text)
            version += 1
            t0 = time.monotonic()
            os.rename(staged, manifest)
            pump(lambda: all(s.last_id >= version for s in every), 10)
            missing = sum(1 for s in every if version not in s.seen_at)
            if missing:
                raise RuntimeError("change %d: %d subscribers did not see version %d"
                                   % (i, missing, version))
            lasts = {}
            for name, group in subs.items():
                lasts[name] = max(s.seen_at[version] for s in group) - t0
                results[name].append(lasts[name] * 1000)
            results["across replicas"].append(max(lasts["replica A"], lasts["replica B"]) * 1000)
            pump(lambda: False, a.interval_ms / 1000)

        print("subscribers per server: %d, changes: %d, 2 KB status events"
              % (a.subscribers, a.changes))
        print("| group | rename -> last subscriber p50 (ms) | p90 | max |")
        print("|---|---:|---:|---:|")
        for name, values in results.items():
            values.sort()
            p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
            print("| %s | %.1f | %.1f | %.1f |" % (name, statistics.median(values), p90,
                                                  values[-1]))
        anchor = statistics.median(results["publisher (anchor)"])
        print("ratio across replicas / anchor (p50): %.2f; added by Redis + replica (p50): %.1f ms"
              % (statistics.median(results["across replicas"]) / anchor,
                 statistics.median(results["across replicas"]) - anchor))
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("KEEP_TMP"):
            print("logs in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
