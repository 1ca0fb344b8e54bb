#!/usr/bin/env bash
# Load benchmark of cortex-connectors-server against nginx on 127.0.0.1 (see RESULTS.md).
#
# usage: bench/load/run.sh [SERVER_BINARY]
#   SERVER_BINARY  default: <repo>/build/server/cortex-connectors-server. Prefer a Release build:
#                    cmake -S . -B build-load -DCMAKE_BUILD_TYPE=Release \
#                      -DCORTEX_CONNECTORS_BUILD_TESTS=OFF
#                    cmake --build build-load -j2 --target cortex_connectors_server \
#                      cortex_connectors_cli cortex_connectors_dashboard
#                  (the dashboard bundle next to the binary: the layout users run)
#                  The CLI (cortex-connectors, same directory) produces the reference bytes.
# environment (all optional):
#   BENCH_ROUNDS=3        wrk rounds per (connectors, connections), alternating server/nginx order
#   BENCH_DURATION=10     seconds per wrk run
#   BENCH_CONNS=16,64     wrk connection counts
#   BENCH_SIZES=3,1000    connector counts for the wrk runs
#   BENCH_COLD_RUNS=30    cold-start runs (median reported; hyperfine does as many)
#   BENCH_READY_RUNS=10   runs with 10 000 connectors (/health, /ready, service map)
#   BENCH_ONLY=throughput,cold,big   parts to run (also: static, the dashboard asset vs the map)
#   BENCH_SERVER_ENV="CONNECTORS_WORKER_THREADS=8"   extra server environment, space-separated
#   BENCH_WAIT_IDLE=0     before each wrk run, wait up to this many seconds for an idle machine
#                         (all waits together at most 60 s)
#   BENCH_PACED_MS=10     pause per request and connection of the paced -c64 run (0: skip)
#   BENCH_NGINX_SENDFILE=on   nginx sendfile on/off (tcp_nopush on, keepalive_requests 1000)
#   BENCH_NGINX_ROOT=disk     where nginx's files are: disk (the run's directory in /tmp), or
#                         tmpfs (/dev/shm: shared memory pages, as the server's memfd bodies)
#   BENCH_NICE=0          niceness of everything the run starts (server, nginx, wrk) and, as
#                         the kernel groups CPU time by session (autogroup), of this session's
#                         autogroup too, restored on exit. E.g. -10 (root) on a shared machine:
#                         other sessions' jobs then barely take CPU from the measurements
#   BENCH_JSON=FILE       also write the raw results (including wrk outputs) as JSON
#   BENCH_PIN=1           pinned mode: server and nginx (one worker) on CPU 1, wrk -t1 on CPU 0,
#                         for per-core figures; unset: nobody pinned, wrk -t2
#
# Needs wrk, hyperfine, nginx-light, curl (scripts/install-bench-deps.sh). Only 127.0.0.1
# traffic; the whole run is bounded by a 7-minute timeout (about 2.5 minutes with defaults);
# every process it starts is stopped on exit, including Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
server=${1:-$repo/build/server/cortex-connectors-server}
server=$(readlink -f "$server")
cli=$(dirname "$server")/cortex-connectors
[ -x "$cli" ] || cli=$repo/build/server/cortex-connectors

for tool in wrk hyperfine nginx curl python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "run.sh: $tool is missing; run scripts/install-bench-deps.sh" >&2
    exit 2
  fi
done
[ -x "$server" ] || { echo "run.sh: no server binary at $server" >&2; exit 2; }
[ -x "$cli" ] || { echo "run.sh: no cortex-connectors CLI next to the server binary" >&2; exit 2; }

tmp=$(mktemp -d /tmp/cortex-load.XXXXXX)
driver=""
autogroup_nice=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    wait "$driver" 2>/dev/null || true
  fi
  # Whatever the driver started and could not stop (it records every child's pid).
  if [ -f "$tmp/pids" ]; then
    while read -r pid; do
      kill -KILL "$pid" 2>/dev/null || true
    done <"$tmp/pids"
  fi
  if [ -n "$autogroup_nice" ]; then
    echo "$autogroup_nice" >/proc/self/autogroup 2>/dev/null || true
  fi
  rm -rf "$tmp" "/dev/shm/$(basename "$tmp")-www"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${BENCH_NICE:-0}" != 0 ] && [ -w /proc/self/autogroup ]; then
  old=$(sed -n 's/.* nice \(-\{0,1\}[0-9]*\)$/\1/p' /proc/self/autogroup)
  if [ -n "$old" ] && echo "$BENCH_NICE" >/proc/self/autogroup 2>/dev/null; then
    autogroup_nice=$old
    echo "run.sh: autogroup $(cat /proc/self/autogroup) (was nice $old)" >&2
  fi
fi
echo "run.sh: server $server" >&2
echo "run.sh: load average $(cut -d' ' -f1-3 /proc/loadavg) (other processes skew every figure)" >&2

nice -n "${BENCH_NICE:-0}" \
  timeout --signal=TERM --kill-after=10 420 python3 "$here/loadbench.py" \
  --server "$server" --cli "$cli" --tmp "$tmp" \
  --rounds "${BENCH_ROUNDS:-3}" --duration "${BENCH_DURATION:-10}" --conns "${BENCH_CONNS:-16,64}" \
  --cold-runs "${BENCH_COLD_RUNS:-30}" --ready-runs "${BENCH_READY_RUNS:-10}" \
  --sizes "${BENCH_SIZES:-3,1000}" --only "${BENCH_ONLY:-throughput,cold,big}" \
  --server-env "${BENCH_SERVER_ENV:-}" --paced-ms "${BENCH_PACED_MS:-10}" \
  --nginx-sendfile "${BENCH_NGINX_SENDFILE:-on}" --nginx-root "${BENCH_NGINX_ROOT:-disk}" \
  --wait-idle "${BENCH_WAIT_IDLE:-0}" \
  --json "${BENCH_JSON:-}" ${BENCH_PIN:+--pin} &
driver=$!
wait "$driver"
