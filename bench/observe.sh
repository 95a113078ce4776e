#!/usr/bin/env bash
# Observability benchmark (issue 3): what data capture and metrics cost, and
# whether the latencies the server reports agree with a load generator's.
# All in one run, with wrk POSTing the 1-row CSV payload of bench/http.sh to
# the 100-tree bench model:
#
#  1. capture pair: server A (capture off) and server B (capture on, 100%
#     sampling, into a temp dir) run side by side on two ports; wrk runs
#     alternate between them (A B, then B A, ...: order effects cancel), at 1
#     and 8 connections. After each B run the script waits for B's writer to
#     drain its queue (written + dropped = invocations), so B's leftover
#     writing never lands in A's window. Target: B/A req/s >= 0.90. Then it
#     counts the records in the capture files (after a SIGTERM flush)
#     against the requests B served.
#  2. metrics pair: server C (SMSERVE_METRICS=false) and server D (the
#     default: metrics on), same interleaving, more rounds (a 2% bound sits
#     at the noise floor of a loaded 2-CPU machine): the median of per-round
#     ratios and their min-max. Target: D/C >= 0.98.
#  3. agreement: a fresh server E with SMSERVE_METRICS_INTERVAL=1; wrk /ping
#     then wrk 1-row CSV at 1 connection; then /metrics and E's EMF lines
#     (stdout) side by side with wrk's p50/p99.
#
# bench/http.sh runs it at its end (BENCH_OBSERVE=0 skips it); on its own:
#
#   bench/observe.sh  env: BENCH_SECONDS (2, per wrk run), BENCH_ROUNDS (3 rounds of the
#                     capture pair), BENCH_METRICS_ROUNDS (2 * BENCH_ROUNDS + 1 rounds of
#                     the metrics pair), SMSERVE_BIN (build/smserve), BENCH_DATA (models
#                     and payloads from make_models.py; made in a temp dir when unset)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${SMSERVE_BIN:-$root/build/smserve}
secs=${BENCH_SECONDS:-2}
rounds=${BENCH_ROUNDS:-3}
mrounds=${BENCH_METRICS_ROUNDS:-$((2 * rounds + 1))}
lua=$root/bench/lua
py=/usr/bin/python3

[[ -x $bin ]] || { echo "observe.sh: $bin not found; build first (bench/run.sh does)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "observe.sh: wrk not found (bench/http.sh installs it)" >&2; exit 1; }

work=$(mktemp -d)
declare -A pid port
cleanup() {
    local name
    for name in "${!pid[@]}"; do stop_server "$name"; done
    rm -rf "$work"
}
trap cleanup EXIT

# BENCH_DATA: a directory make_models.py already filled (bench/http.sh passes its own).
data=${BENCH_DATA:-$work}
[[ -n ${BENCH_DATA:-} ]] || $py "$root/bench/make_models.py" "$work"
payload=$data/csv1.csv

free_port() {
    $py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME [VAR=VALUE...]: serves the bench model on a free port,
# stdout to NAME.out (EMF lines), stderr to NAME.err; waits for /ping 200.
start_server() {
    local name=$1
    shift
    port[$name]=$(free_port)
    env SM_MODEL_DIR="$data/model" SAGEMAKER_BIND_TO_PORT="${port[$name]}" OMP_NUM_THREADS=1 "$@" \
        "$bin" serve >"$work/$name.out" 2>"$work/$name.err" &
    pid[$name]=$!
    for _ in $(seq 300); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[$name]}/ping") == 200 ]] &&
            return
        kill -0 "${pid[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "observe.sh: smserve ($name: $*) did not become healthy; its log:" >&2
    cat "$work/$name.err" >&2
    exit 1
}

# stop_server NAME: SIGTERM (capture flushes, EMF writes its last line), wait.
stop_server() {
    local name=$1
    [[ -n ${pid[$name]:-} ]] || return 0
    kill -TERM "${pid[$name]}" 2>/dev/null || true
    wait "${pid[$name]}" 2>/dev/null || true
    unset "pid[$name]"
}

check_alive() {
    kill -0 "${pid[$1]}" 2>/dev/null && return
    echo "observe.sh: smserve ($1) died under $2; its log:" >&2
    tail -n 20 "$work/$1.err" >&2
    exit 1
}

# check_payload NAME: the payload must predict (200) before it is timed.
check_payload() {
    local code
    code=$(curl -s -o "$work/answer" -w '%{http_code}' -H 'Content-Type: text/csv' \
        --data-binary @"$payload" "http://127.0.0.1:${port[$1]}/invocations") || true
    check_alive "$1" "POST csv1.csv"
    [[ $code == 200 ]] && return
    echo "observe.sh: POST csv1.csv to $1 answered $code: $(head -c 300 "$work/answer")" >&2
    exit 1
}

# wrk_run NAME CONNS SECONDS SCRIPT PATH [ARGS...]: "rps p50_us p99_us requests".
wrk_run() {
    local name=$1 conns=$2 dur=$3 script=$4 path=$5 threads=1 out line
    shift 5
    ((conns > 1)) && threads=2
    out=$(wrk -t"$threads" -c"$conns" -d"${dur}s" --latency -s "$lua/$script" \
        "http://127.0.0.1:${port[$name]}$path" ${1+-- "$@"} 2>&1) || true
    check_alive "$name" "wrk $path at $conns connections"
    line=$(grep '^RESULT' <<<"$out") || { echo "observe.sh: wrk failed: $out" >&2; exit 1; }
    if [[ ${line##*errors=} != 0 ]]; then
        echo "observe.sh: $name $path at $conns connections: ${line##*errors=} errors" >&2
        echo "$out" >&2
        exit 1
    fi
    sed -E 's/RESULT rps=([^ ]+) p50_us=([^ ]+) p99_us=([^ ]+) requests=([^ ]+).*/\1 \2 \3 \4/' <<<"$line"
}

post() { wrk_run "$1" "$2" "$secs" post.lua /invocations text/csv "$payload"; }

scrape() { curl -sf "http://127.0.0.1:${port[$1]}/metrics"; }

# metric TEXT NAME: the value of the first sample of NAME (labels ignored).
metric() { awk -v n="$2" '{ s = $1; sub(/[{].*/, "", s) } s == n { print $2; exit }' <<<"$1"; }

# drain NAME: waits (up to 10 s) until capture has written or dropped a
# record for every invocation; adds the wait to drain_ms.
drain_ms=0
drain() {
    local t0 m inv w d
    t0=$(date +%s%N)
    for _ in $(seq 200); do
        m=$(scrape "$1")
        inv=$(metric "$m" smserve_invocations_total)
        w=$(metric "$m" smserve_capture_records_written_total)
        d=$(metric "$m" smserve_capture_records_dropped_total)
        ((w + d >= inv)) && break
        sleep 0.05
    done
    drain_ms=$((drain_ms + ($(date +%s%N) - t0) / 1000000))
}

# pair KIND BASE CASE CONNS ROUNDS: interleaved wrk runs, BASE first in odd
# rounds and CASE first in even ones; appends "KIND CONNS base... case...".
pair() {
    local kind=$1 base=$2 case=$3 conns=$4 n=$5 r a b
    for r in $(seq "$n"); do
        if ((r % 2)); then
            a=$(post "$base" "$conns")
            b=$(post "$case" "$conns")
            [[ $kind == capture ]] && drain "$case"
        else
            b=$(post "$case" "$conns")
            [[ $kind == capture ]] && drain "$case"
            a=$(post "$base" "$conns")
        fi
        echo "$kind $conns $a $b" >>"$work/pairs"
    done
}

echo "observe: 1-row CSV, ${secs}s per wrk run; capture pair x${rounds} rounds, metrics pair" \
    "x${mrounds} rounds, interleaved (ABBA...) on servers running side by side; -t1 -c1 and -t2 -c8"

# ---- 1 and 2: the cost pairs ----
start_server capoff
start_server capon SMSERVE_CAPTURE_ENABLE=true SMSERVE_CAPTURE_SAMPLING_PERCENTAGE=100 \
    SMSERVE_CAPTURE_DIR="$work/capture"
start_server metoff SMSERVE_METRICS=false
start_server meton
for s in capoff capon metoff meton; do check_payload "$s"; done
for conns in 1 8; do
    pair capture capoff capon "$conns" "$rounds"
    pair metrics metoff meton "$conns" "$mrounds"
done

# What B served, what its capture reports, and what landed on disk.
m=$(scrape capon)
served=$(awk '$1 == "capture" { n += $10 } END { print n + 1 }' "$work/pairs") # + check_payload
inv=$(metric "$m" smserve_invocations_total)
written=$(metric "$m" smserve_capture_records_written_total)
dropped=$(metric "$m" smserve_capture_records_dropped_total)
stop_server capon
read -r lines bad files mb < <($py - "$work/capture" <<'EOF'
import json, os, sys
lines = bad = files = size = 0
for dirpath, _, names in os.walk(sys.argv[1]):
    for name in names:
        if not name.endswith(".jsonl"):
            continue
        files += 1
        path = os.path.join(dirpath, name)
        size += os.path.getsize(path)
        with open(path, "rb") as f:
            for line in f:
                lines += 1
                try:
                    r = json.loads(line)
                    r["captureData"]["endpointInput"]["data"]
                except Exception:
                    bad += 1
print(lines, bad, files, "%.1f" % (size / 1e6))
EOF
)
for s in capoff metoff meton; do stop_server "$s"; done

awk -v drain_ms="$drain_ms" '
function sort(v, n,    i, j, t) {
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
}
function median(list,    v, n) {
    n = split(list, v, " "); sort(v, n)
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function lo(list,    v, n) { n = split(list, v, " "); sort(v, n); return v[1] }
function hi(list,    v, n) { n = split(list, v, " "); sort(v, n); return v[n] }
{
    k = $1 " " $2
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    arps[k] = arps[k] " " $3; ap50[k] = ap50[k] " " $4
    brps[k] = brps[k] " " $7; bp50[k] = bp50[k] " " $8
    ratio[k] = ratio[k] " " $7 / $3
}
END {
    printf "\n%-8s %5s %6s %10s %8s %10s %8s %8s %15s %6s  %s\n", "pair", "conns", "rounds",
           "base_req/s", "base_p50", "case_req/s", "case_p50", "ratio", "ratio_min-max", "want", ""
    for (i = 1; i <= n; i++) {
        k = order[i]; split(k, f, " ")
        want = f[1] == "capture" ? 0.90 : 0.98
        r = median(ratio[k])
        printf "%-8s %5d %6d %10.0f %8.0f %10.0f %8.0f %7.3fx %7.3f-%.3fx %5.2fx  %s\n", f[1], f[2],
               split(ratio[k], tmp, " "), median(arps[k]), median(ap50[k]), median(brps[k]),
               median(bp50[k]), r, lo(ratio[k]), hi(ratio[k]), want, (r >= want ? "PASS" : "MISS")
    }
    print "  capture: base = capture off, case = capture on at 100% sampling (req/s, p50 in us:"
    print "  medians over rounds; ratio = median of the per-round case/base req/s ratios)."
    print "  metrics: base = SMSERVE_METRICS=false, case = metrics on (the default)."
    printf "  waited %.1f s in all for the capture writer to drain after capture-on runs" \
           " (outside the timed windows)\n", drain_ms / 1000
}' "$work/pairs"

echo
echo "capture at 100%, server B over the whole run:"
printf '  %-58s %10s\n' \
    "responses wrk counted from B (+1 check request; excludes the" "$served" \
    "  few in flight when each wrk run stopped)" "" \
    "invocations B counted (/metrics smserve_invocations_total)" "$inv" \
    "records written (/metrics, before SIGTERM)" "$written" \
    "records dropped (/metrics, queue full / disk full)" "$dropped" \
    "lines in the capture files (after the SIGTERM flush)" "$lines" \
    "  of which not a JSON capture record" "$bad" \
    "files / MB" "$files / $mb"
if ((lines + dropped == inv && bad == 0)); then
    echo "  every invocation is a record on disk or counted as dropped: PASS"
else
    echo "  lines + dropped = $((lines + dropped)) vs $inv invocations (bad lines: $bad): MISS"
fi

# ---- 3: agreement of /metrics and EMF with wrk ----
asecs=$((2 * secs))
start_server agree SMSERVE_METRICS_INTERVAL=1
ping=$(wrk_run agree 1 "$secs" ping.lua /ping)
res=$(wrk_run agree 1 "$asecs" post.lua /invocations text/csv "$payload")
scrape agree >"$work/agree.prom"
stop_server agree # writes the last EMF line
$py - "$work/agree.prom" "$work/agree.out" "$res" "$ping" "$asecs" "$secs" <<'EOF'
import json, sys
import numpy as np

prom_path, emf_path, res, ping, asecs, psecs = sys.argv[1:]
rps, w50, w99, wn = (float(x) for x in res.split())
_, p50, _, _ = (float(x) for x in ping.split())

def labels_get(s, key):
    i = s.find(key + '="')
    return s[i + len(key) + 2:s.index('"', i + len(key) + 2)] if i >= 0 else None

series = {}
for line in open(prom_path):
    if line.startswith("#") or not line.strip():
        continue
    name_labels, value = line.rsplit(" ", 1)
    name = name_labels.split("{", 1)[0]
    series.setdefault(name, []).append((name_labels, float(value)))

def one(name):
    return series[name][0][1]

def gauge(hist, q):  # the server's own quantile from the fine histogram, in us
    for nl, v in series["smserve_%s_latency_quantile_seconds" % hist]:
        if labels_get(nl, "quantile") == q:
            return v * 1e6

def buckets(hist):  # the exposed (coarse: 4 per power of two) buckets as a density per us
    edges = []
    for nl, v in series["smserve_%s_latency_seconds_bucket" % hist]:
        le = labels_get(nl, "le")
        if le != "+Inf":
            edges.append((round(float(le) * 1e6), v))
    top = next(e for e, c in edges if c >= edges[-1][1])
    d = np.zeros(top + 1)
    prev_e, prev_c = 0, 0.0
    for e, c in edges:
        if e > top:
            break
        if c > prev_c:  # values in [prev_e, e) us, spread evenly
            d[prev_e:e] += (c - prev_c) / (e - prev_e)
        prev_e, prev_c = e, c
    return d / d.sum()

def quantile(dens, q):  # in us, over 1-us cells
    c = np.cumsum(dens)
    return float(np.searchsorted(c, q * c[-1])) + 0.5

inv = one("smserve_invocations_total")
m50, m99 = gauge("model", "0.5"), gauge("model", "0.99")
o50, o99 = gauge("overhead", "0.5"), gauge("overhead", "0.99")
dm, do = buckets("model"), buckets("overhead")
n = len(dm) + len(do)
conv = np.fft.irfft(np.fft.rfft(dm, n) * np.fft.rfft(do, n), n).clip(min=0)
c50, c99 = quantile(conv, 0.5), quantile(conv, 0.99)

# EMF: lines of 1-s intervals, each with its own p50/p99 fields (from the
# histogram, as /metrics) and arrays of at most 100 values: the interval's
# values, or 100 quantiles at ranks k/99, min to max. "Pooled": every value
# of every line weighs the same, which is what CloudWatch computes for a
# period holding all the lines; each line's max then counts for 1% of the
# period, so a pooled p99 over several lines leans towards their maxima.
emf = [json.loads(l) for l in open(emf_path) if l.startswith("{") and '"_aws"' in l]
emf_inv = sum(e.get("Invocations", 0) for e in emf)
def pooled(metric, q):
    v = sorted(x for e in emf for x in e.get(metric, []))
    return float(v[max(0, int(np.ceil(q * len(v))) - 1)])
busy = [e for e in emf if e.get("Invocations", 0) > 0.5 * rps]  # the full 1-s intervals
def per_line(q):
    xs = sorted(e["ModelLatency" + q] + e["OverheadLatency" + q] for e in busy)
    return "%.0f-%.0f" % (xs[0], xs[-1]) if xs else "-"
g_m50, g_m99 = pooled("ModelLatency", 0.5), pooled("ModelLatency", 0.99)
g_o50, g_o99 = pooled("OverheadLatency", 0.5), pooled("OverheadLatency", 0.99)

print("\nagreement: fresh server, SMSERVE_METRICS_INTERVAL=1, wrk -t1 -c1 1-row CSV for %s s"
      " (after %s s of /ping, which is not counted); latencies in us" % (asecs, psecs))
row = "  %-72s %9s %9s %9s"
print(row % ("", "p50", "p99", "count"))
f = lambda x: "%.1f" % x
print(row % ("wrk: client round trip, request written .. response read", f(w50), f(w99), "%d" % wn))
print(row % ("wrk /ping round trip (HTTP stack, loopback; that handler writes a reply)", f(p50), "", ""))
print(row % ("/metrics ModelLatency (prediction only)", f(m50), f(m99), "%d" % inv))
print(row % ("/metrics OverheadLatency (handler entry .. response written, - model)", f(o50), f(o99), ""))
print(row % ("/metrics model + overhead, sum of the quantile gauges (0.8% each)", f(m50 + o50), f(m99 + o99), ""))
print(row % ("/metrics model + overhead, convolution of the _bucket histograms", f(c50), f(c99), ""))
print(row % ("  (coarse: 4 buckets per power of two, and assumes the two independent)", "", "", ""))
print(row % ("EMF ModelLatency, the %d lines' values pooled as CloudWatch would" % len(emf), f(g_m50), f(g_m99), "%d" % emf_inv))
print(row % ("EMF OverheadLatency, pooled", f(g_o50), f(g_o99), ""))
print(row % ("EMF model + overhead, sum of the pooled quantiles", f(g_m50 + g_o50), f(g_m99 + g_o99), ""))
print(row % ("EMF per-line fields ModelLatencyPxx + OverheadLatencyPxx, min-max over", "", "", ""))
print(row % ("  the %d full 1-s lines (each from the histogram, like /metrics)" % len(busy),
             per_line("P50"), per_line("P99"), ""))
print(row % ("wrk - /metrics sum: time outside the timed handler (kernel, loopback,", f(w50 - m50 - o50), f(w99 - m99 - o99), ""))
print(row % ("  HTTP parsing before the handler, wrk itself; a difference of quantiles)", "", "", ""))
def pct(a, b):
    return "%+.1f%%" % (100 * (a - b) / b) if b else "-"
print(row % ("EMF pooled vs /metrics, model + overhead (the same requests)",
             pct(g_m50 + g_o50, m50 + o50), pct(g_m99 + g_o99, m99 + o99), ""))
ok_n = 0 <= inv - wn <= 1 and emf_inv == inv
print("  counts: wrk %d responses, /metrics %d invocations, EMF %d invocations\n"
      "  (want /metrics - wrk in 0..1, the request in flight when wrk stops; EMF = /metrics): %s"
      % (wn, inv, emf_inv, "PASS" if ok_n else "MISS"))
EOF
