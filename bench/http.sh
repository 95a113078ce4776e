#!/usr/bin/env bash
# HTTP benchmark: serves the 100-tree bench model with build/smserve on a free
# port and drives wrk against /invocations (1- and 100-row CSV and JSON, at 1
# and 8 connections) and, right before each case at the same connection
# count, against /ping: the baseline of the HTTP stack itself. The 1-row CSV
# case runs again with SMSERVE_ENGINE=xgboost (the C API path) to show what
# the native evaluator buys over HTTP. Prints req/s, p50, p99, the ratios to
# /ping and the targets of issue 5. Then runs bench/observe.sh on the same
# model and payloads: the cost of data capture and of metrics, and /metrics
# and EMF latencies next to wrk's (issue 3).
#
#   bench/http.sh   env: BENCH_SECONDS (2, per wrk run), BENCH_ROUNDS (3 ping/case
#                   pairs per case; the table shows medians), SMSERVE_BIN (build/smserve),
#                   BENCH_OBSERVE (1; 0 skips bench/observe.sh), BENCH_METRICS_ROUNDS
#                   (see bench/observe.sh)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${SMSERVE_BIN:-$root/build/smserve}
secs=${BENCH_SECONDS:-2}
rounds=${BENCH_ROUNDS:-3}
lua=$root/bench/lua

[[ -x $bin ]] || { echo "http.sh: $bin not found; build first (bench/run.sh does)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
    echo "http.sh: installing wrk" >&2
    sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

work=$(mktemp -d)
server_pid=
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT

/usr/bin/python3 "$root/bench/make_models.py" "$work"

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server ENGINE: ENGINE is "native" (the default: variable unset) or
# "xgboost". Sets port; waits until /ping answers 200.
start_server() {
    engine=$1
    port=$(free_port)
    local env=(SM_MODEL_DIR="$work/model" SAGEMAKER_BIND_TO_PORT="$port" OMP_NUM_THREADS=1)
    [[ $1 == native ]] || env+=(SMSERVE_ENGINE="$1")
    env "${env[@]}" "$bin" serve >"$work/server-$1.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 300); do
        if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ping") == 200 ]]; then
            local engine
            engine=$(env "${env[@]}" "$bin" check "$work/model" 2>/dev/null | sed -n 's/^engine: //p')
            echo "server ($1): ${engine:-engine not reported by this build}"
            return
        fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "http.sh: smserve did not become healthy; its log:" >&2
    cat "$work/server-$1.log" >&2
    exit 1
}

stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}

# check_alive CONTEXT: stops the bench, with the server's log, if it died.
check_alive() {
    kill -0 "$server_pid" 2>/dev/null && return
    local rc=0
    wait "$server_pid" 2>/dev/null || rc=$?
    server_pid=
    echo "http.sh: smserve ($engine engine) died with status $rc under $1; its log:" >&2
    tail -n 20 "$work/server-$engine.log" >&2
    exit 1
}

# check_payload TYPE FILE: the payload must predict (200) before it is timed.
check_payload() {
    local code
    code=$(curl -s -o "$work/answer" -w '%{http_code}' -H "Content-Type: $1" \
        --data-binary @"$2" "http://127.0.0.1:$port/invocations") || true
    check_alive "POST $(basename "$2")"
    if [[ $code != 200 ]]; then
        echo "http.sh: POST $(basename "$2") answered $code: $(head -c 300 "$work/answer")" >&2
        exit 1
    fi
}

# wrk_run CONNS SCRIPT PATH [ARGS...]: prints "rps p50_us p99_us".
wrk_run() {
    local conns=$1 script=$2 path=$3 threads=1 out
    shift 3
    ((conns > 1)) && threads=2
    out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$lua/$script" \
        "http://127.0.0.1:$port$path" ${1+-- "$@"} 2>&1) || true
    check_alive "wrk $path $(basename "${2:-}") at $conns connections"
    local line
    line=$(grep '^RESULT' <<<"$out") || { echo "http.sh: wrk failed: $out" >&2; exit 1; }
    local errors
    errors=${line##*errors=}
    if [[ $errors != 0 ]]; then
        echo "http.sh: $path at $conns connections: $errors errors" >&2
        echo "$out" >&2
        exit 1
    fi
    sed -E 's/RESULT rps=([^ ]+) p50_us=([^ ]+) p99_us=([^ ]+).*/\1 \2 \3/' <<<"$line"
}

# pair LABEL CONNS TYPE FILE: rounds of /ping then the case, adjacent, at the
# same connection count, so that a noisy moment hits both.
pair() {
    local label=$1 conns=$2 type=$3 file=$4 ping res
    for _ in $(seq "$rounds"); do
        ping=$(wrk_run "$conns" ping.lua /ping)
        res=$(wrk_run "$conns" post.lua /invocations "$type" "$file")
        echo "$label $conns $res $ping" >>"$work/results"
    done
}

echo "http: /ping then the case, ${secs}s each, x${rounds} rounds (medians); -t1 -c1 and -t2 -c8;" \
    "model 100 trees depth 6, 20 features"
start_server native
for f in csv1.csv csv100.csv; do check_payload text/csv "$work/$f"; done
for f in json1.json json100.json; do check_payload application/json "$work/$f"; done
for conns in 1 8; do
    pair csv-1row "$conns" text/csv "$work/csv1.csv"
    pair csv-100rows "$conns" text/csv "$work/csv100.csv"
    pair json-1row "$conns" application/json "$work/json1.json"
    pair json-100rows "$conns" application/json "$work/json100.json"
done
stop_server
start_server xgboost
for conns in 1 8; do
    pair csv-1row-xgboost "$conns" text/csv "$work/csv1.csv"
done
stop_server

# Medians over rounds; the ratios are the medians of each round's ratio.
# Targets: the default (native) server, 1-row CSV.
awk '
function median(list,    v, n, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{
    k = $1 " " $2
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    rps[k] = rps[k] " " $3; p50[k] = p50[k] " " $4; p99[k] = p99[k] " " $5
    prps[k] = prps[k] " " $6; pp50[k] = pp50[k] " " $7
    rr[k] = rr[k] " " $3 / $6; pr[k] = pr[k] " " $4 / $7
}
function target(k, what, op, want, v) {
    if (!(k in seen)) return
    printf "  %-44s %5.2fx (%s %sx)  %s\n", what, v, op, want,
           (op == ">=" ? v >= want : v <= want) ? "PASS" : "MISS"
}
END {
    printf "\n%-18s %5s %9s %8s %8s %10s %9s %9s %9s\n", "case", "conns", "req/s", "p50_us",
           "p99_us", "ping_req/s", "ping_p50", "req/ping", "p50/ping"
    for (i = 1; i <= n; i++) {
        k = order[i]; split(k, f, " ")
        printf "%-18s %5d %9.0f %8.0f %8.0f %10.0f %9.0f %8.2fx %8.2fx\n", f[1], f[2],
               median(rps[k]), median(p50[k]), median(p99[k]), median(prps[k]), median(pp50[k]),
               median(rr[k]), median(pr[k])
    }
    print "\ntargets (1-row CSV, default engine):"
    target("csv-1row 8", "8 connections: req/s vs /ping'"'"'s", ">=", 0.6, median(rr["csv-1row 8"]))
    target("csv-1row 1", "1 connection: p50 vs /ping'"'"'s", "<=", 1.3, median(pr["csv-1row 1"]))
}' "$work/results"

if [[ ${BENCH_OBSERVE:-1} != 0 ]]; then
    echo
    BENCH_DATA="$work" SMSERVE_BIN="$bin" "$root/bench/observe.sh"
fi
