#!/usr/bin/python3
"""Multi-model endpoint benchmark (issue 11): the figures for the README's table.

Makes a 100-tree model (bench/make_load_model.py load:100:6:30: binary:logistic,
depth 6, 30 features, JSON, and the same file as model.tar.gz), starts SMSERVE_BIN
(build/smserve) with SAGEMAKER_MULTI_MODEL=true on a free loopback port, and prints:

  1. load time of POST /models, p50 and p99 over --loads (200) loads, from the
     directory, from the model.tar.gz and from a directory holding the same model
     saved as UBJSON (wall time at the client, and the server's own loadTimeMs), each
     load followed by its DELETE;
  2. how many such models fit in 1 GiB: a second server with SMSERVE_MODEL_MEMORY_BYTES
     of --fit-mib (64) MiB loads under distinct names until the first 507; the count,
     the bytes each is counted at, the server's RSS growth per model (what it really
     holds, for comparison), and 1 GiB / bytes each (the budget is a plain sum);
  3. invoke overhead: median and p99 latency of POST /models/m/invoke against
     POST /invocations of a single-model server on the same model (a one-row CSV
     body, one keep-alive client each, --invokes requests in alternating blocks of
     500 so both see the same machine), and their ratio;
  4. an invoke's p99 while other models load and unload (--churners clients, 1 by
     default, doing load/DELETE back to back) against its idle p99, and their ratio.

Every answer is checked: predictions equal across the two servers, loads 200, the
fit stops at 507. Loopback only, bounded (about a minute).

  bench/mme.py [--loads N] [--invokes N] [--churners N]
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
import serverproc  # noqa: E402 (tests/serverproc.py)

GIB = 1 << 30


def q(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p * len(s) + 0.5)) - 1))]


class Client:
    """One keep-alive connection."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return r.status, r.read()


def load(c, name, url):
    return c.call("POST", "/models", json.dumps({"model_name": name, "url": url}).encode(),
                  {"Content-Type": "application/json"})


def must(what, status, body, want=200):
    if status != want:
        sys.exit("bench/mme.py: %s: %d %s" % (what, status, body[:300]))


def timed_loads(port, url, n, label):
    c = Client(port)
    wall, server = [], []
    for i in range(n):
        t = time.perf_counter()
        st, body = load(c, "l%d" % i, url)
        wall.append((time.perf_counter() - t) * 1000)
        must("load %s" % label, st, body)
        server.append(json.loads(body)["loadTimeMs"])
        st, body = c.call("DELETE", "/models/l%d" % i)
        must("unload", st, body)
    print("load from %-12s p50 %6.2f ms  p99 %6.2f ms  (server's loadTimeMs p50 %.2f, p99 %.2f)"
          % (label, q(wall, 0.5), q(wall, 0.99), q(server, 0.5), q(server, 0.99)))
    return q(wall, 0.5)


def invoke_latencies(c, path, body, headers, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        st, got = c.call("POST", path, body, headers)
        out.append((time.perf_counter() - t) * 1e6)
        must(path, st, got)
    return out, got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loads", type=int, default=200)
    ap.add_argument("--invokes", type=int, default=10000)
    ap.add_argument("--fit-mib", type=int, default=64)
    ap.add_argument("--churners", type=int, default=1,
                    help="clients loading and unloading during part 4")
    args = ap.parse_args()
    binary = os.environ.get("SMSERVE_BIN", os.path.join(REPO, "build", "smserve"))
    tmp = tempfile.mkdtemp(prefix="smserve-mme-bench-")
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make_load_model.py"), tmp,
                    "load:100:6:30", "loadubj:100:6:30:ubj"], check=True,
                   stdout=subprocess.DEVNULL)
    model_dir = os.path.join(tmp, "load")
    targz = os.path.join(tmp, "load-tar", "model.tar.gz")
    env = {"SAGEMAKER_MULTI_MODEL": "true", "SMSERVE_MODEL_MEMORY_BYTES": str(GIB),
           "SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SMSERVE_CONNECTIONS": "64"}
    srv, why = serverproc.start([binary], "/nonexistent", env, 60)
    if why:
        sys.exit("bench/mme.py: smserve exited at start: %s" % (why,))
    single, why = serverproc.start([binary], model_dir, {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, 60)
    if why:
        sys.exit("bench/mme.py: single-model smserve exited at start: %s" % (why,))
    try:
        print("model: 100 trees of depth 6, 30 features, binary:logistic (%d bytes of JSON)" %
              os.path.getsize(os.path.join(model_dir, "xgboost-model.json")))
        # 1. load times
        timed_loads(srv.port, model_dir, args.loads, "directory")
        timed_loads(srv.port, targz, args.loads, "model.tar.gz")
        timed_loads(srv.port, os.path.join(tmp, "loadubj"), args.loads, "UBJSON dir")

        # 2. models in 1 GiB
        fit_env = dict(env, SMSERVE_MODEL_MEMORY_BYTES=str(args.fit_mib << 20))
        fit, why = serverproc.start([binary], "/nonexistent", fit_env, 60)
        if why:
            sys.exit("bench/mme.py: smserve exited at start: %s" % (why,))
        try:
            c = Client(fit.port)
            must("fit warm-up load", *load(c, "warm", model_dir))
            rss0 = serverproc.rss_kib(fit.proc.pid)
            n, each, t = 0, 0, time.perf_counter()
            while n < 100000:
                st, body = load(c, "f%d" % n, model_dir)
                if st == 507:
                    break
                must("fit load", st, body)
                each = json.loads(body)["bytes"]
                n += 1
            rss1 = serverproc.rss_kib(fit.proc.pid)
            print("models in %d MiB: %d besides the first (first 507 at the next; %.1f s of "
                  "loads); counted at %d bytes each, RSS grew %d bytes per model; 1 GiB holds "
                  "%d" % (args.fit_mib, n, time.perf_counter() - t, each,
                          (rss1 - rss0) * 1024 // max(1, n), GIB // max(1, each)))
        finally:
            fit.stop()
        c = Client(srv.port)

        # 3. invoke overhead
        must("load m", *load(c, "m", model_dir))
        row = ",".join("%.3f" % ((i * 0.37) % 4 - 2) for i in range(30)).encode() + b"\n"
        h = {"Content-Type": "text/csv"}
        mc, sc = Client(srv.port), Client(single.port)
        multi, one = [], []
        for _ in range(max(1, args.invokes // 1000)):
            lat, got_m = invoke_latencies(mc, "/models/m/invoke", row, h, 500)
            multi += lat
            lat, got_s = invoke_latencies(sc, "/invocations", row, h, 500)
            one += lat
            if got_m != got_s:
                sys.exit("bench/mme.py: /models/m/invoke answered %r, /invocations %r" %
                         (got_m, got_s))
        print("invoke latency: /models/m/invoke p50 %.1f us p99 %.1f us; /invocations p50 %.1f us "
              "p99 %.1f us; ratio of medians %.3f" % (
                  q(multi, 0.5), q(multi, 0.99), q(one, 0.5), q(one, 0.99),
                  q(multi, 0.5) / q(one, 0.5)))

        # 4. invoke p99 while other models load and unload
        idle, _ = invoke_latencies(mc, "/models/m/invoke", row, h, args.invokes // 2)
        stop = threading.Event()
        cycles = [0]

        def churn(i):
            cc = Client(srv.port)
            k = 0
            while not stop.is_set():
                name = "c%d-%d" % (i, k % 4)
                must("churn load", *load(cc, name, targz if k % 2 else model_dir))
                must("churn unload", *cc.call("DELETE", "/models/" + name))
                k += 1
                cycles[0] += 1

        threads = [threading.Thread(target=churn, args=(i,)) for i in range(args.churners)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        busy, _ = invoke_latencies(mc, "/models/m/invoke", row, h, args.invokes // 2)
        stop.set()
        for t in threads:
            t.join()
        print("invoke p99 idle %.1f us; while %d client(s) load and unload (%d cycles) %.1f us "
              "(p50 %.1f us); ratio %.2f" % (q(idle, 0.99), args.churners, cycles[0],
                                             q(busy, 0.99), q(busy, 0.5),
                                             q(busy, 0.99) / q(idle, 0.99)))
    finally:
        for s in (srv, single):
            why = s.stop()
            if why:
                print("bench/mme.py: %s" % why, file=sys.stderr)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
