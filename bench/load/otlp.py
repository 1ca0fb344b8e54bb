#!/usr/bin/env python3
"""Request throughput of cortex-connectors-server with OTLP span export on vs off, in one run.

usage: bench/load/otlp.py --server BUILD/server/cortex-connectors-server
                          [--rounds 3] [--duration 5] [--conns 16]
                          [--ratio 0.1] [--before OTHER/cortex-connectors-server]

Two servers on the same manifest (examples/connectors.manifest.json, 3 connectors), both with
ENABLE_PROMETHEUS=true and LOG_LEVEL=warning: "off" without OTEL_EXPORTER_OTLP_ENDPOINT, "on"
exporting to a collector on 127.0.0.1 (a Python process here, answering 200 to every
POST /v1/traces and counting spans without parsing them, so that it takes little of the CPU). wrk -t2 -c16 --latency on GET /v1/connectors/service-map
alternates between them (off, on, then on, off, ...) so drift on a shared machine hits both.
--ratio R adds a server exporting with OTEL_TRACES_SAMPLER=traceidratio and
OTEL_TRACES_SAMPLER_ARG=R ("on-ratio"); --before BINARY adds one exporting every span with another
build of the server ("on-before", e.g. an earlier commit), so a change is measured in the same run.
Reports the median requests/s and p99 of each, their ratio to "off", and the spans the "on"
server exported and dropped (its /metrics). Everything on 127.0.0.1, every child stopped on exit.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadbench as lb  # noqa: E402

COLLECTOR = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
spans = 0
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global spans
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        spans += body.count(b'"spanId"')  # cheap: the collector shares the 2 cores
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def do_GET(self):
        out = str(spans).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return -1.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ratio", type=float, default=None)
    ap.add_argument("--before", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cortex-otlp-bench."))
    lb.TMP = tmp
    (tmp / "logs").mkdir()
    mdir = tmp / "manifests"
    mdir.mkdir()
    manifest = mdir / "m3.json"
    manifest.write_bytes((lb.REPO / "examples" / "connectors.manifest.json").read_bytes())
    rows: dict[str, list[dict]] = {"off": [], "on": []}
    if args.ratio is not None:
        rows["on-ratio"] = []
    if args.before:
        rows["on-before"] = []
    try:
        cport = lb.free_port()
        collector = lb.track(subprocess.Popen([sys.executable, "-c", COLLECTOR, str(cport)]))
        deadline = time.perf_counter() + 10
        while lb.http_get(cport, "/", auth=False)[0] != 200:
            if time.perf_counter() > deadline:
                raise RuntimeError("collector did not start")
            time.sleep(0.05)
        common = {"ENABLE_PROMETHEUS": "true"}
        export = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{cport}",
                  "OTEL_BSP_SCHEDULE_DELAY": "1000"}
        variants = [("off", args.server, {}), ("on", args.server, export)]
        if args.ratio is not None:
            variants.append(("on-ratio", args.server,
                             {**export, "OTEL_TRACES_SAMPLER": "traceidratio",
                              "OTEL_TRACES_SAMPLER_ARG": str(args.ratio)}))
        if args.before:
            variants.append(("on-before", args.before, export))
        servers = {}
        for name, binary, extra in variants:
            port = lb.free_port()
            p = lb.start_server(binary, manifest, port, {**common, **extra},
                                tmp / "logs" / f"server-{name}.log")
            if lb.wait_status(port, "/ready", 200, time.perf_counter() + 30, auth=False,
                              proc=p) is None:
                raise RuntimeError(f"server {name} not ready; see {tmp}/logs")
            servers[name] = (p, port)
        for name, (p, port) in servers.items():  # warm-up, not reported
            lb.run_wrk(f"http://127.0.0.1:{port}{lb.MAP_PATH}", args.conns, 1, args.threads,
                       True, [])
        for rnd in range(args.rounds):
            names = list(rows)
            order = names if rnd % 2 == 0 else names[::-1]
            for name in order:
                p, port = servers[name]
                lb.log(f"  wrk export {name:9} -c{args.conns} round {rnd + 1}/{args.rounds}")
                r = lb.run_wrk(f"http://127.0.0.1:{port}{lb.MAP_PATH}", args.conns,
                               args.duration, args.threads, True, [p.pid])
                r.pop("raw", None)
                rows[name].append(r)
        time.sleep(1.5)  # one schedule delay: the last batch leaves
        _, text = lb.http_get(servers["on"][1], "/metrics")
        text = text.decode()
        exported = metric(text, "cortex_connectors_otlp_spans_exported_total")
        dropped_full = metric(text,
                              'cortex_connectors_otlp_spans_dropped_total{reason="queue_full"}')
        dropped_failed = metric(
            text, 'cortex_connectors_otlp_spans_dropped_total{reason="export_failed"}')
        received = int(lb.http_get(cport, "/", auth=False)[1] or b"0")
    finally:
        lb.stop_all()

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[name])

    print(f"load average at the end: {lb.loadavg()}")
    print("| export | requests/s (median) | p99 ms (median) | server CPU s / 1000 req | runs |")
    print("|---|---|---|---|---|")
    for name in rows:
        cpu = statistics.median(1000 * r["target_cpu_s"] / max(r["requests"], 1)
                                for r in rows[name])
        print(f"| {name} | {med(name, 'rps'):.0f} | {med(name, 'p99_ms'):.2f} | {cpu:.3f} | "
              + ", ".join(f"{r['rps']:.0f}" for r in rows[name]) + " |")
    for name in rows:
        if name != "off":
            print(f"{name}/off requests/s: {med(name, 'rps') / med('off', 'rps'):.3f}")
    print(f"spans: exported {exported:.0f}, collector received {received}, dropped queue_full "
          f"{dropped_full:.0f}, export_failed {dropped_failed:.0f}")
    print(json.dumps({"cmd": rows["on"][0]["cmd"] if rows["on"] else ""}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
