#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.c) with clang and runs each for
# a fixed time, seeded from the committed fixtures and the sample payloads.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
seconds="${1:-30}"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DFUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null

# AWS's recorded request bodies (the wire formats' seeds), next to the checkout.
aws="${SMSERVE_AWS_CORPUS:-../shared/fixtures/aws-responses}"
[ -d "$aws/requests" ] || { echo "fuzz.sh: no $aws/requests (SMSERVE_AWS_CORPUS)" >&2; exit 1; }
status=0
mkdir -p build-fuzz/logs
for bin in build-fuzz/fuzz_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  name="$(basename "$bin")"
  corpus="build-fuzz/corpus/$name"
  mkdir -p "$corpus"
  case "$name" in
    fuzz_csv)     cp models/sample.csv tests/fixtures/compat/*.json "$corpus"/ ;;
    fuzz_jsonreq) cp models/sample.json tests/fixtures/compat/*.json "$corpus"/ ;;
    fuzz_xjson | fuzz_transcode) cp tests/fixtures/compat/*.json "$corpus"/ ;;
    fuzz_legacy)  cp tests/fixtures/legacy/*.bin "$corpus"/ ;;
    fuzz_migrate) cp tests/fixtures/legacy/*.bin tests/fixtures/compat/*.* "$corpus"/ ;;
    fuzz_http)    cp fuzz/seeds/http/* "$corpus"/ ;;
    fuzz_libsvm)  cp "$aws"/requests/*.libsvm "$corpus"/ ;;
    fuzz_recordio) cp "$aws"/requests/*.pb "$corpus"/ ;;
    fuzz_jsonlines) cp "$aws"/requests/*.jsonl models/sample.json "$corpus"/ ;;
    fuzz_mediatype | fuzz_encode) cp models/sample.csv "$corpus"/ ;;
    *)            cp tests/fixtures/compat/*.* tests/fixtures/aws/* "$corpus"/ ;;
  esac
  echo "== $name for ${seconds}s"
  log="build-fuzz/logs/$name.log"
  # libFuzzer exits non-zero and writes the failing input to crash-*/leak-*/...
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="build-fuzz/$name-" "$corpus" >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units' "$log" || true
  else
    echo "fuzz.sh: $name failed; its log:" >&2
    tail -40 "$log" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "fuzz.sh: every target ran ${seconds}s without a finding"
exit "$status"
