#!/usr/bin/env python3
"""Multi-model endpoints driven as SageMaker drives them, against the real binary.

usage: test_mme.py --smserve BUILD/smserve [--wrapper CMD] [--churn N] [--sanitized]

Each part starts `smserve serve` with SAGEMAKER_MULTI_MODEL=true (tests/serverproc.py)
and checks, with the models of tests/matrix/fixtures/1.7.6 (each with its request.csv
and the writing release's expected.csv) and models/sample:
  - contract: /ping with no model; POST /models from a directory and a model.tar.gz
    (200, bytes), again (409), a refused artifact (400 naming the check), a missing url
    (404), bad bodies and names (400); GET /models/{name} and 404; invoke through
    /models/{name}/invoke and through /invocations with X-Amzn-SageMaker-Target-Model,
    CSV, JSON, libsvm and RecordIO in, every Accept out, each answer exact against
    expected.csv (float32) and byte for byte equal to a single-model server's
    /invocations answer for the same request; DELETE (200, then 404 for every route);
    GET /models across pages (next_page_token and nextPageToken, limit), every name once
    and in order; /metrics with the model label and the MME metrics.
  - budget: SMSERVE_MODEL_MEMORY_BYTES of 2.5 models: the third load is 507 and leaves
    nothing loaded; after a DELETE it loads.
  - concurrency: 8 clients invoking two models (exact answers) while 2 others load and
    unload other models in a loop; 8 simultaneous loads of one name load it once (one
    200, seven 409); a DELETE during an invoke whose body is still arriving waits for
    it (the invoke gets its exact 200, the DELETE answers after it).
  - churn: N load/invoke/unload cycles over 20 names; the server's RSS after them within
    10% (+4 MiB) of its RSS after the first round (not in the sanitizer build, whose
    allocator keeps freed memory), no model left, and a clean SIGTERM exit
    (LeakSanitizer runs at exit in the sanitizer build: a leak fails it).
Prints one line per failed check and a summary; exits 1 on any failure.
"""
import argparse
import http.client
import json
import os
import re
import shlex
import socket
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import serverproc  # noqa: E402 (tests/serverproc.py)

FIXTURES = os.path.join(REPO, "tests", "matrix", "fixtures", "1.7.6")
KINDS = ["binary-logistic", "multi-softprob", "reg-squarederror-base20", "gblinear-logistic"]
REFUSED = os.path.join(REPO, "tests", "fixtures", "aws", "pickled-booster.refuse.pkl")
MME = {"SAGEMAKER_MULTI_MODEL": "true", "SMSERVE_CONNECTIONS": "64"}


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.lock = threading.Lock()

    def check(self, what, why):
        """why: None when the check passed, else what was wrong. Returns passed."""
        with self.lock:
            if why is None:
                self.passed += 1
                return True
            self.failed.append("%s: %s" % (what, why))
            print("FAIL %s: %s" % (what, why), file=sys.stderr)
            return False

    def equal(self, what, got, want):
        return self.check(what, None if got == want else "got %r, want %r" % (got, want))


def request(port, method, path, body=None, headers=None, timeout=30):
    """(status, headers dict with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def load(port, name, url):
    body = json.dumps({"model_name": name, "url": url}).encode()
    return request(port, "POST", "/models", body, {"Content-Type": "application/json"})


def error_of(body):
    try:
        return json.loads(body).get("error", "")
    except ValueError:
        return "(not JSON: %r)" % body[:200]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", float(x)))[0]


def csv_values(text):
    return [[f32(v) for v in line.split(",")] for line in text.strip().splitlines()]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def fixture(kind):
    d = os.path.join(FIXTURES, kind)
    return {"dir": os.path.join(d, "json"), "targz": os.path.join(d, "targz", "model.tar.gz"),
            "request": read(os.path.join(d, "request.csv")),
            "expected": csv_values(read(os.path.join(d, "expected.csv")).decode())}


def rows_of(request_csv):
    return [[None if v == "" else float(v) for v in line.split(",")]
            for line in request_csv.decode().strip().splitlines()]


def as_libsvm(rows):
    return "".join("0 " + " ".join("%d:%r" % (i, v) for i, v in enumerate(r) if v is not None)
                   + "\n" for r in rows).encode()


def as_json(rows):
    return json.dumps({"instances": rows}).encode()


def recordio(rows):
    """SageMaker's RecordIO framing around Records with features["values"] float32."""
    def varint(n):
        out = b""
        while True:
            b = n & 0x7F
            n >>= 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    def field(num, payload):
        return varint(num << 3 | 2) + varint(len(payload)) + payload

    out = b""
    for r in rows:
        vals = b"".join(struct.pack("<f", float("nan") if v is None else v) for v in r)
        tensor = field(1, vals)                       # Float32Tensor.values (packed)
        value = field(2, tensor)                      # Value.float32_tensor
        entry = field(1, b"values") + field(2, value)  # map entry
        rec = field(1, entry)                         # Record.features
        out += struct.pack("<II", 0xCED7230A, len(rec)) + rec + b"\0" * (-len(rec) % 4)
    return out


def start(args, model_dir, extra):
    cmd = shlex.split(args.wrapper) + [args.smserve]
    srv, why = serverproc.start(cmd, model_dir, extra, args.timeout)
    if why:
        raise RuntimeError("smserve exited at start (%s): %s" % why)
    return srv


def read_response(sock):
    """One HTTP response with Content-Length from a raw socket: (head, body)."""
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)\r\ncontent-length: (\d+)", head) if sep else None
        if m and len(body) >= int(m.group(1)):
            return head, body[:int(m.group(1))]
        chunk = sock.recv(65536)
        if not chunk:
            return head, body
        data += chunk


# ---------------------------------------------------------------------------- parts

def part_contract(args, checks, tmp):
    fx = {k: fixture(k) for k in KINDS}
    sample = os.path.join(REPO, "models", "sample")
    capture = os.path.join(tmp, "capture")
    srv = start(args, "/nonexistent", dict(MME, SMSERVE_CAPTURE_ENABLE="true",
                                           SMSERVE_CAPTURE_DIR=capture))
    single = {}
    try:
        port = srv.port
        st, _, _ = request(port, "GET", "/ping")
        checks.equal("ping with no model", st, 200)
        st, _, body = request(port, "GET", "/models")
        checks.equal("empty list", (st, json.loads(body) if st == 200 else body),
                     (200, {"models": []}))

        # loads: a directory, a model.tar.gz, a single file
        for k in KINDS:
            st, _, body = load(port, k, fx[k]["dir"])
            ok = checks.equal("load %s (directory)" % k, st, 200)
            if ok:
                doc = json.loads(body)
                checks.check("load %s answer" % k, None if doc.get("modelName") == k and
                             doc.get("bytes", 0) > 0 else repr(doc))
        st, _, body = load(port, "tgz", fx["multi-softprob"]["targz"])
        checks.equal("load model.tar.gz", (st, error_of(body) if st != 200 else ""), (200, ""))
        st, _, body = load(port, "sample", os.path.join(sample, "xgboost-model.json"))
        checks.equal("load a single model file", (st, error_of(body) if st != 200 else ""),
                     (200, ""))
        st, _, body = load(port, "binary-logistic", fx["binary-logistic"]["dir"])
        checks.check("load again: 409", None if st == 409 and "loaded" in error_of(body)
                     else "%d %s" % (st, body[:200]))
        st, _, body = load(port, "refused", REFUSED)
        checks.check("load a pickled booster: 400 naming the check",
                     None if st == 400 and "pickle" in error_of(body).lower()
                     else "%d %s" % (st, body[:300]))
        st, _, body = load(port, "missing", os.path.join(tmp, "no-such-dir"))
        checks.check("load a missing url: 404", None if st == 404 and "no-such-dir" in
                     error_of(body) else "%d %s" % (st, body[:200]))
        for what, raw in [("not JSON", b"{model_name"), ("not an object", b"[1]"),
                          ("no url", b'{"model_name": "x"}'),
                          ("url not a string", b'{"model_name": "x", "url": 7}'),
                          ("name with a slash", b'{"model_name": "a/b", "url": "/tmp"}'),
                          ("name ..", b'{"model_name": "..", "url": "/tmp"}'),
                          ("empty name", b'{"model_name": "", "url": "/tmp"}'),
                          ("name of 257 bytes",
                           json.dumps({"model_name": "n" * 257, "url": "/tmp"}).encode())]:
            st, _, body = request(port, "POST", "/models", raw,
                                  {"Content-Type": "application/json"})
            checks.check("load with %s: 400" % what, None if st == 400 and error_of(body)
                         else "%d %s" % (st, body[:200]))
        # hostile requests: each a clear 4xx, the server still serving
        hostile = [
            ("POST", "/models", json.dumps({"model_name": "nul", "url": "/tmp\u0000x"}).encode(),
             {}, 400, "url"),
            ("POST", "/models", json.dumps({"model_name": "etc", "url": "/etc/passwd"}).encode(),
             {}, 400, "refused"),
            ("POST", "/models", json.dumps({"model_name": "root", "url": "/"}).encode(), {}, 400,
             "refused"),
            ("POST", "/models", b'{"model_name": "big", "url": "' + b"x" * 70000 + b'"}', {},
             413, "65536"),
            ("POST", "/models", b"", {}, 400, "JSON"),
            ("GET", "/models/%2e%2e", None, {}, 400, "0x25"),
            ("GET", "/models/a%2Fb", None, {}, 400, "0x25"),
            ("GET", "/models/" + "n" * 300, None, {}, 400, "256"),
            ("GET", "/models/", None, {}, 400, "empty"),
            ("DELETE", "/models/..", None, {}, 400, ".."),
            ("GET", "/models?limit=x", None, {}, 400, "limit"),
            ("GET", "/models?next_page_token=a/b", None, {}, 400, "next_page_token"),
            ("POST", "/models/binary-logistic/invoke/x", b"1\n", {}, 404, "invoke"),
            ("GET", "/modelsx", None, {}, 404, "no such path"),
        ]
        for method, path, raw, h, want, word in hostile:
            h = dict(h, **{"Content-Type": "application/json"})
            st, _, body = request(port, method, path, raw, h)
            checks.check("%s %s: %d naming %r" % (method, path[:60], want, word),
                         None if st == want and word.lower() in error_of(body).lower()
                         else "%d %s" % (st, body[:200]))
        for name in ["refused", "missing", "x", "nul", "etc", "root", "big"]:
            st, _, _ = request(port, "GET", "/models/" + name)
            checks.equal("a failed load leaves nothing: GET /models/%s" % name, st, 404)

        # describe
        st, _, body = request(port, "GET", "/models/multi-softprob")
        if checks.equal("describe", st, 200):
            doc = json.loads(body)
            checks.check("describe answer", None if doc.get("modelName") == "multi-softprob" and
                         doc.get("modelUrl") == fx["multi-softprob"]["dir"] and
                         doc.get("objective") == "multi:softprob" and doc.get("features") == 6
                         else repr(doc))
        st, _, _ = request(port, "GET", "/models/unknown")
        checks.equal("describe unknown", st, 404)

        # invocations: exact, and the same bytes as single-model /invocations
        for k in KINDS:
            single[k] = start(args, fx[k]["dir"], {})
        for k in KINDS:
            rows = rows_of(fx[k]["request"])
            bodies = [("text/csv", fx[k]["request"]), ("application/json", as_json(rows)),
                      ("text/libsvm", as_libsvm(rows)),
                      ("application/x-recordio-protobuf", recordio(rows))]
            for ctype, payload in bodies:
                for accept in ["text/csv", "application/json", "application/jsonlines",
                               "application/x-recordio-protobuf"]:
                    h = {"Content-Type": ctype, "Accept": accept}
                    what = "%s %s -> %s" % (k, ctype, accept)
                    st, hd, got = request(port, "POST", "/models/%s/invoke" % k, payload, h)
                    if not checks.equal(what + " status", (st, error_of(got) if st != 200
                                                          else ""), (200, "")):
                        continue
                    st1, hd1, want = request(single[k].port, "POST", "/invocations", payload, h)
                    checks.check(what + " equals /invocations", None if (st1, want) == (st, got)
                                 and hd1.get("content-type") == hd.get("content-type")
                                 else "%d %r vs %r" % (st1, want[:120], got[:120]))
                    if accept == "text/csv":
                        checks.equal(what + " values", csv_values(got.decode()),
                                     fx[k]["expected"])
            st, _, got = request(port, "POST", "/invocations", fx[k]["request"],
                                 {"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Model": k})
            checks.check("%s through /invocations + Target-Model" % k,
                         None if st == 200 and csv_values(got.decode()) == fx[k]["expected"]
                         else "%d %r" % (st, got[:200]))
        st, _, got = request(port, "POST", "/models/tgz/invoke",
                             fx["multi-softprob"]["request"], {"Content-Type": "text/csv"})
        checks.check("model.tar.gz invoke exact", None if st == 200 and csv_values(got.decode())
                     == fx["multi-softprob"]["expected"] else "%d %r" % (st, got[:200]))
        st, _, got = request(port, "POST", "/models/sample/invoke", read(sample + ".csv"),
                             {"Content-Type": "text/csv"})
        checks.check("sample invoke exact", None if st == 200 and csv_values(got.decode()) ==
                     csv_values(read(sample + ".expected").decode())
                     else "%d %r" % (st, got[:200]))
        for path, h, want in [("/invocations", {}, 400),
                              ("/invocations", {"X-Amzn-SageMaker-Target-Model": "unknown"}, 404),
                              ("/invocations", {"X-Amzn-SageMaker-Target-Model": "a b"}, 400),
                              ("/models/unknown/invoke", {}, 404),
                              ("/models/sample/other", {}, 404)]:
            h = dict(h, **{"Content-Type": "text/csv"})
            st, _, body = request(port, "POST", path, fx["binary-logistic"]["request"], h)
            checks.check("POST %s %s: %d" % (path, h, want),
                         None if st == want and error_of(body) else "%d %s" % (st, body[:200]))
        st, hd, _ = request(port, "GET", "/models/sample/invoke")
        checks.check("GET invoke: 405 with Allow", None if st == 405 and "POST" in
                     hd.get("allow", "") else "%d %s" % (st, hd))
        st, hd, _ = request(port, "PUT", "/models")
        checks.check("PUT /models: 405 with Allow", None if st == 405 and "POST" in
                     hd.get("allow", "") else "%d %s" % (st, hd))

        # pagination
        names = sorted(["p%03d" % i for i in range(37)])
        for n in names:
            load(port, n, fx["binary-logistic"]["dir"])
        everything = sorted(names + KINDS + ["tgz", "sample"])
        seen, token, pages = [], None, 0
        while pages < 20:
            q = "?limit=10" + ("&%s=%s" % ("next_page_token" if pages % 2 else "nextPageToken",
                                           token) if token else "")
            st, _, body = request(port, "GET", "/models" + q)
            if not checks.equal("list page %d" % pages, st, 200):
                break
            doc = json.loads(body)
            pages += 1
            checks.check("page %d size" % pages, None if len(doc["models"]) == 10 or
                         "nextPageToken" not in doc else len(doc["models"]))
            for m in doc["models"]:
                seen.append(m["modelName"])
                if m["modelName"].startswith("p"):
                    checks.equal("modelUrl of " + m["modelName"], m["modelUrl"],
                                 fx["binary-logistic"]["dir"])
            token = doc.get("nextPageToken")
            if not token:
                break
        checks.equal("every model listed once, in order", seen, everything)
        checks.equal("pages", pages, (len(everything) + 9) // 10)
        st, _, body = request(port, "GET", "/models?limit=0")
        checks.equal("limit 0: 400", st, 400)
        st, _, body = request(port, "GET", "/models?limit=1001")
        checks.equal("limit 1001: 400", st, 400)

        # metrics: the model dimension and the MME metrics
        request(port, "POST", "/models/p000/invoke", fx["binary-logistic"]["request"],
                {"Content-Type": "text/csv"})
        st, _, body = request(port, "GET", "/metrics")
        text = body.decode()
        checks.check("metrics: p000's invocations", None if re.search(
            r'model="p000"[^\n]*\} 1(\.0)?\n', text) else "no model=\"p000\" series with 1")
        checks.check("metrics: loaded models", None if re.search(
            r'loaded_models[^\n]* %d(\.0)?\n' % len(everything), text) else
            "no loaded_models gauge of %d" % len(everything))

        # unload
        st, _, body = request(port, "DELETE", "/models/sample")
        checks.equal("DELETE", st, 200)
        for method, path in [("DELETE", "/models/sample"), ("GET", "/models/sample"),
                             ("POST", "/models/sample/invoke")]:
            st, _, _ = request(port, method, path, b"1,2\n" if method == "POST" else None,
                               {"Content-Type": "text/csv"})
            checks.equal("%s %s after DELETE" % (method, path), st, 404)
        st, _, _ = load(port, "sample", sample)
        checks.equal("load again after DELETE", st, 200)
    finally:
        for s in single.values():
            s.stop()
        why = srv.stop()
        checks.check("contract server clean stop", why)
    # data capture records each invocation's model: the path's name, or the header's
    targets = {}
    for root, _, files in os.walk(capture):
        for f in files:
            with open(os.path.join(root, f)) as fh:
                for line in fh:
                    meta = json.loads(line)["eventMetadata"]
                    t = meta.get("targetModel")
                    targets[t] = targets.get(t, 0) + 1
    for k in KINDS:
        # 16 through /models/k/invoke, 1 through /invocations with the header
        checks.equal("capture: records with targetModel %s" % k, targets.get(k), 17)
    checks.equal("capture: records without a targetModel", targets.get(None), None)


def part_budget(args, checks, tmp):
    fx = fixture("binary-logistic")
    srv = start(args, "/nonexistent", MME)
    try:
        st, _, body = load(srv.port, "probe", fx["dir"])
        if not checks.equal("budget probe load", st, 200):
            return
        each = json.loads(body)["bytes"]
    finally:
        checks.check("budget probe clean stop", srv.stop())
    srv = start(args, "/nonexistent", dict(MME, SMSERVE_MODEL_MEMORY_BYTES=str(each * 5 // 2)))
    try:
        port = srv.port
        for n in ["a", "b"]:
            checks.equal("budget: load %s" % n, load(port, n, fx["dir"])[0], 200)
        st, _, body = load(port, "c", fx["dir"])
        checks.check("budget: third load 507", None if st == 507 and "budget" in error_of(body)
                     else "%d %s" % (st, body[:200]))
        checks.equal("budget: nothing half loaded", request(port, "GET", "/models/c")[0], 404)
        st, _, body = request(port, "GET", "/models")
        checks.equal("budget: two listed", [m["modelName"] for m in json.loads(body)["models"]],
                     ["a", "b"])
        checks.equal("budget: DELETE a", request(port, "DELETE", "/models/a")[0], 200)
        checks.equal("budget: c loads after the DELETE", load(port, "c", fx["dir"])[0], 200)
        st, _, got = request(port, "POST", "/models/c/invoke", fx["request"],
                             {"Content-Type": "text/csv"})
        checks.check("budget: c predicts exactly", None if st == 200 and
                     csv_values(got.decode()) == fx["expected"] else "%d %r" % (st, got[:100]))
    finally:
        checks.check("budget server clean stop", srv.stop())


def part_concurrency(args, checks, tmp):
    fxa, fxb = fixture("binary-logistic"), fixture("multi-softprob")
    srv = start(args, "/nonexistent", MME)
    port = srv.port
    try:
        load(port, "a", fxa["dir"])
        load(port, "b", fxb["dir"])
        stop = threading.Event()
        counts = {"invokes": 0, "loads": 0}

        def invoker(i):
            fx, name = (fxa, "a") if i % 2 else (fxb, "b")
            while not stop.is_set():
                st, _, got = request(port, "POST", "/models/%s/invoke" % name, fx["request"],
                                     {"Content-Type": "text/csv"})
                ok = st == 200 and csv_values(got.decode()) == fx["expected"]
                if not ok:
                    checks.check("concurrent invoke of %s" % name, "%d %r" % (st, got[:200]))
                    return
                with checks.lock:
                    counts["invokes"] += 1

        def churner(i):
            n = 0
            while not stop.is_set():
                name = "c%d-%d" % (i, n % 3)
                st, _, body = load(port, name, fxa["targz"] if n % 2 else fxa["dir"])
                if st != 200:
                    checks.check("load %s under load" % name, "%d %s" % (st, body[:200]))
                    return
                st, _, body = request(port, "DELETE", "/models/" + name)
                if st != 200:
                    checks.check("unload %s under load" % name, "%d %s" % (st, body[:200]))
                    return
                n += 1
                with checks.lock:
                    counts["loads"] += 1

        threads = [threading.Thread(target=invoker, args=(i,)) for i in range(8)]
        threads += [threading.Thread(target=churner, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        checks.check("concurrent work happened", None if counts["invokes"] > 50 and
                     counts["loads"] > 5 else repr(counts))
        print("concurrency: %d exact invokes, %d load/unload cycles in %.0f s" % (
            counts["invokes"], counts["loads"], args.seconds))

        # one name loaded once
        results = []

        def loader():
            results.append(load(port, "same", fxb["dir"])[0])

        threads = [threading.Thread(target=loader) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        checks.equal("8 simultaneous loads of one name", sorted(results), [200] + [409] * 7)

        # DELETE waits for an invoke whose body is still arriving
        body = fxa["request"]
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /models/a/invoke HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
        time.sleep(0.3)  # the invoke holds the model now
        done = {}

        def deleter():
            done["status"] = request(port, "DELETE", "/models/a")[0]
            done["at"] = time.monotonic()

        t = threading.Thread(target=deleter)
        t.start()
        time.sleep(0.5)
        checks.check("DELETE waits for the invoke in flight", None if "status" not in done
                     else "DELETE answered %d before the body was sent" % done["status"])
        sent_at = time.monotonic()
        sock.sendall(body[10:])
        head, got = read_response(sock)
        sock.close()
        t.join(10)
        checks.check("the invoke in flight is answered exactly", None if head.startswith(
            b"HTTP/1.1 200") and csv_values(got.decode()) == fxa["expected"]
            else repr((head + got)[:200]))
        checks.check("then the DELETE", None if done.get("status") == 200 and
                     done.get("at", 0) >= sent_at else repr(done))
    finally:
        checks.check("concurrency server clean stop", srv.stop())


def part_churn(args, checks, tmp):
    fx = fixture("binary-logistic")
    srv = start(args, "/nonexistent", MME)
    port = srv.port
    names = ["m%02d" % i for i in range(20)]
    try:
        def round_(r):
            for i, n in enumerate(names):
                url = fx["targz"] if (r + i) % 4 == 0 else fx["dir"]
                st, _, body = load(port, n, url)
                if st != 200:
                    return "load %s: %d %s" % (n, st, body[:200])
            for n in names:
                st, _, got = request(port, "POST", "/models/%s/invoke" % n, fx["request"],
                                     {"Content-Type": "text/csv"})
                if st != 200 or csv_values(got.decode()) != fx["expected"]:
                    return "invoke %s: %d %r" % (n, st, got[:100])
            for n in names:
                st, _, body = request(port, "DELETE", "/models/" + n)
                if st != 200:
                    return "unload %s: %d %s" % (n, st, body[:200])
            return None

        rounds = max(2, args.churn // len(names))
        why = round_(0)
        base = serverproc.rss_kib(srv.proc.pid)
        t0 = time.monotonic()
        trend = []
        for r in range(1, rounds):
            why = why or round_(r)
            if r % max(1, rounds // 10) == 0:
                trend.append(serverproc.rss_kib(srv.proc.pid))
        after = serverproc.rss_kib(srv.proc.pid)
        if os.environ.get("MME_VERBOSE"):
            print("churn RSS trend (KiB):", trend)
        checks.check("churn cycles", why)
        # AddressSanitizer's allocator keeps what is freed (its quarantine, per-thread
        # caches, allocation stacks), so its RSS says nothing of leaks: there LeakSanitizer
        # at exit does, and the RSS is checked in the plain build.
        limit = base * 1.10 + 4096
        if not args.sanitized:
            checks.check("churn RSS", None if after <= limit else
                         "%d KiB after %d cycles, %d KiB after the first round" % (
                             after, rounds * len(names), base))
        st, _, body = request(port, "GET", "/models")
        checks.equal("churn leaves no model", json.loads(body)["models"] if st == 200 else st, [])
        print("churn: %d load/invoke/unload cycles in %.1f s; RSS %d KiB after round 1, "
              "%d KiB after all" % (rounds * len(names), time.monotonic() - t0, base, after))
    finally:
        checks.check("churn server clean stop (no leak)", srv.stop())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smserve", required=True)
    ap.add_argument("--wrapper", default="")
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--churn", type=int, default=2000, help="load/invoke/unload cycles")
    ap.add_argument("--seconds", type=float, default=4, help="of the concurrency part")
    ap.add_argument("--only", default="", help="regex on part names")
    ap.add_argument("--sanitized", action="store_true",
                    help="an AddressSanitizer build: its freed-memory quarantine (capped "
                    "here) counts in the churn's RSS")
    args = ap.parse_args()
    checks = Checks()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for name, part in [("contract", part_contract), ("budget", part_budget),
                           ("concurrency", part_concurrency), ("churn", part_churn)]:
            if args.only and not re.search(args.only, name):
                continue
            try:
                part(args, checks, tmp)
            except Exception as e:  # a part that cannot run fails
                checks.check(name, "%s: %s" % (type(e).__name__, e))
    print("mme: %d passed, %d failed in %.0f s" % (checks.passed, len(checks.failed),
                                                    time.monotonic() - t0))
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
