#!/usr/bin/python3
"""Flood benchmark (issue 9): what 1,000 hostile or idle connections, a burst of
large bodies and a long steady load do to smserve. Serves the sample model
(models/sample) with build/smserve on a free loopback port and prints:

  1. /ping p50/p99 (a new connection per ping) idle, then with predictions
     flowing (2 keep-alive clients posting models/sample.csv back to back,
     every answer checked exactly against models/sample.expected), then with
     predictions flowing under each of four attacks holding --conns (1,000)
     connections: connect and send nothing; slowloris (a partial head, a byte
     a second); slow body (Content-Length 100000, a byte a second); idle
     keep-alive clients (one /ping, then quiet). Each attack re-opens every
     connection the server closes, so the count stays held; the table shows
     how many were held while measuring, how many the server cut, and the
     predictions' req/s.
  2. the burst: RSS idle after a warm-up (2 rounds of --burst concurrent small
     predictions), peak, and 1 s after --burst (128) concurrent ~6 MB CSV
     bodies (dense rows of 8 features, just under MAX_CONTENT_LENGTH), with
     the statuses (200, or 503 + Retry-After when the body budget is spent).

  bench/flood.py --soak [SECONDS] (600) instead first serves a fresh-connection
  ~1 MB prediction for every connection slot (so every connection thread has
  run once), then drives steady load for that long: 2 keep-alive prediction clients, plus a churn client (fresh-connection
  /ping, a ~1 MB body, a malformed request, a slowloris head, each once a
  second). Every --interval (30) s, after a 0.5 s pause of the churn, it prints
  the server's RSS and open descriptors (/proc/<pid>/fd), and ends with
  "RSS within X MB after warm-up, fds constant: yes/no" (warm-up: the first
  interval).

Loopback only; bounded in connections (--conns + a few) and time (about 2
minutes, or the soak's length). Raises RLIMIT_NOFILE to its hard limit (the
server inherits it).

  bench/flood.py [--soak [SECONDS]] [--interval S] [--conns N] [--pings N] [--burst N]
  env: SMSERVE_BIN (build/smserve); extra server settings pass through the
       environment (e.g. SMSERVE_CONNECTIONS, SMSERVE_BODY_BUDGET_BYTES).
"""
import argparse
import errno
import math
import multiprocessing as mp
import os
import resource
import selectors
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"


def f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


SAMPLE_CSV = open(os.path.join(ROOT, "models", "sample.csv"), "rb").read()
SAMPLE_WANT = [f32(l) for l in open(os.path.join(ROOT, "models", "sample.expected")) if l.strip()]
ROW1 = SAMPLE_CSV.split(b"\n")[0] + b"\n"


def exact(body, want=SAMPLE_WANT, rows=None):
    lines = body.decode("ascii", "replace").splitlines()
    rows = len(want) if rows is None else rows
    if len(lines) != rows:
        return False
    try:
        return all(f32(v) == want[i % len(want)] for i, v in enumerate(lines))
    except ValueError:
        return False


def post_request(body, keep_alive=True):
    return (b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
            + (b"" if keep_alive else b"Connection: close\r\n")
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


PING = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def read_response(f):
    """Reads one response from a socket file; (status, headers, body) or None."""
    line = f.readline()
    if not line:
        return None
    parts = line.split(b" ", 2)
    status = int(parts[1])
    headers = {}
    while True:
        h = f.readline()
        if not h:
            return None
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode("latin-1")
    n = int(headers.get("content-length", "0"))
    body = f.read(n) if n else b""
    if len(body) != n:
        return None
    return status, headers, body


def ping_once(port, timeout=10.0):
    t0 = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(PING)
            r = read_response(s.makefile("rb"))
            status = r[0] if r else -1
    except OSError:
        status = -1
    return time.monotonic() - t0, status


def proc_status(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # kB
    except OSError:
        pass
    return -1


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


# ---------------------------------------------------------------- the server

class Server:
    def __init__(self, binary, extra_env=None):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="smserve-flood-", suffix=".log", delete=False)
        env = dict(os.environ, SM_MODEL_DIR=os.path.join(ROOT, "models", "sample"),
                   SAGEMAKER_BIND_TO_PORT=str(self.port), OMP_NUM_THREADS="1")
        env.update(extra_env or {})
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        for _ in range(300):
            if self.proc.poll() is not None:
                break
            if ping_once(self.port, 1.0)[1] == 200:
                return
            time.sleep(0.05)
        log = self.log_text()
        self.stop()
        sys.exit("flood.py: smserve did not become healthy; its log:\n" + log)

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()[-4000:]

    def alive(self, context):
        if self.proc.poll() is not None:
            sys.exit("flood.py: smserve died (status %s) under %s; its log:\n%s"
                     % (self.proc.returncode, context, self.log_text()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.unlink(self.log.name)
        return self.proc.returncode


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ attacks

ATTACKS = [
    ("silent", "send nothing"),
    ("slowloris", "slowloris head"),
    ("slowbody", "slow body"),
    ("keepalive", "idle keep-alive"),
]
FIRST_BYTES = {
    "silent": b"",
    "slowloris": b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    "slowbody": b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
                b"Content-Length: 100000\r\n\r\n",
    "keepalive": b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}


def attack_proc(port, kind, n, held, cut, stop):
    """Holds n connections of one kind; re-opens what the server closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    slots = [None] * n
    t0 = time.monotonic()
    open_at = [t0 + i / n for i in range(n)]  # the first round spread over 1 s
    trickle = kind in ("slowloris", "slowbody")
    byte = b"a" if kind == "slowloris" else b"1"

    def drop(i, now, by_server=True):
        s = slots[i]
        sel.unregister(s["sock"])
        s["sock"].close()
        slots[i] = None
        open_at[i] = now if by_server else now + 0.1
        if by_server:
            with cut.get_lock():
                cut.value += 1

    while not stop.is_set():
        now = time.monotonic()
        for i in range(n):
            s = slots[i]
            if s is None:
                if now >= open_at[i]:
                    sock = socket.socket()
                    sock.setblocking(False)
                    err = sock.connect_ex((HOST, port))
                    if err not in (0, errno.EINPROGRESS):
                        sock.close()
                        open_at[i] = now + 0.1
                        continue
                    slots[i] = {"sock": sock, "state": "connecting", "next": 0.0, "buf": b""}
                    sel.register(sock, selectors.EVENT_WRITE, i)
            elif trickle and s["state"] == "held" and now >= s["next"]:
                try:
                    s["sock"].send(byte)
                    s["next"] = now + 1.0
                except BlockingIOError:
                    pass
                except OSError:
                    drop(i, now)
        for key, _ in sel.select(timeout=0.05):
            i = key.data
            s = slots[i]
            if s is None:
                continue
            sock = s["sock"]
            if s["state"] == "connecting":
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    drop(i, now, by_server=False)
                    continue
                try:
                    sock.send(FIRST_BYTES[kind])
                except OSError:
                    drop(i, now)
                    continue
                s["state"] = "wait" if kind == "keepalive" else "held"
                s["next"] = now + 1.0
                sel.modify(sock, selectors.EVENT_READ, i)
                continue
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                drop(i, time.monotonic())
            elif s["state"] == "wait":
                s["buf"] += data
                if b"\r\n\r\n" in s["buf"]:
                    s["state"], s["buf"] = "held", b""
        held.value = sum(1 for s in slots if s and s["state"] == "held")
    for s in slots:
        if s:
            s["sock"].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s["sock"].close()


def predictor_proc(port, ok, bad, stop, body=SAMPLE_CSV, want=SAMPLE_WANT):
    """Posts body back to back on one keep-alive connection (re-opened when
    the server closes it); counts exact 200s and anything else."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    req = post_request(body)
    rows = body.count(b"\n")
    sock = f = None
    while not stop.is_set():
        try:
            if sock is None:
                sock = socket.create_connection((HOST, port), timeout=10)
                f = sock.makefile("rb")
            sock.sendall(req)
            r = read_response(f)
        except OSError:
            r = None
        if r and r[0] == 200 and exact(r[2], want, rows):
            with ok.get_lock():
                ok.value += 1
        else:
            with bad.get_lock():
                bad.value += 1
        if r is None or r[1].get("connection", "").lower() == "close":
            if sock:
                sock.close()
            sock = None
    if sock:
        sock.close()


class Background:
    """Child processes (fork) sharing counters and a stop event."""

    def __init__(self):
        self.stop = mp.Event()
        self.procs = []

    def start(self, target, *args):
        p = mp.Process(target=target, args=args + (self.stop,), daemon=True)
        p.start()
        self.procs.append(p)

    def end(self):
        self.stop.set()
        for p in self.procs:
            p.join(30)
            if p.is_alive():
                p.kill()


def measure_pings(port, count, spacing=0.01):
    lat, failed = [], 0
    for _ in range(count):
        t, st = ping_once(port)
        if st == 200:
            lat.append(t)
        else:
            failed += 1
            lat.append(float("inf"))
        time.sleep(spacing)
    lat.sort()

    def q(p):  # nearest rank
        return lat[max(1, math.ceil(round(p * len(lat), 9))) - 1]

    return q(0.50), q(0.99), lat[-1], failed


def fmt_ms(x):
    return "   inf" if x == float("inf") else "%6.2f" % (x * 1e3)


def scenario(server, label, args, attack=None, predictions=True, settle=1.0):
    held, cut = mp.Value("i", 0), mp.Value("l", 0)
    ok, bad = mp.Value("l", 0), mp.Value("l", 0)
    bg = Background()
    if attack:
        bg.start(attack_proc, server.port, attack, args.conns, held, cut)
        t0 = time.monotonic()
        while held.value < args.conns and time.monotonic() - t0 < 20:
            time.sleep(0.05)
        time.sleep(settle)
    cut0 = cut.value
    t0 = time.monotonic()
    if predictions:
        for _ in range(2):
            bg.start(predictor_proc, server.port, ok, bad)
    held_samples = []
    sampler_stop = threading.Event()

    def sample_held():
        while not sampler_stop.wait(0.1):
            held_samples.append(held.value)

    th = threading.Thread(target=sample_held, daemon=True)
    th.start()
    p50, p99, mx, failed = measure_pings(server.port, args.pings)
    elapsed = time.monotonic() - t0
    sampler_stop.set()
    th.join()
    n_ok, n_bad, n_cut = ok.value, bad.value, cut.value - cut0
    bg.end()
    server.alive(label)
    held_avg = statistics.mean(held_samples) if held_samples and attack else 0
    print("%-26s %6s %6s %9s %9s %9s %7d %10s %6d" % (
        label, "%.0f" % held_avg if attack else "-", n_cut if attack else "-", fmt_ms(p50), fmt_ms(p99), fmt_ms(mx), failed,
        "%.0f" % (n_ok / elapsed) if predictions else "-", n_bad), flush=True)


# -------------------------------------------------------------------- burst

def one_request(port, data, keep_body=False, timeout=300):
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            f = s.makefile("rb")
            try:
                s.sendall(data)
            except OSError:
                pass  # refused early (413/503): the answer decides
            r = read_response(f)
            if not r:
                return (-1, {}, b"")
            return r if keep_body else (r[0], r[1], b"")
    except OSError:
        return (-1, {}, b"")


def concurrent(port, data, n, keep_body=False):
    out = [None] * n

    def run(i):
        out[i] = one_request(port, data, keep_body)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def burst(binary, args):
    server = Server(binary)
    small = post_request(SAMPLE_CSV, keep_alive=False)
    for _ in range(2):
        res = concurrent(server.port, small, args.burst, keep_body=True)
        bad = sum(1 for r in res if r[0] != 200 or not exact(r[2]))
        if bad:
            print("burst: warm-up: %d of %d small predictions failed" % (bad, args.burst))
    time.sleep(1.0)
    idle = proc_status(server.pid, "VmRSS")
    rows = (6291456 - 1) // len(ROW1)
    big = post_request(ROW1 * rows, keep_alive=False)
    peak = [idle]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.01):
            peak[0] = max(peak[0], proc_status(server.pid, "VmRSS"))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.monotonic()
    res = concurrent(server.port, big, args.burst)
    took = time.monotonic() - t0
    stop.set()
    th.join()
    peak_hwm = proc_status(server.pid, "VmHWM")
    time.sleep(1.0)
    after = proc_status(server.pid, "VmRSS")
    server.alive("the burst")
    counts = {}
    for st, hdr, _ in res:
        key = "503+Retry-After" if st == 503 and "retry-after" in hdr else str(st)
        counts[key] = counts.get(key, 0) + 1
    print("\nburst: %d concurrent %d-byte CSV bodies (%d rows of 8 features) in %.1f s: %s"
          % (args.burst, len(ROW1) * rows, rows, took,
             ", ".join("%d x %s" % (v, k) for k, v in sorted(counts.items()))))
    print("  RSS idle after warm-up %7.1f MB" % (idle / 1024))
    print("  RSS peak               %7.1f MB (VmHWM %.1f MB)" % (peak[0] / 1024, peak_hwm / 1024))
    print("  RSS 1 s after          %7.1f MB (%+.1f%% of idle)"
          % (after / 1024, 100.0 * (after - idle) / idle if idle > 0 else 0))
    server.stop()


# --------------------------------------------------------------------- soak

def churn_proc(port, quiet, count, stop):
    """Once a second: a fresh-connection /ping, a ~1 MB body, a malformed
    request and a slowloris head left to the server's deadline; pauses
    while `quiet` is set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    mb = post_request(ROW1 * ((1 << 20) // len(ROW1)), keep_alive=False)
    slow = []
    while not stop.is_set():
        if quiet.is_set():
            for s in slow:
                s.close()
            slow = []
            time.sleep(0.02)
            continue
        ping_once(port)
        one_request(port, mb)
        one_request(port, b"GET /ping HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
        try:
            s = socket.create_connection((HOST, port), timeout=5)
            s.sendall(FIRST_BYTES["slowloris"])
            slow.append(s)  # closed by the server's header deadline, or at the next pause
        except OSError:
            pass
        with count.get_lock():
            count.value += 4
        for _ in range(50):  # a second, or until a pause or the end
            if stop.is_set() or quiet.is_set():
                break
            time.sleep(0.02)
    for s in slow:
        s.close()


def warm_every_thread(port):
    """One thread serves each connection, the least recently used one, and
    a thread's stack pages are touched the first time it runs the deepest
    path it will ever run. So before the soak measures, every connection
    slot (SMSERVE_CONNECTIONS, 2048) serves each kind of request the soak
    sends (twice, in a different order of kinds per thread): a fresh-connection ~1 MB prediction, a /ping, a malformed request,
    and a slowloris head left to the server's header deadline (in batches
    held at once, each batch cut by the server)."""
    slots = int(os.environ.get("SMSERVE_CONNECTIONS", "2048"))
    n = slots + 256
    mb = post_request(ROW1 * ((1 << 20) // len(ROW1)), keep_alive=False)
    bad_request = b"GET /ping HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"
    t0 = time.monotonic()
    bad = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        for data, want in ((mb, 200), (PING, 200), (bad_request, 400)) * 2:
            codes = list(pool.map(lambda i: one_request(port, data)[0], range(n)))
            bad += sum(1 for c in codes if c != want)
    held = 0
    batch = max(1, slots * 3 // 4)
    while held < n:
        conns = []
        for _ in range(min(batch, n - held)):
            try:
                s = socket.create_connection((HOST, port), timeout=5)
                s.sendall(FIRST_BYTES["slowloris"])
                conns.append(s)
            except OSError:
                bad += 1
        for s in conns:  # the server answers 408 and closes at its deadline
            s.settimeout(30)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                bad += 1
            s.close()
        held += len(conns) or 1
    print("soak: warm-up: every connection slot served a 1 MB prediction, a /ping and a "
          "malformed request twice, and a slowloris head (%d each) in %.0f s%s"
          % (n, time.monotonic() - t0, ", %d unexpected" % bad if bad else ""), flush=True)


def soak(binary, args):
    server = Server(binary)
    warm_every_thread(server.port)
    ok, bad, churned = mp.Value("l", 0), mp.Value("l", 0), mp.Value("l", 0)
    quiet = mp.Event()
    bg = Background()
    for _ in range(2):
        bg.start(predictor_proc, server.port, ok, bad)
    bg.start(churn_proc, server.port, quiet, churned)
    print("soak: %d s; 2 keep-alive prediction clients and a churn client; a sample every %d s"
          % (args.soak, args.interval))
    print("%8s %9s %6s %12s %10s %8s" % ("t_s", "RSS_MB", "fds", "predictions", "errors",
                                          "churn"))
    samples = []
    t0 = time.monotonic()
    next_at = t0 + args.interval
    while True:
        now = time.monotonic()
        if now >= t0 + args.soak:
            break
        time.sleep(max(0.0, min(next_at, t0 + args.soak) - now))
        if time.monotonic() < next_at:
            break
        server.alive("the soak")
        quiet.set()
        time.sleep(0.5)
        rss, fds = proc_status(server.pid, "VmRSS"), fd_count(server.pid)
        quiet.clear()
        samples.append((rss, fds))
        print("%8.0f %9.1f %6d %12d %10d %8d" % (time.monotonic() - t0, rss / 1024, fds,
                                                 ok.value, bad.value, churned.value), flush=True)
        next_at += args.interval
    bg.end()
    server.alive("the soak")
    server.stop()
    after = samples[1:]  # the first interval is the warm-up
    if not after:
        print("soak: too short for a figure after warm-up (need at least 2 intervals)")
        return
    rss = [r for r, _ in after]
    fds = set(f for _, f in after)
    print("RSS within %.1f MB after warm-up, fds constant: %s%s"
          % ((max(rss) - min(rss)) / 1024, "yes" if len(fds) == 1 else "no",
             "" if len(fds) == 1 else " (%d..%d)" % (min(fds), max(fds))))
    if bad.value:
        print("soak: %d predictions failed or were inexact" % bad.value)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--soak", type=int, nargs="?", const=600, metavar="SECONDS",
                    help="steady load for SECONDS (600) instead of the flood figures")
    ap.add_argument("--interval", type=int, default=30, help="soak sample interval, s (30)")
    ap.add_argument("--conns", type=int, default=1000, help="connections per attack (1000)")
    ap.add_argument("--pings", type=int, default=500, help="/ping samples per row (500)")
    ap.add_argument("--burst", type=int, default=128, help="concurrent 6 MB bodies (128)")
    args = ap.parse_args()
    binary = os.environ.get("SMSERVE_BIN", os.path.join(ROOT, "build", "smserve"))
    if not os.access(binary, os.X_OK):
        sys.exit("flood.py: %s not found; build first (or set SMSERVE_BIN)" % binary)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.conns + 256:
        sys.exit("flood.py: RLIMIT_NOFILE hard limit %d is too low for --conns %d"
                 % (hard, args.conns))
    mp.set_start_method("fork")
    if args.soak:
        soak(binary, args)
        return
    print("flood: %s, %d CPUs; /ping on a new connection each, %d per row; predictions: 2 "
          "keep-alive clients posting models/sample.csv (3 rows), checked exactly"
          % (binary, os.cpu_count(), args.pings))
    print("%-26s %6s %6s %9s %9s %9s %7s %10s %6s" % (
        "scenario", "held", "cut", "p50_ms", "p99_ms", "max_ms", "failed", "pred_req/s",
        "errors"))
    server = Server(binary)
    scenario(server, "idle", args, predictions=False)
    scenario(server, "idle + predictions", args)
    server.stop()
    for kind, label in ATTACKS:
        # a fresh server per attack; the slow-body attack settles 6 s so that
        # its 10 s body deadline falls inside the measurement
        server = Server(binary)
        scenario(server, "%d x %s" % (args.conns, label), args, attack=kind,
                 settle=6.0 if kind == "slowbody" else 1.0)
        server.stop()
    print("(held: attack connections held on average while measuring; cut: how many the "
          "server closed meanwhile, each re-opened at once)")
    burst(binary, args)


if __name__ == "__main__":
    main()
