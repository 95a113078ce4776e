#!/usr/bin/env bash
# Runs every benchmark in one go: builds (Release) into build-bench/ unless
# BUILD_DIR says otherwise, then the engine bench, the decode bench and the
# HTTP bench, after a line on the machine they ran on. Takes a few minutes.
#
#   bench/run.sh    env: BUILD_DIR (build-bench); BENCH_SECONDS, BENCH_ROUNDS (see http.sh)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
cd "$root"

mkdir -p "$build"
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$build" -j"$(nproc)" --target smserve bench_engine bench_decode; } \
    >"$build/bench-build.log" 2>&1; then
    cat "$build/bench-build.log" >&2
    exit 1
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
[[ -n $cpu ]] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU} ($(uname -m)), Linux $(uname -r), $(date -u +%Y-%m-%d)"
echo

OMP_NUM_THREADS=1 "$build/bench/bench_engine"
echo
OMP_NUM_THREADS=1 "$build/bench/bench_decode"
echo
SMSERVE_BIN="$build/smserve" bench/http.sh
