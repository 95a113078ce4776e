# Smoke checks of a running smserve serving models/sample, shared by
# scripts/container.sh and scripts/arm64.sh. Source it after defining
# say and die; run from the repository root.

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_ping PORT PID LOG TENTHS: waits up to TENTHS tenths of a second for
# /ping to answer 200 from the server PID (whose output is in LOG).
wait_for_ping() {
  local port=$1 pid=$2 log=$3 tries=$4 code
  for _ in $(seq 1 "$tries"); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/ping" && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "smserve exited at start"; }
    sleep 0.1
  done
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ping")"
  [ "$code" = 200 ] || { cat "$log" >&2; die "/ping answered $code"; }
}

# Float32 equality of the predictions in GOT with models/sample.expected.
compare_predictions() {
  python3 - "$@" <<'PY'
import struct, sys
label, got_path, want_path = sys.argv[1:4]
f32 = lambda s: struct.unpack("f", struct.pack("f", float(s)))[0]
got = [f32(x) for x in open(got_path).read().split()]
want = [f32(x) for x in open(want_path).read().split()]
if got != want:
    sys.exit(f"{label}: predictions {got}, expected {want}")
print(f"{label}: {len(got)} predictions, bit-identical to models/sample.expected (float32)")
PY
}

# check_sample_predictions LABEL PORT WORKDIR: a CSV and a JSON invocation of
# models/sample.* must predict models/sample.expected exactly.
check_sample_predictions() {
  local label=$1 port=$2 work=$3
  curl -sf "http://127.0.0.1:$port/invocations" -H 'Content-Type: text/csv' \
    --data-binary @models/sample.csv >"$work/csv.out" || die "CSV invocation"
  compare_predictions "$label: CSV" "$work/csv.out" models/sample.expected || die "CSV predictions"
  curl -sf "http://127.0.0.1:$port/invocations" -H 'Content-Type: application/json' \
    -H 'Accept: application/json' --data-binary @models/sample.json >"$work/json.out" ||
    die "JSON invocation"
  grep -oE '"score": *[^,}]+' "$work/json.out" | sed 's/.*: *//' >"$work/json.scores"
  compare_predictions "$label: JSON" "$work/json.scores" models/sample.expected ||
    die "JSON predictions"
}
