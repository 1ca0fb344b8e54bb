#!/usr/bin/env python3
"""Markdown tables from the results bench/sse/run.sh leaves in its output directory."""
import glob
import json
import os
import re
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def mb(kb):
    return f"{kb / 1024:.1f}" if kb is not None and kb >= 0 else "–"


def f1(v):
    return "–" if v is None else f"{v:.1f}"


def trio(d):
    return f"{f1(d['p50'])} / {f1(d['p99'])} / {f1(d['max'])}" if d else "–"


def le(v):
    # The smallest histogram bound holding every observation; None: the +Inf bucket (> 1 s).
    return "> 1000" if v is None else f"{v:.0f}"


def main(out):
    print(open(os.path.join(out, "machine.txt")).read().strip().replace("\n", "  \n"))
    print()
    def label(p):
        return re.match(r"fanout-(.*)\.json$", os.path.basename(p)).group(1)

    fan = sorted(glob.glob(os.path.join(out, "fanout-c*.json")),
                 key=lambda p: (int(re.search(r"c(\d+)", label(p)).group(1)), label(p)))
    if fan:
        print("### Subscribers held: server memory and threads\n")
        print("| run | C requested | C opened | streaming | refused | connect (s) | RSS idle (MB) "
              "| RSS connected (MB) | threads idle / connected | RSS after publishes (MB) | VmHWM (MB) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for p in fan:
            r = load(p)
            c = r["requested"]
            idle = load(os.path.join(out, f"idle-{label(p)}.json"))
            refused = ", ".join(f"{n}×{s}" for s, n in r["refused"].items()) or "0"
            print(f"| {label(p)} | {c} | {r['connections']} | {r['streaming']} | {refused} "
                  f"| {r['connect_ms'] / 1000:.1f} | {mb(idle['rss_kb'])} "
                  f"| {mb(r['server_connected']['rss_kb'])} "
                  f"| {idle['threads']} / {r['server_connected']['threads']} "
                  f"| {mb(r['server_after_publishes']['rss_kb'])} "
                  f"| {mb(r['server_after_publishes']['hwm_kb'])} |")
        print()
        print("### Publish → subscribers (ms; p50 / p99 / max over publishes)\n")
        print("| run | C | event | publishes (incomplete) | rename→first | rename→last | first→last (fan-out) "
              "| across subscribers p50 / p99 (median publish) | server reload (compress) p50 "
              "| server last write ≤ (bucket) p50 / max | CPU server / client p50 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for p in fan:
            r = load(p)
            for name, s in r["summary"].items():
                rs = [x for x in r["publishes"] if x["size"] == name]
                a50 = statistics.median([x["across_p50_ms"] for x in rs if x["across_p50_ms"] is not None])
                a99 = statistics.median([x["across_p99_ms"] for x in rs if x["across_p99_ms"] is not None])
                kind = "delta" if r.get("delta_mode") else "status"
                print(f"| {label(p)} | {r['streaming']} | {name} {kind}: {s['event_bytes']} B | {s['publishes']} ({s['incomplete']}) "
                      f"| {trio(s['rename_to_first_ms'])} | {trio(s['rename_to_last_ms'])} "
                      f"| {trio(s['first_to_last_ms'])} | {a50:.1f} / {a99:.1f} "
                      f"| {f1(s['server_reload_ms']['p50'])} ({f1(s['server_compress_ms']['p50'])}) "
                      f"| {le(s['server_last_write_le_ms']['p50'])} / {le(s['server_last_write_le_ms']['max'])} "
                      f"| {f1(s['server_cpu_ms']['p50'])} / {f1(s['client_cpu_ms']['p50'])} |")
        print()
    wrks = sorted(glob.glob(os.path.join(out, "wrk-*-r*.txt")))
    if wrks:
        print("### GET /v1/connectors/service-map, wrk -t2 -c16\n")
        rounds = {}
        for p in wrks:
            m = re.search(r"wrk-(\d+)-r(\d+)\.txt", os.path.basename(p))
            text = open(p).read()
            rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
            p99 = re.search(r"99%\s+([\d.]+\w+)", text)
            st = load(os.path.join(out, f"wrk-status-{m.group(1)}-r{m.group(2)}.json"))
            rounds.setdefault(int(m.group(2)), {})[int(m.group(1))] = (
                float(rps.group(1)) if rps else None, p99.group(1) if p99 else "–", st)
        print("| round | subscribers | req/s | latency p99 | server RSS (MB) | threads |")
        print("|---|---|---|---|---|---|")
        ratios = []
        for rnd in sorted(rounds):
            row = rounds[rnd]
            for subs in sorted(row):
                rps, p99, st = row[subs]
                print(f"| {rnd} | {st['connections']} | {rps:.0f} | {p99} | {mb(st['rss_kb'])} | {st['threads']} |")
            keys = sorted(row)
            if len(keys) == 2 and row[keys[0]][0]:
                ratios.append(row[keys[1]][0] / row[keys[0]][0])
        print()
        if ratios:
            print("ratio (with / without) per round: " + ", ".join(f"{x:.3f}" for x in ratios) +
                  f"; mean {statistics.mean(ratios):.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
