#!/usr/bin/env python3
"""exec -> main() of programs that do nothing but are linked like the server (see RESULTS.md).

usage: exec_floor.py SERVER_BINARY [RUNS]
Builds, in a temporary directory, a C program whose main() prints CLOCK_MONOTONIC and exits,
linked (a) against nothing, (b) against Debian's libcpp-httplib.so alone (it brings libssl,
libcrypto, brotli, zlib and libstdc++), (c) against every library the server binary names
(readelf -d: DT_NEEDED). Each is started RUNS times (default 30) from here the way the load
scripts start the server (subprocess), and the median time from before the spawn to main() is
printed, with the server's own exec -> exit at argument parsing (--bogus) for comparison.
That is the time the process needs before any of its code runs: the floor of a cold start.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

PROGRAM = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  printf("%.6f\n", (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6);
  return 0;
}
"""


def needed(binary: str) -> list[str]:
    out = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True,
                         text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)


def link_flags(sonames: list[str]) -> list[str]:
    # -l:libfoo.so.N names the exact file the server names.
    return [f"-l:{s}" for s in sonames if not s.startswith(("libc.so", "ld-linux"))]


def to_main_ms(program: str) -> float:
    t0 = time.monotonic() * 1000  # CLOCK_MONOTONIC, as the program prints
    out = subprocess.run([program], check=True, capture_output=True, text=True).stdout
    return float(out) - t0


def to_exit_ms(argv: list[str]) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, capture_output=True)
    return (time.monotonic() - t0) * 1000


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    server, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "floor.c")
        with open(src, "w") as f:
            f.write(PROGRAM)
        variants = {
            "nothing": [],
            "libcpp-httplib.so only": ["-l:libcpp-httplib.so.0.11"],
            "every library the server names": link_flags(needed(server)),
        }
        programs = {}
        for name, flags in variants.items():
            exe = os.path.join(tmp, f"floor{len(programs)}")
            subprocess.run(["cc", "-O2", src, "-o", exe, "-Wl,--no-as-needed", *flags],
                           check=True)
            programs[name] = exe
        server_row = "server, exit at argument parsing (--bogus)"
        results = {name: [] for name in [*programs, server_row]}
        # Interleaved rounds, so that the machine's load hits every variant alike.
        for _ in range(runs):
            for name, exe in programs.items():
                results[name].append(to_main_ms(exe))
            results[server_row].append(to_exit_ms([server, "--bogus"]))
    print(f"{runs} runs each, interleaved; exec -> main() (the server: exec -> exit)")
    for name, xs in results.items():
        print(f"  {name:45s} median {statistics.median(xs):6.2f} ms  min {min(xs):6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
