#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in build-fuzz/ (or $BUILD_DIR)
# and runs each for a bounded time, starting from its seed corpus in fuzz/corpus/<target>/.
#   scripts/fuzz.sh                      every target, FUZZ_SECONDS (default 20) each
#   scripts/fuzz.sh json manifest        only these targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh json   a longer run (docs/fuzzing.md)
# New inputs go to build-fuzz/corpus/<target>/ (the seeds in the repository are only read); a
# crash leaves its input in build-fuzz/artifacts/<target>/ and makes the script fail. Turn such
# an input into a regression test in tests/ (docs/fuzzing.md says how). The server is configured
# too: fuzz_request_head links its internal library (only what the targets need is built).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_dir=${BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-20}

CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCORTEX_CONNECTORS_FUZZ=ON -DCORTEX_CONNECTORS_SANITIZE=address,undefined \
  -DCORTEX_CONNECTORS_WERROR=ON -DCORTEX_CONNECTORS_BUILD_TESTS=OFF \
  -DCORTEX_CONNECTORS_BUILD_SERVER=ON -DCORTEX_CONNECTORS_BUILD_CLIENT=OFF \
  -DCORTEX_CONNECTORS_BUILD_EXAMPLES=OFF -DCORTEX_CONNECTORS_INSTALL=OFF >/dev/null

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for dir in fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi
cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
failed=()
for t in "${targets[@]}"; do
  work="$build_dir/corpus/$t"
  artifacts="$build_dir/artifacts/$t/"
  mkdir -p "$work" "$artifacts"
  extra=()
  [ -f "fuzz/dict/$t.dict" ] && extra+=(-dict="fuzz/dict/$t.dict")
  echo "== fuzz_$t: ${seconds}s"
  log="$build_dir/fuzz_$t.log"
  if "$build_dir/fuzz/fuzz_$t" "${extra[@]}" -max_total_time="$seconds" -max_len=65536 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" \
      "$work" "fuzz/corpus/$t" >"$log" 2>&1; then
    # The last status line (#runs, cov, ft, corp, exec/s) and the total executions.
    grep -E '^#[0-9]+' "$log" | tail -1 || true
    grep -E 'stat::number_of_executed_units' "$log" | tail -1 || true
  else
    echo "fuzz_$t FAILED; input in $artifacts, log in $log"
    tail -40 "$log"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}"
  exit 1
fi
echo "fuzz: no crash in ${targets[*]}"
