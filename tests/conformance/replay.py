#!/usr/bin/python3
"""Replays AWS's recorded XGBoost-container answers against the real smserve binary.

usage: replay.py --smserve BUILD/smserve [--corpus DIR] [--differences FILE]
                 [--jobs N] [--only REGEX] [--timeout S] [--self-test]

The corpus (SMSERVE_AWS_CORPUS, default <repo>/../shared/fixtures/aws-responses;
see its README, and the issue-10 plan sections 1-3) holds 820
exchanges recorded from aws/sagemaker-xgboost-container. They are grouped by
(model, env); each group is one `smserve serve` start with SM_MODEL_DIR at the
corpus model, the group's env added, SMSERVE_CONNECTIONS=16 and
SMSERVE_METRICS_INTERVAL=0, on a free loopback port. Every exchange is sent
exactly as recorded (method, path, Host then the recorded headers in order, the
body file or the generated body) on a new connection, and compared:
  - status;
  - 200 with a body: media type (case-insensitive, parameters ignored) and the
    decoded values: CSV, JSON, JSON lines and RecordIO-protobuf decoded into
    numbers (ints exact, others equal once rounded to float32; RecordIO frames
    merged as protobuf does, so AWS's cumulative frames equal one record each);
    /execution-parameters as JSON without MaxConcurrentTransforms (= CPUs);
  - 200 without a body (/ping, OPTIONS): smserve's body empty;
  - 204: status only; errors: status only, smserve's body {"error":..,"code":N};
  - Allow (405, OPTIONS) as a set.
Unstable parts (timestamps, stack traces, Server, set/map orders) are never compared.

differences.tsv lists the deliberate differences (plan section 3): an id glob
(only `*` is special), what smserve answers instead, and the reason; the first
matching line wins. `refused=VAR` means the group's server must exit 3 at start
with a line naming VAR. Exits 1 on any unexpected mismatch, on a listed
difference that no longer differs (stale), and on a line that matches nothing.
A missing corpus fails under CI=true, else the test is skipped (exit 77).
"""
import argparse
import base64
import collections
import concurrent.futures
import http.client
import json
import math
import os
import re
import shlex
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import serverproc  # noqa: E402 (tests/serverproc.py)
SKIP = 77
SELF_TEST = False  # --self-test: AWS's own answers, whose errors are not JSON


# ---------------------------------------------------------------- numbers

def f32(x):
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def num_equal(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    a, b = f32(float(a)), f32(float(b))
    if a != a or b != b:
        return a != a and b != b
    return a == b


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def same(a, b):
    """Decoded values: numbers per num_equal, lists by position, dicts by key."""
    if is_num(a) and is_num(b):
        return num_equal(a, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def flatten(x):
    if isinstance(x, dict):
        return [v for k in x for v in flatten(x[k])]
    if isinstance(x, (list, tuple)):
        return [v for e in x for v in flatten(e)]
    return [x] if is_num(x) else []


def short(x, n=150):
    s = json.dumps(x, allow_nan=True) if not isinstance(x, str) else repr(x)
    return s if len(s) <= n else s[:n] + "..."


# ---------------------------------------------------------------- decoders

class Undecodable(Exception):
    pass


def num_token(t):
    t = t.strip()
    if re.fullmatch(r"[+-]?\d+", t):
        return int(t)
    try:
        return float(t)  # also nan
    except ValueError:
        raise Undecodable("not a number: %r" % t[:40])


def csv_fields(line):
    out, cur, quoted, i = [], "", False, 0
    while i < len(line):
        c = line[i]
        if c == '"':
            quoted = not quoted
            cur += c
        elif c == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    return out


def csv_value(field):
    f = field.strip()
    if len(f) >= 2 and f[0] == '"' and f[-1] == '"':
        f = f[1:-1]
    if f.startswith("[") and f.endswith("]"):
        inner = f[1:-1].strip()
        return [num_token(t) for t in inner.split(",")] if inner else []
    return num_token(f)


def decode_csv(body):
    text = body.decode("utf-8")
    if text.endswith("\n"):
        text = text[:-1]
    rows = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        s = line.strip()
        if s.startswith("[") and s.endswith("]") and '"' not in s:
            rows.append([csv_value(s)])  # a Python list repr as the whole line
        else:
            rows.append([csv_value(f) for f in csv_fields(line)])
    return rows


def parse_json(text):
    return json.loads(text, parse_constant=lambda c: float(c))


def decode_json(body):
    return parse_json(body.decode("utf-8"))


def decode_jsonlines(body):
    return [parse_json(l) for l in body.decode("utf-8").split("\n") if l.strip()]


def varint(b, i):
    v = s = 0
    while True:
        if i >= len(b):
            raise Undecodable("truncated varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if not c & 0x80:
            return v, i
        if s > 70:
            raise Undecodable("varint too long")


def pb_fields(b):
    """(number, wire type, value) for each field of one message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise Undecodable("wire type %d" % wt)
        if i > len(b):
            raise Undecodable("field past the end")
        yield num, wt, v


def tensor(b, kind):
    fmt = {"f32": ("<f", 4, 5), "f64": ("<d", 8, 1), "i32": (None, 0, 0)}[kind]
    vals, keys, shape = [], [], []
    for num, wt, v in pb_fields(b):
        if num == 1:
            if kind == "i32":
                ints = [v] if wt == 0 else []
                j = 0
                while wt == 2 and j < len(v):
                    x, j = varint(v, j)
                    ints.append(x)
                vals += [x - (1 << 64) if x >> 63 else x for x in ints]
            elif wt == 2:
                vals += [x for (x,) in struct.iter_unpack(fmt[0], v)]
            else:
                vals += list(struct.unpack(fmt[0], v))
        elif num in (2, 3):
            dst = keys if num == 2 else shape
            if wt == 0:
                dst.append(v)
            else:
                j = 0
                while j < len(v):
                    x, j = varint(v, j)
                    dst.append(x)
    out = {"values": vals}
    if keys:
        out["keys"] = keys
    if shape:
        out["shape"] = shape
    return out


def pb_value(b):
    got = None
    for num, wt, v in pb_fields(b):  # oneof: the last member wins
        if num in (2, 3, 7):
            got = tensor(v, {2: "f32", 3: "f64", 7: "i32"}[num])
        elif num == 9:
            got = {"bytes": True}
    return got


def decode_recordio(body):
    frames, i = [], 0
    while i < len(body):
        if len(body) - i < 8:
            raise Undecodable("trailing %d bytes" % (len(body) - i))
        magic, n = struct.unpack_from("<II", body, i)
        if magic != 0xCED7230A:
            raise Undecodable("bad RecordIO magic at %d" % i)
        n &= (1 << 29) - 1
        rec = body[i + 8:i + 8 + n]
        if len(rec) != n:
            raise Undecodable("truncated frame at %d" % i)
        i += 8 + n + (-n % 4)
        label = {}
        for num, wt, v in pb_fields(rec):  # concatenated Records merge
            if num == 2 and wt == 2:
                key, val = "", None
                for en, ew, ev in pb_fields(v):
                    if en == 1:
                        key = ev.decode("utf-8")
                    elif en == 2:
                        val = pb_value(ev)
                label[key] = val  # a repeated map key: the last wins
        frames.append(label)
    return frames


def aws_recordio(decoded):
    def fix(x):
        return float(x) if isinstance(x, str) else x
    out = []
    for fr in decoded:
        lab = {}
        for k, t in fr["label"].items():
            d = {"values": [fix(v) for v in t["values"]]}
            for extra in ("keys", "shape"):
                if t.get(extra):
                    d[extra] = t[extra]
            lab[k] = d
        out.append(lab)
    return out


DECODERS = {
    "text/csv": decode_csv,
    "application/json": decode_json,
    "application/jsonlines": decode_jsonlines,
    "application/x-recordio-protobuf": decode_recordio,
}


def media(ct):
    return ct.split(";")[0].strip().lower() if ct else None


def decode(ct, body):
    """('ok', values) or ('raw', text) when the body is not what its label says."""
    try:
        fn = DECODERS.get(media(ct))
        if fn is None:
            raise Undecodable("no decoder for %r" % ct)
        return ("ok", fn(body))
    except (Undecodable, UnicodeDecodeError, ValueError, struct.error) as e:
        return ("raw", body.decode("utf-8", "replace"), str(e))


# ---------------------------------------------------------------- the corpus

class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def aws_answer(ex):
    a = Answer(ex["status"], list(ex["response_headers"].items()),
               base64.b64decode(ex["response_body_base64"]))
    a.decoded_hint = ex.get("response_decoded")
    return a


def aws_values(ex):
    if ex.get("response_decoded"):
        return ("ok", aws_recordio(ex["response_decoded"]))
    return decode(ex["response_content_type"], base64.b64decode(ex["response_body_base64"]))


def request_body(corpus, ex):
    if ex.get("request_body_file"):
        with open(os.path.join(corpus, ex["request_body_file"]), "rb") as f:
            return f.read()
    if ex.get("request_body_generated"):
        n = int(ex["request_headers"]["Content-Length"])
        return (b"1.5," * (n // 4 + 1))[:n]
    return b""


# ---------------------------------------------------------------- comparing

def compare(ex, got, aws_vals):
    """None when smserve's answer is AWS's (as far as it is compared), else why not."""
    if got.status != ex["status"]:
        return "status %d, AWS %d" % (got.status, ex["status"])
    st = got.status
    if st in (405,) or (ex["method"] == "OPTIONS" and st == 200):
        want = {m.strip() for m in (ex["response_headers"].get("Allow") or "").split(",") if m}
        have = {m.strip() for m in (got.header("Allow") or "").split(",") if m}
        if want != have:
            return "Allow %s, AWS %s" % (sorted(have), sorted(want))
    if st >= 400:
        if ex["method"] != "HEAD" and not SELF_TEST:
            try:
                j = json.loads(got.body)
                if not isinstance(j, dict) or j.get("code") != st or "error" not in j:
                    raise ValueError
            except ValueError:
                return "error body is not {\"error\": .., \"code\": %d}: %s" % (st, short(
                    got.body.decode("utf-8", "replace"), 80))
        return None
    if st != 200:
        return None
    aws_body = base64.b64decode(ex["response_body_base64"])
    if not aws_body or ex["method"] == "HEAD":
        return None if not got.body else "body %s, AWS empty" % short(got.body[:60].decode(
            "utf-8", "replace"))
    want_t, have_t = media(ex["response_content_type"]), media(got.header("Content-Type"))
    if want_t != have_t:
        return "type %s, AWS %s" % (have_t, want_t)
    if ex["path"].startswith("/execution-parameters"):
        try:
            a, b = json.loads(aws_body), json.loads(got.body)
        except ValueError:
            return "not JSON: %s" % short(got.body.decode("utf-8", "replace"))
        if "MaxConcurrentTransforms" not in b:
            return "no MaxConcurrentTransforms"
        a.pop("MaxConcurrentTransforms", None)
        b.pop("MaxConcurrentTransforms", None)
        return None if a == b else "%s, AWS %s" % (short(b), short(a))
    have = decode(got.header("Content-Type"), got.body)
    return values_differ(have, aws_vals)


def values_differ(have, want):
    if have[0] == "ok" and want[0] == "ok":
        return None if same(have[1], want[1]) else "values %s, AWS %s" % (
            short(have[1]), short(want[1]))
    if have[0] == "raw" and want[0] == "raw":
        return None if have[1] == want[1] else "body %s, AWS %s" % (short(have[1]),
                                                                   short(want[1]))
    if have[0] == "raw":
        return "undecodable (%s): %s, AWS %s" % (have[2], short(have[1], 80), short(want[1]))
    return "values %s, AWS body not its label (%s): %s" % (short(have[1]), want[2],
                                                          short(want[1], 80))


def glob_re(pattern):
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern) + r"\Z",
                      re.S)


class Difference:
    def __init__(self, lineno, pattern, smserve, reason):
        self.lineno, self.pattern, self.smserve, self.reason = lineno, pattern, smserve, reason
        self.rx = glob_re(pattern)
        self.want = {}
        head, sep, ref = smserve.partition("values=")  # the id runs to the end (has spaces)
        if sep:
            self.want["values"] = ref
        for tok in head.split(" "):
            if not tok:
                continue
            k, sep, v = tok.partition("=")
            if not sep or k not in ("status", "type", "values", "refused"):
                raise SystemExit("differences.tsv:%d: unknown answer %r" % (lineno, tok))
            self.want[k] = v
        self.used = 0


def load_differences(path):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise SystemExit("%s:%d: expected 3 tab-separated fields" % (path, n))
            out.append(Difference(n, *parts))
    return out


def difference_for(diffs, exid):
    for d in diffs:
        if d.rx.match(exid):
            return d
    return None


def check_listed(d, ex, got, by_id):
    """None when smserve answers what the listed difference says, else why not."""
    w = d.want
    if "status" in w and got.status != int(w["status"]):
        return "status %d" % got.status
    if "type" in w and media(got.header("Content-Type")) != w["type"].lower():
        return "type %s" % media(got.header("Content-Type"))
    if "values" in w:
        ref_id = w["values"].replace("{model}", ex["model"]).replace(
            "{body}", os.path.basename(ex.get("request_body_file") or ""))
        ref = by_id.get(ref_id)
        if ref is None:
            return "reference %s is not in the corpus" % ref_id
        have = decode(got.header("Content-Type"), got.body)
        want = aws_values(ref)
        if have[0] != "ok":
            return "undecodable (%s): %s" % (have[2], short(have[1], 80))
        a, b = flatten(have[1]), flatten(want[1]) if want[0] == "ok" else None
        if b is None or len(a) != len(b) or not all(map(num_equal, a, b)):
            return "values %s, not those of %s (%s)" % (short(a), ref_id, short(b))
    return None


# ---------------------------------------------------------------- the wire

def exchange(port, ex, body, timeout):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (ex["method"], ex["path"], port)
        head += "".join("%s: %s\r\n" % kv for kv in ex["request_headers"].items()) + "\r\n"
        data = head.encode("latin-1") + body
        err = []

        def send():
            try:
                sock.sendall(data)
            except OSError as e:  # the server may answer (413) and close early
                err.append(e)
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        resp = http.client.HTTPResponse(sock, method=ex["method"])
        resp.begin()
        got = Answer(resp.status, resp.getheaders(), resp.read())
        sender.join(timeout)
        return got
    finally:
        sock.close()


# ---------------------------------------------------------------- a group

Result = collections.namedtuple("Result", "ex kind detail")  # kind: match listed refused
                                                               # mismatch stale


def judge(ex, got, diffs, by_id):
    d = difference_for(diffs, ex["id"])
    why = compare(ex, got, aws_values(ex))
    if d is None:
        return Result(ex, "match", None) if why is None else Result(ex, "mismatch", why)
    if "refused" in d.want:
        return Result(ex, "mismatch", "listed as refused at start (%s), but served" % d.smserve)
    if why is None:
        return Result(ex, "stale", "differences.tsv:%d %s: smserve answers as AWS now" % (
            d.lineno, d.smserve))
    why2 = check_listed(d, ex, got, by_id)
    if why2 is None:
        return Result(ex, "listed", d)
    return Result(ex, "mismatch", "listed (%s) but %s; vs AWS: %s" % (d.smserve, why2, why))


def run_group(args, key, exs, diffs, by_id):
    model, env = exs[0]["model"], exs[0]["env"]
    refusal = [difference_for(diffs, e["id"]) for e in exs]
    refused = {d.want["refused"] for d in refusal if d and "refused" in d.want}
    if refused and not all(d and "refused" in d.want for d in refusal):
        raise SystemExit("differences.tsv: group %s is only partly listed as refused" % key)
    if args.self_test:  # the list is only checked for use and for its references
        for e in exs:
            d = difference_for(diffs, e["id"])
            if d:
                ref = d.want.get("values", "").replace("{model}", e["model"]).replace(
                    "{body}", os.path.basename(e.get("request_body_file") or ""))
                if ref and ref not in by_id:
                    raise SystemExit("differences.tsv:%d: no reference %s" % (d.lineno, ref))
        return [judge(e, aws_answer(e), [], by_id) for e in exs]
    # The group's SAGEMAKER_* variables only, none of ours.
    base = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    srv, started = serverproc.start(shlex.split(args.wrapper) + [args.smserve], os.path.join(args.corpus, "models", model),
                                    env, args.timeout, base_env=base)
    if started is not None:
        rc, text = started
        line = next((l for l in text.splitlines() if any(v in l for v in refused)), None)
        out = []
        for e, d in zip(exs, refusal):
            if refused:
                if rc == 3 and line:
                    out.append(Result(e, "refused", d))
                else:
                    out.append(Result(e, "mismatch", "exited %d at start, expected 3 with a "
                                      "line naming %s: %s" % (rc, "/".join(sorted(refused)),
                                                               short(text[-200:]))))
            else:
                out.append(Result(e, "mismatch", "exited %d at start: %s" % (
                    rc, short(text.strip().splitlines()[-1] if text.strip() else ""))))
        return out
    out = []
    try:
        for e in exs:
            try:
                got = exchange(srv.port, e, request_body(args.corpus, e), args.timeout)
            except (OSError, http.client.HTTPException) as exc:
                out.append(Result(e, "mismatch", "no answer: %s: %s" % (
                    type(exc).__name__, exc)))
                if srv.proc.poll() is not None:
                    break
                continue
            out.append(judge(e, got, diffs, by_id))
    finally:
        why = srv.stop()
    if why:
        out.append(Result({"id": "%s/%s (server)" % (model, json.dumps(env)),
                           "config": exs[0]["config"]}, "mismatch", why))
    done = {r.ex["id"] for r in out}
    for e in exs:
        if e["id"] not in done:
            out.append(Result(e, "mismatch", "not replayed: the server died"))
    return out


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smserve", help="the binary (not needed with --self-test)")
    ap.add_argument("--wrapper", default="", help="command prefix, e.g. qemu-user")
    ap.add_argument("--corpus", default=os.environ.get("SMSERVE_AWS_CORPUS") or os.path.join(
        REPO, "..", "shared", "fixtures", "aws-responses"))
    ap.add_argument("--differences", default=os.path.join(HERE, "differences.tsv"))
    ap.add_argument("--jobs", type=int, default=4, help="servers at once")
    ap.add_argument("--only", default="", help="regex on exchange ids")
    ap.add_argument("--timeout", type=int, default=30)
    ap.add_argument("--self-test", action="store_true",
                    help="feed AWS's own answers to the comparator (all must match)")
    args = ap.parse_args()
    args.corpus = os.path.normpath(args.corpus)
    global SELF_TEST
    SELF_TEST = args.self_test

    path = os.path.join(args.corpus, "responses.jsonl")
    if not os.path.isfile(path):
        msg = "replay.py: no AWS corpus at %s (set SMSERVE_AWS_CORPUS)" % path
        if os.environ.get("CI", "").lower() == "true":
            print(msg + ": a failure under CI=true")
            return 1
        print(msg + ": skipped")
        return SKIP
    if not args.self_test and not args.smserve:
        ap.error("--smserve is required")
    with open(path) as f:
        corpus = [json.loads(l) for l in f if l.strip()]
    by_id = {e["id"]: e for e in corpus}
    diffs = load_differences(args.differences)
    only = re.compile(args.only) if args.only else None
    selected = [e for e in corpus if not only or only.search(e["id"])]
    for e in selected:  # a line matching no exchange is a stale line
        d = difference_for(diffs, e["id"])
        if d:
            d.used += 1
    groups = collections.OrderedDict()
    for e in selected:
        groups.setdefault((e["model"], json.dumps(e["env"], sort_keys=True)), []).append(e)

    t0 = time.monotonic()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futs = {pool.submit(run_group, args, k, v, diffs, by_id): (k, v)
                for k, v in groups.items()}
        for fut in concurrent.futures.as_completed(futs):
            k, exs = futs[fut]
            try:
                results += fut.result()
            except Exception as exc:
                results += [Result(e, "mismatch", "%s: %s" % (type(exc).__name__, exc))
                            for e in exs]

    kinds = ("match", "listed", "refused", "mismatch", "stale")
    table = collections.OrderedDict()
    for r in sorted(results, key=lambda r: r.ex["id"]):
        row = table.setdefault(r.ex.get("config", "?"), collections.Counter())
        row[r.kind] += 1
    total = collections.Counter(r.kind for r in results)
    print("%-26s %9s %8s %7s %8s %10s %6s" % ("config", "exchanges", "matched", "listed",
                                              "refused", "unexpected", "stale"))
    for cfg, c in list(table.items()) + [("total", total)]:
        print("%-26s %9d %8d %7d %8d %10d %6d" % (cfg, sum(c.values()), *(c[k] for k in kinds)))

    bad = sorted((r for r in results if r.kind in ("mismatch", "stale")),
                 key=lambda r: r.ex["id"])
    for r in bad:
        print("%s %s: %s" % ("UNEXPECTED" if r.kind == "mismatch" else "STALE", r.ex["id"],
                             r.detail))
    unused = [d for d in diffs if d.used == 0] if not only else []
    for d in unused:
        print("UNUSED differences.tsv:%d %s: matches no exchange" % (d.lineno, d.pattern))
    kinds_used = collections.Counter()
    for r in results:
        if r.kind in ("listed", "refused"):
            kinds_used[r.detail.reason.split()[0]] += 1
    refused_groups = len({(r.ex["model"], json.dumps(r.ex["env"])) for r in results
                          if r.kind == "refused"})
    replayed = len(results) - total["refused"]
    print("conformance: %d of %d replayed exchanges match AWS; %d differ as listed; "
          "%d refused at start as listed (%d configurations); by kind: %s; %d unexpected, %d stale, "
          "%d unused entries; %d servers in %.0f s" % (
              total["match"], replayed, total["listed"], total["refused"], refused_groups,
              ", ".join("%s %d" % kv for kv in sorted(kinds_used.items())) or "-",
              total["mismatch"], total["stale"],
              len(unused), len(groups), time.monotonic() - t0))
    return 1 if bad or unused else 0


if __name__ == "__main__":
    sys.exit(main())
