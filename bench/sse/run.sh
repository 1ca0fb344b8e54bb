#!/usr/bin/env bash
# SSE speed benchmark of cortex-connectors-server (see bench/sse/RESULTS.md).
#
# usage: bench/sse/run.sh
# Builds the server (Release, $BENCH_BUILD_DIR, default <repo>/build-sse) and the client
# bench/sse/sse_subscribers.cpp, then, on 127.0.0.1 only:
#   fanout  for each C in $BENCH_LEVELS: a fresh server; its RSS/threads with 0 subscribers; the
#           client opens C subscribers from one epoll process, records RSS/threads, then publishes
#           $BENCH_SMALL_PUBLISHES ~2 KB and $BENCH_LARGE_PUBLISHES ~200 KB events by renaming a
#           new manifest over the served one, and times every subscriber's receipt.
#   wrk     one server; wrk -t2 -c16 -d${BENCH_WRK_SECONDS}s on GET /v1/connectors/service-map with
#           no subscribers and with $BENCH_WRK_SUBSCRIBERS connected, alternating, $BENCH_WRK_ROUNDS
#           times.
# environment (all optional):
#   BENCH_PHASES="fanout wrk"   BENCH_LEVELS="1000 10000 20000 10000:delta"  (C:delta: ?mode=delta)
#   BENCH_SMALL_PUBLISHES=30    BENCH_LARGE_PUBLISHES=8 (5 at C >= 20000)
#   BENCH_SMALL_CONNECTORS=6    BENCH_LARGE_CONNECTORS=710   (~2 KB and ~200 KB events)
#   BENCH_WRK_SUBSCRIBERS=5000  BENCH_WRK_SECONDS=10  BENCH_WRK_ROUNDS=3
#   BENCH_SERVER_ENV="CONNECTORS_WORKER_THREADS=8"   extra server environment, space-separated
#   BENCH_SOURCES=8             client source addresses 127.0.0.1..127.0.0.N (ephemeral ports)
#   BENCH_NICE=-10              run server, client and wrk at this nice value (default: unchanged)
#   BENCH_OUT=DIR               results (JSON, logs, summary.md); default $BENCH_BUILD_DIR/sse-results
# The whole run is bounded (timeout 600 s around the measurements); every process it starts is
# stopped on exit, including Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD_DIR:-$repo/build-sse}
out=${BENCH_OUT:-$build/sse-results}
phases=${BENCH_PHASES:-fanout wrk}
levels=${BENCH_LEVELS:-1000 10000 20000 10000:delta}
small_n=${BENCH_SMALL_CONNECTORS:-6}
large_n=${BENCH_LARGE_CONNECTORS:-710}
small_pubs=${BENCH_SMALL_PUBLISHES:-30}
large_pubs=${BENCH_LARGE_PUBLISHES:-8}
wrk_subs=${BENCH_WRK_SUBSCRIBERS:-5000}
wrk_secs=${BENCH_WRK_SECONDS:-10}
wrk_rounds=${BENCH_WRK_ROUNDS:-3}
key=bench-api-key
sources=${BENCH_SOURCES:-8}
nice_cmd=()
[ -n "${BENCH_NICE:-}" ] && nice_cmd=(nice -n "$BENCH_NICE")

if [ "${1:-}" != "--measure" ]; then
  for tool in cmake g++ wrk curl python3 timeout; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 2; }
  done
  # Subscribers need descriptors on both sides. Raising the hard limit needs CAP_SYS_RESOURCE.
  if ! ulimit -Hn 65536 2>/dev/null; then
    echo "run.sh: cannot raise the hard descriptor limit above $(ulimit -Hn) (no CAP_SYS_RESOURCE?)" >&2
  fi
  ulimit -Sn "$(ulimit -Hn)"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release \
      -DCORTEX_CONNECTORS_BUILD_TESTS=OFF -DCORTEX_CONNECTORS_BUILD_EXAMPLES=OFF >/dev/null
  fi
  cmake --build "$build" -j2 --target cortex_connectors_server >/dev/null
  g++ -O2 -std=c++20 -Wall -Wextra "$here/sse_subscribers.cpp" -o "$build/sse_subscribers" -lpthread
  # The measurements run in a child bounded in time; its own EXIT trap stops what it started.
  exec timeout --signal=TERM --kill-after=15 600 "$0" --measure
fi

server_bin=$build/server/cortex-connectors-server
client_bin=$build/sse_subscribers
mkdir -p "$out"
tmp=$(mktemp -d /tmp/cortex-sse.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "run.sh: $*" >&2; }
status_of() {  # PID -> "rss_kb threads"
  awk '/^VmRSS:/{r=$2} /^Threads:/{t=$2} END{print r, t}' "/proc/$1/status"
}

server_pid=""
port=""
start_server() {  # LABEL
  "$client_bin" --print-manifest "$small_n" >"$tmp/manifest.json"
  local log=$out/server-$1.log
  # shellcheck disable=SC2086
  "${nice_cmd[@]}" env CONNECTORS_SIGNATURE_KEY=bench-signing-key CONNECTORS_API_KEY=$key LOG_LEVEL=warning \
    ENABLE_PROMETHEUS=true ${BENCH_SERVER_ENV:-} \
    "$server_bin" --port 0 --manifest "$tmp/manifest.json" 2>"$log" &
  server_pid=$!
  pids+=("$server_pid")
  port=""
  for _ in $(seq 100); do
    port=$(grep -o '"msg":"listening"[^}]*' "$log" 2>/dev/null | grep -o '"port":[0-9]*' | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { say "server did not start"; cat "$log" >&2; exit 1; }
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" = 200 ] && break
    sleep 0.1
  done
  sleep 0.5
}
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

{
  echo "date: $(date -u +%FT%TZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p')"
  echo "kernel: $(uname -r)"
  echo "nofile: soft $(ulimit -Sn) hard $(ulimit -Hn)"
  echo "server env: ${BENCH_SERVER_ENV:-(default)}; nice: ${BENCH_NICE:-(unchanged)}; client sources: $sources"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt" >&2

if [[ " $phases " == *" fanout "* ]]; then
  for level in $levels; do
    # "C" or "C:delta" (the subscribers ask for ?mode=delta).
    c=${level%%:*}
    label=c$c
    delta=()
    if [ "$level" != "$c" ]; then
      label=c$c-${level#*:}
      delta=(--delta)
    fi
    pubs=$large_pubs
    [ "$c" -ge 20000 ] && pubs=$(( large_pubs < 5 ? large_pubs : 5 ))
    start_server "$label"
    read -r rss0 thr0 < <(status_of "$server_pid")
    say "$label: server idle RSS ${rss0} kB, $thr0 threads; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "{\"connections\":0,\"rss_kb\":$rss0,\"threads\":$thr0}" >"$out/idle-$label.json"
    "${nice_cmd[@]}" "$client_bin" --port "$port" --key "$key" -c "$c" --sources "$sources" \
      --server-pid "$server_pid" --manifest "$tmp/manifest.json" --metrics "${delta[@]}" \
      --publish "2KB:$small_n:$small_pubs,200KB:$large_n:$pubs" \
      --label "$label" --json "$out/fanout-$label.json" &
    pids+=("$!")
    wait "$!"
    stop_server
  done
fi

wrk_run() {  # LABEL
  local f=$out/wrk-$1.txt
  "${nice_cmd[@]}" wrk -t2 -c16 -d"${wrk_secs}s" --latency -H "Authorization: Bearer $key" \
    "http://127.0.0.1:$port/v1/connectors/service-map" >"$f" 2>&1
  say "wrk $1: $(grep 'Requests/sec' "$f") (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
}

if [[ " $phases " == *" wrk "* ]]; then
  start_server wrk
  # Warm-up (discarded): first connections, caches, the CPU governor.
  wrk -t2 -c16 -d2s -H "Authorization: Bearer $key" \
    "http://127.0.0.1:$port/v1/connectors/service-map" >/dev/null 2>&1
  for round in $(seq "$wrk_rounds"); do
    read -r rss thr < <(status_of "$server_pid")
    echo "{\"connections\":0,\"rss_kb\":$rss,\"threads\":$thr}" >"$out/wrk-status-0-r$round.json"
    wrk_run "0-r$round"
    rm -f "$tmp/ready"
    "${nice_cmd[@]}" "$client_bin" --port "$port" --key "$key" -c "$wrk_subs" --sources "$sources" --server-pid "$server_pid" \
      --ready-file "$tmp/ready" --hold-seconds -1 --label "wrk C=$wrk_subs" \
      --json "$out/wrk-subscribers-r$round.json" &
    client=$!
    pids+=("$client")
    for _ in $(seq 600); do
      [ -f "$tmp/ready" ] && break
      sleep 0.1
    done
    read -r rss thr < <(status_of "$server_pid")
    echo "{\"connections\":$(cat "$tmp/ready"),\"rss_kb\":$rss,\"threads\":$thr}" \
      >"$out/wrk-status-$wrk_subs-r$round.json"
    wrk_run "$wrk_subs-r$round"
    kill -TERM "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    # Let the hub notice the closed streams before the next run without subscribers.
    for _ in $(seq 50); do
      n=$(curl -s -H "Authorization: Bearer $key" "http://127.0.0.1:$port/metrics" |
        awk '/^cortex_connectors_sse_subscribers /{print $2}')
      [ "${n:-0}" = 0 ] && break
      sleep 0.1
    done
  done
  stop_server
fi

python3 "$here/summarize.py" "$out" | tee "$out/summary.md"
