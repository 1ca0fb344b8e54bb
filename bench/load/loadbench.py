#!/usr/bin/env python3
"""HTTP load benchmark of cortex-connectors-server against nginx (driver of bench/load/run.sh).

Everything runs on 127.0.0.1 and every child has a time limit. Children are tracked and killed
in `finally` (and their pids written to <tmp>/pids for run.sh's trap).

Measures, for the targets of the server issue:
  throughput  wrk -t2 -c{16,64} -d10s --latency on GET /v1/connectors/service-map, 3 and 1 000
              connectors, server vs nginx serving the same bytes from a file; p50/p99; CPU time
              per request of the server / nginx / wrk and the CPU used by other processes during
              the run (the machine may be shared).
  cold start  exec -> first 200 of the service map (3 connectors), >= 20 runs, median, and
              nginx's own cold start on the same bytes (one process), run by run; plus
              hyperfine over coldstart-wrapper.sh (includes bash + curl overhead).
  10 000      exec -> first /health 200, -> first /ready 200, -> first service-map 200.
  RSS         VmRSS idle after ready (3 connectors), and 10 000 connectors after ready and after
              a short load, next to the service-map body size.
  static      wrk on a content-hashed dashboard asset vs GET /v1/connectors/service-map (3
              connectors) on the same server, rounds alternating, identity and br (the server's
              built-in bundle: it must sit next to the binary, see docs/dashboard.md).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SIGNING_KEY = "load-bench-signing-key"
API_KEY = "load-bench-api-key"
MAP_PATH = "/v1/connectors/service-map"
MB = 1024 * 1024

CHILDREN: list[subprocess.Popen] = []
IDLE_BUDGET_S = 60.0  # all waits for an idle machine together, to keep the run bounded
TMP: Path = Path("/tmp")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ processes

def track(p: subprocess.Popen) -> subprocess.Popen:
    CHILDREN.append(p)
    with open(TMP / "pids", "a", encoding="ascii") as f:
        f.write(f"{p.pid}\n")
    return p


def stop(p: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 3.0) -> float | None:
    """Signals `p`, waits up to `grace` s (then SIGKILL). Returns seconds to exit after `sig`."""
    if p.poll() is not None:
        return None
    t0 = time.perf_counter()
    try:
        p.send_signal(sig)
        p.wait(timeout=grace)
        return time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=5)
        return None
    finally:
        if p in CHILDREN:
            CHILDREN.remove(p)


def stop_all() -> None:
    for p in list(CHILDREN):
        stop(p, signal.SIGTERM, 2.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONNECTORS_", "MCP_", "NO_AUTH", "LOG_LEVEL"))}
    env.update({"CONNECTORS_SIGNATURE_KEY": SIGNING_KEY, "CONNECTORS_API_KEY": API_KEY,
                "LOG_LEVEL": "warning"})
    env.update(extra)
    return env


# Pinned mode (--pin): the server and nginx run on SERVE_CPU, wrk (one thread) on LOAD_CPU, so
# each figure is one core's work against one core's load. None: unpinned.
SERVE_CPU: int | None = None
LOAD_CPU: int | None = None


def on_cpu(cpu: int | None):
    """A preexec_fn that pins the child (and what it forks) to `cpu`; None when unpinned."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def state_dir(name: str) -> Path:
    d = TMP / "state" / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def start_server(binary: str, manifest: Path, port: int, extra_env: dict[str, str],
                 stderr_path: Path, state: str = "") -> subprocess.Popen:
    """The server on `manifest` with the history on, as users run it: its store in a state
    directory of the run's own, one per manifest (a store belongs to one manifest), kept across
    the starts of that manifest (a restart finds its history, as a service's does); `state`
    names another one, for a second server on the same manifest at the same time."""
    env = server_env(extra_env)
    env.setdefault("CONNECTORS_STATE_DIR", str(state_dir(state or manifest.stem)))
    err = open(stderr_path, "ab")
    try:
        return track(subprocess.Popen(
            [binary, "--port", str(port), "--manifest", str(manifest)],
            env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
            preexec_fn=on_cpu(SERVE_CPU)))
    finally:
        err.close()


# ------------------------------------------------------------------------------------ HTTP probe

def http_get(port: int, path: str, auth: bool = True, drain: bool = True,
             timeout: float = 2.0) -> tuple[int | None, bytes]:
    """One GET with Connection: close. Returns (status, body) or (None, b"") when refused."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except (ConnectionRefusedError, socket.timeout, OSError):
        return None, b""
    with s:
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if auth:
            req += f"Authorization: Bearer {API_KEY}\r\n"
        s.sendall((req + "\r\n").encode())
        buf = b""
        try:
            while b"\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    return None, b""
                buf += chunk
            status = int(buf.split(b" ", 2)[1])
            if not drain:
                return status, b""
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
        except (ConnectionResetError, socket.timeout, OSError, ValueError, IndexError):
            return None, b""
    head, _, body = buf.partition(b"\r\n\r\n")
    return status, body


def wait_status(port: int, path: str, want: int, deadline: float, auth: bool = True,
                proc: subprocess.Popen | None = None, pause: float = 0.0002) -> float | None:
    """Polls until `path` answers `want`; returns perf_counter() at the answer, None on timeout."""
    while time.perf_counter() < deadline:
        status, _ = http_get(port, path, auth=auth, drain=False)
        if status == want:
            return time.perf_counter()
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(pause)
    return None


# ------------------------------------------------------------------------------------ /proc

def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])  # kB, or a count for Threads
    except OSError:
        pass
    return out


def proc_cpu_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return 0


def children_of(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                kids.append(int(d.name))
        except (OSError, ValueError, IndexError):
            continue
    return kids


def all_cpu_ticks() -> dict[int, tuple[str, int]]:
    """pid -> (comm, utime + stime) of every process."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(d.name)] = (stat[stat.index("(") + 1:stat.rindex(")")],
                                int(fields[11]) + int(fields[12]))
        except (OSError, ValueError, IndexError):
            continue
    return out


def system_busy_ticks() -> tuple[int, int]:
    """(busy, steal) jiffies of all CPUs from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = f[:8]
    return user + nice + system + irq + softirq, steal


def wait_idle(max_s: float, threshold_cpus: float = 0.15) -> float:
    """Waits (at most `max_s`) until the whole machine used < `threshold_cpus` CPUs over the last
    second (our servers sit idle meanwhile, so that is other people's load). Returns the wait."""
    global IDLE_BUDGET_S
    max_s = min(max_s, IDLE_BUDGET_S)
    if max_s <= 0:
        return 0.0
    hz = os.sysconf("SC_CLK_TCK")
    t0 = time.perf_counter()
    try:
        return _wait_idle(max_s, threshold_cpus, hz, t0)
    finally:
        IDLE_BUDGET_S -= time.perf_counter() - t0


def _wait_idle(max_s: float, threshold_cpus: float, hz: int, t0: float) -> float:
    while time.perf_counter() - t0 < max_s:
        b0, _ = system_busy_ticks()
        time.sleep(1.0)
        b1, _ = system_busy_ticks()
        if (b1 - b0) / hz < threshold_cpus:
            break
    return time.perf_counter() - t0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ------------------------------------------------------------------------------------ wrk

UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(s: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", s.strip())
    if not m:
        raise ValueError(s)
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(out: str) -> dict:
    r: dict = {"raw": out}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([0-9.]+\w+), ([0-9.]+\w+) read", out)
    r["requests"] = int(m.group(1)) if m else 0
    r["read"] = m.group(3) if m else "?"
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        r[f"p{pct}_ms"] = to_ms(m.group(1)) if m else None
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    r["max_ms"] = to_ms(m.group(3)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


def run_wrk(url: str, conns: int, duration: int, threads: int, auth: bool,
            cpu_pids: list[int], delay_ms: int = 0, headers: list[str] | None = None) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
    if auth:
        cmd += ["-H", f"Authorization: Bearer {API_KEY}"]
    for h in headers or []:
        cmd += ["-H", h]
    env = None
    if delay_ms:
        cmd += ["-s", str(HERE / "paced.lua")]
        env = dict(os.environ, WRK_DELAY_MS=str(delay_ms))
    cmd.append(url)
    ticks0 = sum(proc_cpu_ticks(p) for p in cpu_pids)
    procs0 = all_cpu_ticks()
    busy0, steal0 = system_busy_ticks()
    ru0 = os.times()
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30,
                         env=env, preexec_fn=on_cpu(LOAD_CPU)).stdout
    wall = time.perf_counter() - t0
    ru1 = os.times()
    busy1, steal1 = system_busy_ticks()
    ticks1 = sum(proc_cpu_ticks(p) for p in cpu_pids)
    procs1 = all_cpu_ticks()
    r = parse_wrk(out)
    hz = os.sysconf("SC_CLK_TCK")
    # Who else ran (exited processes are missed; their CPU stays in other_cpu_s).
    ours = set(cpu_pids)
    others: dict[str, int] = {}
    for pid, (comm, t) in procs1.items():
        if pid in ours or pid == os.getpid():
            continue
        d = t - procs0.get(pid, (comm, 0))[1]
        if d > 0:
            others[comm] = others.get(comm, 0) + d
    r["top_others"] = ", ".join(f"{c} {t / hz:.1f}" for c, t in
                                sorted(others.items(), key=lambda x: -x[1])[:3])
    r["cmd"] = " ".join(cmd)
    r["target_cpu_s"] = (ticks1 - ticks0) / hz
    r["wrk_cpu_s"] = (ru1.children_user - ru0.children_user) + (ru1.children_system -
                                                                ru0.children_system)
    busy_s = (busy1 - busy0) / hz
    r["other_cpu_s"] = max(0.0, busy_s - r["target_cpu_s"] - r["wrk_cpu_s"])
    r["steal_s"] = (steal1 - steal0) / hz
    r["wall_s"] = wall
    return r


# ------------------------------------------------------------------------------------ nginx

def shm_www() -> Path:
    """nginx's files with --nginx-root tmpfs (run.sh removes it too)."""
    return Path("/dev/shm") / f"{TMP.name}-www"


def start_nginx(root: Path, port: int, workdir: Path, sendfile: bool = True,
                single_process: bool = False) -> subprocess.Popen:
    """nginx on 127.0.0.1:port serving `root`; `single_process`: one process, no master (the
    fastest nginx start, the cold-start anchor)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (workdir / d).mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    if single_process:
        procs = "master_process off;\nworker_processes 1;"
    else:
        procs = "worker_processes 1;" if SERVE_CPU is not None else "worker_processes 2;"
    conf = f"""# minimal nginx for bench/load: the same bytes as the server, from a file
{user}{procs}
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  types {{ }}
  default_type application/json;
  access_log off;
  sendfile {"on" if sendfile else "off"};
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 5s;
  keepalive_requests 1000;
  client_body_temp_path {workdir}/client_body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
  }}
}}
"""
    (workdir / "nginx.conf").write_text(conf)
    err = open(workdir / "logs" / "stderr.log", "ab")
    try:
        p = track(subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
                                   stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                   preexec_fn=on_cpu(SERVE_CPU)))
    finally:
        err.close()
    return p


# ------------------------------------------------------------------------------------ steps

def body_bytes(cli: str, manifest: Path) -> bytes:
    env = server_env({})
    out = subprocess.run([cli, "service-map", "--manifest", str(manifest), "--plain"], env=env,
                         capture_output=True, timeout=60, check=True)
    return out.stdout


def ready_server(args, manifest: Path, name: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    p = start_server(args.server, manifest, port, args.server_env,
                     TMP / "logs" / f"server-{name}.log")
    if wait_status(port, "/ready", 200, time.perf_counter() + 30, auth=False, proc=p) is None:
        raise RuntimeError(f"server ({name}) not ready within 30 s: {TMP}/logs/server-{name}.log")
    return p, port


def throughput(args, results: dict, manifests: dict[int, Path], bodies: dict[int, bytes],
               nginx_port: int, nginx: subprocess.Popen) -> None:
    rows = results.setdefault("throughput", [])
    for n in args.sizes:
        p, port = ready_server(args, manifests[n], f"tp{n}")
        st, got = http_get(port, MAP_PATH)
        assert st == 200 and got == bodies[n], f"server body differs from the CLI's ({n})"
        st, got = http_get(nginx_port, f"/{n}{MAP_PATH}", auth=False)
        assert st == 200 and got == bodies[n], f"nginx body differs ({n})"
        if n == 3:
            time.sleep(0.2)
            results["rss_idle_3"] = proc_status(p.pid)
        srv_url = f"http://127.0.0.1:{port}{MAP_PATH}"
        ngx_url = f"http://127.0.0.1:{nginx_port}/{n}{MAP_PATH}"
        # Warm-up (page cache, thread pool, TCP) — not reported.
        run_wrk(srv_url, 16, 1, args.threads, True, [])
        run_wrk(ngx_url, 16, 1, args.threads, False, [])
        for c in args.conns:
            for rnd in range(args.rounds):
                nginx_pids = [nginx.pid] + children_of(nginx.pid)
                order = [("server", srv_url, True, [p.pid]), ("nginx", ngx_url, False, nginx_pids)]
                if rnd % 2 == 1:
                    order.reverse()
                for who, url, auth, pids in order:
                    waited = wait_idle(args.wait_idle)
                    log(f"  wrk {who:6} {n:>5} connectors -c{c} round {rnd + 1}/{args.rounds}"
                        f" (waited {waited:.0f} s for an idle machine)")
                    r = run_wrk(url, c, args.duration, args.threads, auth, pids)
                    r.update({"target": who, "connectors": n, "conns": c, "round": rnd + 1,
                              "waited_s": waited})
                    rows.append(r)
        if n == 3 and args.paced_ms > 0:
            # Below saturation: 64 connections, each pausing paced_ms between requests.
            nginx_pids = [nginx.pid] + children_of(nginx.pid)
            order = [("server", srv_url, True, [p.pid]), ("nginx", ngx_url, False, nginx_pids)]
            for who, url, auth, pids in order:
                waited = wait_idle(args.wait_idle)
                log(f"  wrk {who:6} {n:>5} connectors -c64 paced {args.paced_ms} ms")
                r = run_wrk(url, 64, args.duration, args.threads, auth, pids, args.paced_ms)
                r.update({"target": who, "connectors": n, "conns": 64, "round": 1,
                          "waited_s": waited, "paced_ms": args.paced_ms})
                results.setdefault("paced", []).append(r)
        results.setdefault("rss_after_load", {})[n] = proc_status(p.pid)
        results.setdefault("threads", {})[n] = proc_status(p.pid).get("Threads")
        results.setdefault("sigterm_exit_s", {})[f"after_load_{n}"] = stop(p)


def static_asset(args, results: dict, manifest3: Path, map_body: bytes) -> None:
    """A hashed static asset against the service map, same server, same wrk settings.

    The asset holds the service map's own bytes (a bundle written here, served through
    APPS_BUNDLE_DIR), so both routes send identical bodies and identical br variants and the
    comparison is of the routes alone; the real dashboard.js of the built bundle is measured too.
    """
    import hashlib
    bundle = TMP / "bundle"
    bundle.mkdir(exist_ok=True)
    same = f"map.{hashlib.sha256(map_body).hexdigest()[:16]}.json"
    (bundle / same).write_bytes(map_body)
    (bundle / "index.html").write_bytes(b"<!doctype html><title>bench</title>")
    port = free_port()
    p = start_server(args.server, manifest3, port,
                     {**args.server_env, "APPS_BUNDLE_DIR": str(bundle)},
                     TMP / "logs" / "server-static.log")
    if wait_status(port, "/ready", 200, time.perf_counter() + 30, auth=False, proc=p) is None:
        raise RuntimeError(f"server (static) not ready: {TMP}/logs/server-static.log")
    asset = f"/apps/chatgpt-dashboard/{same}"
    st, asset_body = http_get(port, asset, auth=False)
    st_map, got_map = http_get(port, MAP_PATH)
    assert st == 200 and st_map == 200 and asset_body == got_map == map_body
    # The built bundle's script, served by a second server with the default bundle.
    port2 = free_port()
    p2 = start_server(args.server, manifest3, port2, args.server_env,
                      TMP / "logs" / "server-static-default.log", state="m3-second")
    wait_status(port2, "/ready", 200, time.perf_counter() + 30, auth=False, proc=p2)
    st, index = http_get(port2, "/apps/chatgpt-dashboard/", auth=False)
    m = re.search(rb'src="(dashboard\.[0-9a-f]{16}\.js)"', index) if st == 200 else None
    script = "/apps/chatgpt-dashboard/" + m.group(1).decode() if m else ""
    script_bytes = len(http_get(port2, script, auth=False)[1]) if script else 0
    results["static_sizes"] = {"asset": asset, "bytes": len(map_body), "script": script,
                               "script_bytes": script_bytes}
    rows = results.setdefault("static", [])
    base, base2 = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port2}"
    c = args.conns[0]
    for encoding in ("identity", "br"):
        headers = [f"Accept-Encoding: {encoding}"]
        run_wrk(base + asset, 16, 1, args.threads, False, [], headers=headers)  # warm-up
        run_wrk(base + MAP_PATH, 16, 1, args.threads, True, [], headers=headers)
        for rnd in range(args.rounds):
            order = [("asset", base + asset, False, p), ("service-map", base + MAP_PATH, True, p)]
            if script:
                order.append(("dashboard.js", base2 + script, False, p2))
            if rnd % 2 == 1:
                order.reverse()
            for who, url, auth, proc in order:
                waited = wait_idle(args.wait_idle)
                log(f"  wrk {who:12} {encoding:8} -c{c} round {rnd + 1}/{args.rounds}")
                r = run_wrk(url, c, args.duration, args.threads, auth, [proc.pid],
                            headers=headers)
                r.update({"target": who, "encoding": encoding, "conns": c, "round": rnd + 1,
                          "waited_s": waited})
                rows.append(r)
    stop(p)
    stop(p2)


def cold_start(args, results: dict, manifest3: Path) -> None:
    # The anchor, interleaved run by run: nginx (one process, master_process off) serving the
    # same bytes from a file, exec -> first 200 polled the same way.
    root = TMP / "cold-nginx-root"
    (root / MAP_PATH.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (root / MAP_PATH.lstrip("/")).write_bytes(body_bytes(args.cli, manifest3))
    times, exits, nginx_times = [], [], []
    for i in range(args.cold_runs):
        port = free_port()
        t0 = time.perf_counter()
        p = start_server(args.server, manifest3, port, args.server_env,
                         TMP / "logs" / "server-cold.log")
        t1 = wait_status(port, MAP_PATH, 200, t0 + 10, proc=p)
        if t1 is None:
            stop(p, signal.SIGKILL)
            raise RuntimeError(f"cold start run {i}: no 200 within 10 s")
        times.append((t1 - t0) * 1000)
        exits.append(stop(p))
        port = free_port()
        t0 = time.perf_counter()
        n = start_nginx(root, port, TMP / "cold-nginx", args.nginx_sendfile == "on",
                        single_process=True)
        t1 = wait_status(port, MAP_PATH, 200, t0 + 10, auth=False, proc=n)
        if t1 is None:
            stop(n, signal.SIGKILL)
            raise RuntimeError(f"nginx cold start run {i}: no 200 within 10 s")
        nginx_times.append((t1 - t0) * 1000)
        stop(n, signal.SIGQUIT)
    results["cold_ms"] = times
    results["nginx_cold_ms"] = nginx_times
    results["sigterm_exit_s"]["cold"] = [e for e in exits if e is not None]
    # Where the time goes: /health answers once the socket is served, /ready once the snapshot
    # is published (parse, sign, compress); separate runs so the figure above stays pure.
    results["cold_breakdown"], _, _ = startup_runs(args, manifest3, 10, "cold")

    # Cross-check with hyperfine over a wrapper (includes bash, curl exec and SIGKILL).
    if shutil.which("hyperfine"):
        port = free_port()
        out = TMP / "hyperfine.json"
        cmd = ["hyperfine", "-N", "--warmup", "3", "--runs", str(args.cold_runs),
               "--export-json", str(out), "--style", "none",
               f"{HERE / 'coldstart-wrapper.sh'} {args.server} {port} {manifest3}"]
        env = server_env(args.server_env)
        env.setdefault("CONNECTORS_STATE_DIR", str(state_dir(manifest3.stem)))
        subprocess.run(cmd, env=env, capture_output=True, timeout=120, check=True)
        h = json.loads(out.read_text())["results"][0]
        results["hyperfine_cold_ms"] = {"median": h["median"] * 1000, "mean": h["mean"] * 1000,
                                        "min": h["min"] * 1000, "max": h["max"] * 1000,
                                        "runs": len(h["times"]), "cmd": cmd[-1]}
        # Baseline: the same wrapper against a port nothing listens on is not meaningful; measure
        # the cost of one curl exec instead, the wrapper's fixed overhead per poll.
        port2 = free_port()
        base = TMP / "hyperfine-curl.json"
        subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", "20", "--export-json",
                        str(base), "--style", "none", "-i",
                        f"curl -s -o /dev/null http://127.0.0.1:{port2}/"],
                       capture_output=True, timeout=60, check=True)
        results["hyperfine_curl_ms"] = json.loads(base.read_text())["results"][0]["median"] * 1000


def startup_runs(args, manifest: Path, runs: int, name: str,
                 keep_last: bool = False) -> tuple[list[dict], subprocess.Popen | None, int]:
    """exec -> first 200 of /health, then of /ready, then of the service map, `runs` times."""
    out = []
    for i in range(runs):
        port = free_port()
        t0 = time.perf_counter()
        p = start_server(args.server, manifest, port, args.server_env,
                     TMP / "logs" / f"server-{name}.log")
        deadline = t0 + 30
        th = wait_status(port, "/health", 200, deadline, auth=False, proc=p)
        tr = wait_status(port, "/ready", 200, deadline, auth=False, proc=p)
        tm = wait_status(port, MAP_PATH, 200, deadline, proc=p)
        if None in (th, tr, tm):
            stop(p, signal.SIGKILL)
            raise RuntimeError(f"{name} run {i}: no answer within 30 s")
        out.append({"health_ms": (th - t0) * 1000, "ready_ms": (tr - t0) * 1000,
                    "map_ms": (tm - t0) * 1000})
        if keep_last and i == runs - 1:
            return out, p, port
        stop(p)
    return out, None, 0


def big_manifest(args, results: dict, manifest: Path, body: bytes) -> None:
    runs, p, port = startup_runs(args, manifest, args.ready_runs, "10k", keep_last=True)
    results["big"] = runs
    st, got = http_get(port, MAP_PATH)
    assert st == 200 and got == body, "server body differs from the CLI's (10 000)"
    time.sleep(0.5)
    results["rss_10k_idle"] = proc_status(p.pid)
    r = run_wrk(f"http://127.0.0.1:{port}{MAP_PATH}", 16, 3, args.threads, True, [p.pid])
    results["rss_10k_load"] = proc_status(p.pid)
    results["rps_10k_c16_3s"] = r["rps"]
    results["sigterm_exit_s"]["after_load_10k"] = stop(p)


# ------------------------------------------------------------------------------------ report

def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def report(args, results: dict, bodies: dict[int, bytes]) -> str:
    out: list[str] = []
    w = out.append
    m = results["machine"]
    w(f"machine: {m['nproc']} CPUs, {m['model']}, kernel {m['kernel']}; "
      f"loadavg start {m['load_start']}, end {results.get('load_end', '?')}; "
      f"niceness of the benchmark processes {m['nice']}, autogroup {m['autogroup']}")
    w(f"source:  {m['git']} (now; the binary may be older)")
    w(f"server:  {args.server} (build type: {m['build_type']})"
      + (f", env {args.server_env}" if args.server_env else ""))
    w(f"tools:   {m['wrk']}; {m['nginx']} (sendfile {args.nginx_sendfile}, files on "
      f"{'tmpfs' if args.nginx_root == 'tmpfs' else 'disk'}); {m['hyperfine']}")
    w(f"pinned:  {m['pinned']} (wrk -t{args.threads})")
    w("")
    targets: list[tuple[str, str, str, bool]] = []

    if "static" in results:
        sz = results["static_sizes"]
        w(f"## Static asset vs service map: wrk -t{args.threads} -d{args.duration}s, same server, "
          f"{args.rounds} round(s), alternating order")
        w("")
        w(f"asset {sz['asset']}: the service map's own {sz['bytes']} bytes as a hashed file; "
          f"dashboard.js = {sz['script'] or 'not found'} ({sz['script_bytes']} bytes identity), "
          "on a second server with the built bundle")
        w("")
        w("| encoding | conns | target | round | req/s | p50 ms | p99 ms | CPU µs/req | other CPU s |")
        w("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for r in results["static"]:
            cpu = r["target_cpu_s"] / r["requests"] * 1e6 if r["requests"] else 0.0
            w(f"| {r['encoding']} | {r['conns']} | {r['target']} | {r['round']} | {r['rps']:.0f} "
              f"| {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {cpu:.1f} | {r['other_cpu_s']:.1f} |")
        w("")
        def med_of(enc: str, target: str, key) -> float | None:
            xs = [key(r) for r in results["static"]
                  if r["encoding"] == enc and r["target"] == target and r["requests"]]
            return statistics.median(xs) if xs else None

        def cpu_us(r: dict) -> float:
            return r["target_cpu_s"] / r["requests"] * 1e6

        for enc in ("identity", "br"):
            a, b = med_of(enc, "asset", lambda r: r["rps"]), med_of(enc, "service-map",
                                                                   lambda r: r["rps"])
            ca, cb = med_of(enc, "asset", cpu_us), med_of(enc, "service-map", cpu_us)
            if a and b and ca and cb:
                w(f"{enc}: hashed asset / service map, medians over rounds: req/s {a / b:.2f}, "
                  f"server CPU per request {ca / cb:.2f}")
        w("")

    if "throughput" in results:
        rows = results["throughput"]
        w(f"## Throughput: GET {MAP_PATH}, wrk -t{args.threads} -d{args.duration}s --latency"
          f" ({args.rounds} round(s), alternating order)")
        w("")
        w("| connectors | body bytes | conns | target | round | req/s | p50 ms | p99 ms | max ms "
          "| CPU µs/req (target) | wrk CPU s | other CPU s | top others (CPU s) | errors |")
        w("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for r in rows:
            cpu_us = r["target_cpu_s"] / r["requests"] * 1e6 if r["requests"] else float("nan")
            w(f"| {r['connectors']} | {len(bodies[r['connectors']])} | {r['conns']} | "
              f"{r['target']} | {r['round']} | {r['rps']:.0f} | {r['p50_ms']:.3f} | "
              f"{r['p99_ms']:.3f} | {r['max_ms']:.2f} | {cpu_us:.1f} | {r['wrk_cpu_s']:.1f} | "
              f"{r['other_cpu_s']:.1f} | {r.get('top_others', '')} | "
              f"{r['socket_errors'] + r['non2xx']} |")
        w("")
        w("Medians over the rounds. *CPU ratio* = (nginx + wrk) CPU per request ÷ (server + wrk) "
          "CPU per request: the throughput ratio to expect when the two cores are saturated by "
          "the benchmark alone; it moves much less with other people's load than req/s does. "
          "*other CPU* = the most CPU-seconds other processes used during one of these runs "
          f"(0 on an idle machine; {2 * args.duration} = both cores for the whole run).")
        w("")
        w("| connectors | conns | server req/s | nginx req/s | ratio server/nginx | CPU ratio | "
          "server p50 / p99 ms | nginx p50 / p99 ms | other CPU s | target ≥ 0.7 |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n in args.sizes:
            for c in args.conns:
                s = [r for r in rows if r["connectors"] == n and r["conns"] == c
                     and r["target"] == "server"]
                g = [r for r in rows if r["connectors"] == n and r["conns"] == c
                     and r["target"] == "nginx"]
                srps, grps = med([r["rps"] for r in s]), med([r["rps"] for r in g])
                ratio = srps / grps if grps else float("nan")
                ok = ratio >= 0.7
                def per_req(rs: list[dict]) -> float:
                    return med([(r["target_cpu_s"] + r["wrk_cpu_s"]) / r["requests"]
                                for r in rs if r["requests"]])
                cpu = per_req(g) / per_req(s)
                other = max(r["other_cpu_s"] for r in s + g)
                w(f"| {n} | {c} | {srps:.0f} | {grps:.0f} | **{ratio:.2f}** | {cpu:.2f} | "
                  f"{med([r['p50_ms'] for r in s]):.3f} / {med([r['p99_ms'] for r in s]):.3f} | "
                  f"{med([r['p50_ms'] for r in g]):.3f} / {med([r['p99_ms'] for r in g]):.3f} | "
                  f"{other:.1f} | {verdict(ok)} |")
                targets.append((f"throughput ≥ 0.7 × nginx, {n} connectors, c{c}",
                                "≥ 0.70", f"{ratio:.2f}", ok))
                if n == 3 and c == 64:
                    p99 = med([r["p99_ms"] for r in s])
                    targets.append(("p99 ≤ 2 ms at 64 connections, 3 connectors, saturated",
                                    "≤ 2 ms",
                                    f"{p99:.3f} ms", p99 <= 2.0))
        paced = results.get("paced", [])
        if paced:
            w("")
            w(f"### Below saturation: 3 connectors, wrk -c64 with a {args.paced_ms} ms pause per "
              "request and connection (paced.lua)")
            w("")
            w("| target | req/s | p50 ms | p75 ms | p90 ms | p99 ms | max ms | CPU µs/req | "
              "other CPU s |")
            w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in paced:
                cpu_us = r["target_cpu_s"] / r["requests"] * 1e6 if r["requests"] else 0
                w(f"| {r['target']} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p75_ms']:.3f} | "
                  f"{r['p90_ms']:.3f} | {r['p99_ms']:.3f} | {r['max_ms']:.2f} | {cpu_us:.1f} | "
                  f"{r['other_cpu_s']:.1f} |")
            sp = [r for r in paced if r["target"] == "server"]
            if sp:
                targets.append((f"p99 ≤ 2 ms at 64 connections, 3 connectors, paced "
                                f"({sp[0]['rps']:.0f} req/s)", "≤ 2 ms",
                                f"{sp[0]['p99_ms']:.3f} ms", sp[0]["p99_ms"] <= 2.0))
        errs = sum(r["socket_errors"] + r["non2xx"]
                   for r in rows + results.get("paced", []))
        w("")
        w(f"wrk socket errors + non-2xx responses over all runs: {errs}")
        w("")

    if "cold_ms" in results:
        c = results["cold_ms"]
        w(f"## Cold start: exec -> first 200 of the service map, 3 connectors ({len(c)} runs)")
        w("")
        w(f"python loop (poll every ~0.2 ms, fresh connection per poll): median {med(c):.2f} ms, "
          f"min {min(c):.2f}, p90 {pct(c, 0.9):.2f}, max {max(c):.2f}")
        ng = results.get("nginx_cold_ms", [])
        if ng:
            w(f"nginx, same bytes from a file, one process (master_process off), interleaved run "
              f"by run: median {med(ng):.2f} ms, min {min(ng):.2f}, p90 {pct(ng, 0.9):.2f}; "
              f"**server / nginx = {med(c) / med(ng):.2f}x**")
        if "hyperfine_cold_ms" in results:
            h = results["hyperfine_cold_ms"]
            w(f"hyperfine over coldstart-wrapper.sh ({h['runs']} runs, includes bash, curl execs "
              f"and SIGKILL+wait): median {h['median']:.2f} ms, min {h['min']:.2f}, "
              f"max {h['max']:.2f}; one curl exec alone: {results['hyperfine_curl_ms']:.2f} ms")
        b = results.get("cold_breakdown", [])
        if b:
            w(f"breakdown ({len(b)} other runs, polling /health, then /ready, then the map): "
              f"exec -> /health 200 median {med([r['health_ms'] for r in b]):.2f} ms, "
              f"-> /ready 200 {med([r['ready_ms'] for r in b]):.2f} ms, "
              f"-> service map 200 {med([r['map_ms'] for r in b]):.2f} ms")
        e = results["sigterm_exit_s"].get("cold", [])
        if e:
            w(f"SIGTERM -> exit (idle server): median {med(e) * 1000:.1f} ms, "
              f"max {max(e) * 1000:.1f} ms")
        targets.append(("cold start median, 3 connectors", "≤ 10 ms", f"{med(c):.2f} ms",
                        med(c) <= 10.0))
        if ng:
            targets.append(("cold start, 3 connectors, default layout", "≤ 1.5 × nginx",
                            f"{med(c) / med(ng):.2f} ×", med(c) / med(ng) <= 1.5))
        w("")

    if "big" in results:
        b = results["big"]
        body = len(bodies[10000])
        h = [r["health_ms"] for r in b]
        rd = [r["ready_ms"] for r in b]
        mp = [r["map_ms"] for r in b]
        w(f"## 10 000 connectors ({len(b)} runs; manifest {results['manifest_10k_bytes']} bytes, "
          f"service map {body} bytes)")
        w("")
        w("| exec -> first 200 of | median ms | min | max |")
        w("|---|---:|---:|---:|")
        for name, xs in (("/health", h), ("/ready", rd), ("service map", mp)):
            w(f"| {name} | {med(xs):.2f} | {min(xs):.2f} | {max(xs):.2f} |")
        w("")
        targets.append(("/health, 10 000 connectors", "≤ 10 ms", f"{med(h):.2f} ms",
                        med(h) <= 10.0))
        targets.append(("/ready, 10 000 connectors", "≤ 100 ms", f"{med(rd):.2f} ms",
                        med(rd) <= 100.0))

    w("## RSS (VmRSS from /proc/PID/status)")
    w("")
    w("| state | VmRSS MB | VmHWM MB | RssAnon MB | RssFile MB | threads |")
    w("|---|---:|---:|---:|---:|---:|")

    def rss_row(label: str, s: dict) -> None:
        if s:
            w(f"| {label} | {s.get('VmRSS', 0) / 1024:.1f} | {s.get('VmHWM', 0) / 1024:.1f} | "
              f"{s.get('RssAnon', 0) / 1024:.1f} | {s.get('RssFile', 0) / 1024:.1f} | "
              f"{s.get('Threads', 0)} |")
    rss_row("3 connectors, idle after ready", results.get("rss_idle_3", {}))
    for n, s in results.get("rss_after_load", {}).items():
        rss_row(f"{n} connectors, after the wrk runs", s)
    rss_row("10 000 connectors, idle after ready", results.get("rss_10k_idle", {}))
    rss_row("10 000 connectors, after wrk -c16 -d3s", results.get("rss_10k_load", {}))
    w("")
    if "rss_idle_3" in results:
        idle = results["rss_idle_3"]["VmRSS"] / 1024
        targets.append(("idle RSS, 3 connectors", "≤ 16 MB", f"{idle:.1f} MB", idle <= 16.0))
    if "rss_10k_idle" in results:
        body = len(bodies[10000])
        limit = (3 * body + 16 * MB) / MB
        for label, key in (("idle", "rss_10k_idle"), ("after load", "rss_10k_load")):
            v = results[key]["VmRSS"] / 1024
            targets.append((f"RSS 10 000 connectors ({label}) ≤ 3 × body + 16 MB",
                            f"≤ {limit:.1f} MB (body {body / MB:.2f} MB)", f"{v:.1f} MB",
                            v <= limit))
    w("## Targets")
    w("")
    w("| target | limit | measured | verdict |")
    w("|---|---|---|---|")
    for name, limit, got, ok in targets:
        w(f"| {name} | {limit} | {got} | {verdict(ok)} |")
    w("")
    se = results.get("sigterm_exit_s", {})
    after = {k: v for k, v in se.items() if k != "cold"}
    if after:
        w("SIGTERM -> exit after load: " + ", ".join(
            f"{k} {v * 1000:.0f} ms" if v is not None else f"{k} >3 s (killed)"
            for k, v in after.items()))
    return "\n".join(out)


def machine_info(args) -> dict:
    def sh(cmd: list[str]) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    model = "?"
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    build_type = "unknown"
    cache = Path(args.server).resolve().parent.parent / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", cache.read_text(), re.M)
        build_type = m.group(1) if m else "unknown"
    # The source the binary was configured from (CMakeCache next to it), and its git state.
    src = REPO
    if cache.exists():
        m = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", cache.read_text(), re.M)
        src = Path(m.group(1)) if m else REPO
    r = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        git = f"{src} (not a git checkout)"
    else:
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--", "src", "include", "server",
             "CMakeLists.txt", "cmake"], capture_output=True, text=True, timeout=10).stdout
        files = [line.split(maxsplit=1)[1] for line in dirty.splitlines() if line.strip()]
        git = f"{src} at {r.stdout.strip()}" + (
            " + uncommitted changes in " + ", ".join(files) if files else " (clean)")
    return {"nproc": os.cpu_count(), "model": model, "kernel": os.uname().release, "git": git,
            "load_start": loadavg(), "build_type": build_type, "nice": os.nice(0),
            "pinned": f"server/nginx CPU {SERVE_CPU}, wrk -t1 CPU {LOAD_CPU}" if SERVE_CPU is not None else "no",
            "autogroup": sh(["cat", "/proc/self/autogroup"]),
            "wrk": sh(["wrk", "--version"]).splitlines()[0].split(" Copyright")[0],
            "nginx": sh(["nginx", "-v"]), "hyperfine": sh(["hyperfine", "--version"])}


def main() -> int:
    global TMP, SERVE_CPU, LOAD_CPU
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conns", default="16,64")
    ap.add_argument("--sizes", default="3,1000", help="connector counts for the wrk runs")
    ap.add_argument("--cold-runs", type=int, default=30)
    ap.add_argument("--ready-runs", type=int, default=10)
    ap.add_argument("--only", default="throughput,cold,big",
                    help="comma list of throughput, cold, big, static")
    ap.add_argument("--server-env", default="", help="extra server env, 'K=V K=V'")
    ap.add_argument("--wait-idle", type=float, default=0.0,
                    help="before each wrk run, wait up to this many s for an idle machine")
    ap.add_argument("--paced-ms", type=int, default=10,
                    help="delay per request and connection of the paced c64 run (0: skip it)")
    ap.add_argument("--nginx-sendfile", choices=("on", "off"), default="on")
    ap.add_argument("--nginx-root", choices=("disk", "tmpfs"), default="disk")
    ap.add_argument("--json", default="", help="write the raw results here too")
    ap.add_argument("--pin", action="store_true",
                    help="server and nginx on CPU 1 (nginx: one worker), wrk -t1 on CPU 0")
    args = ap.parse_args()
    if args.pin:
        SERVE_CPU, LOAD_CPU = 1, 0
        args.threads = 1
    args.conns = [int(c) for c in args.conns.split(",")]
    args.sizes = [int(c) for c in args.sizes.split(",")]
    assert set(args.sizes) <= {3, 1000}, "--sizes: 3 and/or 1000"
    args.server_env = dict(kv.split("=", 1) for kv in args.server_env.split())
    only = set(args.only.split(","))
    TMP = Path(args.tmp)

    def on_signal(signum, _frame):
        stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    results: dict = {"machine": machine_info(args), "sigterm_exit_s": {}}
    log(f"machine: {results['machine']}")
    try:
        # Manifests in a directory of their own: the server's watcher re-reads (and hashes) the
        # manifest on any inotify event in its directory, so logs must not be written there.
        mdir = TMP / "manifests"
        mdir.mkdir()
        (TMP / "logs").mkdir()
        manifests = {3: mdir / "m3.json", 1000: mdir / "m1000.json", 10000: mdir / "m10000.json"}
        shutil.copy(REPO / "examples" / "connectors.manifest.json", manifests[3])
        for n in (1000, 10000):
            subprocess.run([sys.executable, str(HERE / "gen_manifest.py"), str(n),
                            str(manifests[n])], check=True, timeout=60)
        results["manifest_10k_bytes"] = manifests[10000].stat().st_size
        bodies = {n: body_bytes(args.cli, m) for n, m in manifests.items()}
        # nginx's files on the disk's file system (ext4 here), or with --nginx-root tmpfs in
        # /dev/shm: shared memory, as the server's memfd bodies (RESULTS.md, "1 000 connectors").
        www = TMP / "www" if args.nginx_root == "disk" else shm_www()
        for n in (3, 1000):
            d = www / str(n) / "v1" / "connectors"
            d.mkdir(parents=True, exist_ok=True)
            (d / "service-map").write_bytes(bodies[n])
        os.chmod(TMP, 0o755)

        if "throughput" in only:
            nginx_port = free_port()
            nginx = start_nginx(www, nginx_port, TMP / "nginx", args.nginx_sendfile == "on")
            if wait_status(nginx_port, f"/3{MAP_PATH}", 200, time.perf_counter() + 10,
                           auth=False, proc=nginx) is None:
                raise RuntimeError(f"nginx did not start; see {TMP}/nginx/logs/")
            # Both workers must exist before their CPU time is counted (the first 200 can come
            # from the first worker while the master still forks the second).
            deadline = time.perf_counter() + 5
            while len(children_of(nginx.pid)) < 2 and time.perf_counter() < deadline:
                time.sleep(0.05)
            log("throughput (wrk) ...")
            throughput(args, results, manifests, bodies, nginx_port, nginx)
            stop(nginx, signal.SIGQUIT)
        if "static" in only:
            wait_idle(args.wait_idle)
            log("static asset vs service map ...")
            static_asset(args, results, manifests[3], bodies[3])
        if "cold" in only:
            wait_idle(args.wait_idle)
            log("cold start ...")
            cold_start(args, results, manifests[3])
        if "big" in only:
            wait_idle(args.wait_idle)
            log("10 000 connectors ...")
            big_manifest(args, results, manifests[10000], bodies[10000])
        results["load_end"] = loadavg()
    finally:
        stop_all()
        shutil.rmtree(shm_www(), ignore_errors=True)
    text = report(args, results, bodies)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
