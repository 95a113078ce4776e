#!/usr/bin/env bash
# Runs the whole test suite twice: a plain build, then one built with
# AddressSanitizer and UBSan (the server under test is the sanitized binary
# too). Installs what it needs first.
#   scripts/test.sh            both passes
#   SMS_PASSES=plain scripts/test.sh   one pass (plain or sanitize)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
jobs="$(nproc)"
passes="${SMS_PASSES:-plain sanitize}"

for pass in $passes; do
  case "$pass" in
    plain)    dir=build;      flags=(-DWERROR=ON) ;;
    sanitize) dir=build-asan; flags=(-DWERROR=ON -DSANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug) ;;
    *) echo "test.sh: unknown pass $pass" >&2; exit 2 ;;
  esac
  echo "== $pass build ($dir)"
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== $pass tests"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs"
done
