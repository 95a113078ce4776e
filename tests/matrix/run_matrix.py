#!/usr/bin/python3
"""The cross-release parity matrix, served through the real smserve binary.

usage: run_matrix.py --smserve BUILD/smserve [--wrapper "qemu-aarch64-static -L SYSROOT"]
                     [--engines native,xgboost] [--jobs N] [--only REGEX] [--fixtures DIR]
                     [--expect-extra FILE]

For every model in fixtures/index.tsv (made by gen_matrix.py: models saved by
XGBoost 0.90 .. 3.4 in every format each release writes, with that release's own
predictions for a request set with missing values), and for each engine:
  1. `smserve check <model>` must say what expect.tsv says: servable, or refused
     with the named check and a reason that names both the writing release and
     this runtime's;
  2. a servable model is served (`smserve serve` on a free loopback port with
     SMSERVE_ENGINE set), request.csv is POSTed to /invocations, and every value
     of the response must be the writing release's prediction bit for bit as a
     float32 (or within the ulps expect.tsv allows, for the cases listed there
     with the reason the releases' arithmetic differs; --expect-extra adds a
     platform's own rules, e.g. expect-aarch64.tsv, read before expect.tsv's);
  3. with SMSERVE_ENGINE=native, the engine `check` reports is counted (native
     evaluator or C API) and printed per family at the end.
Ends with "N passed, M failed" and exits 1 on any failure.
"""
import argparse
import concurrent.futures
import fnmatch
import os
import re
import shlex
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import serverproc  # noqa: E402 (tests/serverproc.py)


def f32(text):
    return struct.unpack("<f", struct.pack("<f", float(text)))[0]


def f32_bits(x):
    return struct.unpack("<i", struct.pack("<f", x))[0]


def ulp_distance(a, b):
    """Distance in float32 steps between two float32 values (NaN only equals NaN)."""
    if a != a or b != b:
        return 0 if (a != a and b != b) else 1 << 31
    ia, ib = f32_bits(a), f32_bits(b)
    # Map the sign-magnitude bit patterns onto one monotonic integer line.
    ia = ia if ia >= 0 else -(ia & 0x7FFFFFFF)
    ib = ib if ib >= 0 else -(ib & 0x7FFFFFFF)
    return abs(ia - ib)


def read_rows(path):
    with open(path) as f:
        return [[f32(v) for v in line.strip().split(",")] for line in f if line.strip()]


def load_expectations(path):
    """expect.tsv: release-glob, case-glob, format-glob, outcome, reason. Outcome
    is `exact`, `ulp:N` or `refuse:<check>`; the first matching line wins."""
    rules = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 5:
                sys.exit(f"{path}: expected 5 tab-separated fields: {line!r}")
            rules.append(parts)
    return rules


def expectation(rules, release, case, fmt):
    for rel, cas, fm, outcome, reason in rules:
        if fnmatch.fnmatch(release, rel) and fnmatch.fnmatch(case, cas) \
                and fnmatch.fnmatch(fmt, fm):
            return outcome, reason
    return "exact", ""


class Runner:
    def __init__(self, args):
        self.cmd = shlex.split(args.wrapper or "") + [args.smserve]
        self.runtime = args.runtime
        self.timeout = args.timeout
        self.lock = threading.Lock()
        self.engines = {}  # (family, engine text) -> count

    def run_check(self, model, engine):
        env = dict(os.environ, SMSERVE_ENGINE=engine)
        p = subprocess.run(self.cmd + ["check", model], env=env, capture_output=True,
                           text=True, timeout=self.timeout)
        return p.returncode, p.stdout + p.stderr

    def serve_and_predict(self, model, engine, body):
        # serverproc.start tries another port when smserve finds its own taken
        # at start; the /ping that answered may still have come from a parallel
        # job's server on that port, which shows when this one has exited.
        for attempt in range(5):
            try:
                return self.serve_once(model, engine, body)
            except serverproc.PortTaken:
                if attempt == 4:
                    raise

    def serve_once(self, model, engine, body):
        srv, started = serverproc.start(self.cmd, model, {"SMSERVE_ENGINE": engine},
                                        self.timeout)
        try:
            if started is not None:
                raise RuntimeError("smserve exited %d at start: %s" %
                                   (started[0], started[1][-600:]))
            req = urllib.request.Request(
                f"http://127.0.0.1:{srv.port}/invocations", data=body, method="POST",
                headers={"Content-Type": "text/csv", "Accept": "text/csv"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()
        finally:
            if srv.port_taken():
                raise serverproc.PortTaken(srv.port)
            why = srv.stop()
            if why and started is None:
                raise RuntimeError("smserve " + why)

    def one(self, item, engine):
        """Returns None when the model behaves as expected, else what went wrong."""
        release, case, fmt, model, outcome, reason, family = item
        code, out = self.run_check(model, engine)
        if outcome.startswith("refuse:"):
            check = outcome.split(":", 1)[1]
            if code == 0:
                return f"servable, but expected a refusal ({check}: {reason})"
            line = next((l for l in out.splitlines() if l.startswith("REFUSED")), "")
            if f"check {check}" not in line:
                return f"refused, but not by check {check}: {line or out[-300:]}"
            # A legacy binary file records only major.minor of its writer.
            named = release in line or re.search(
                r"XGBoost %s\.[0-9]+\b" % re.escape(".".join(release.split(".")[:2])), line)
            if not named or self.runtime not in line:
                return f"the refusal does not name releases {release} and {self.runtime}: {line}"
            return None
        if code != 0:
            return "refused: " + next((l for l in out.splitlines()
                                       if l.startswith("REFUSED")), out[-300:])
        if engine == "native":
            eng = next((l for l in out.splitlines() if l.startswith("engine:")), "engine: ?")
            kind = "native" if "native evaluator" in eng else "C API"
            with self.lock:
                key = (family, kind)
                self.engines[key] = self.engines.get(key, 0) + 1
                if kind != "native":
                    self.engines.setdefault(("why", family), set()).add(
                        eng.split("(", 1)[-1].rstrip(")")[:120])
        # <release>/<case>/<format>/<model file or model.tar.gz>
        base = os.path.dirname(os.path.dirname(model) if fmt == "targz" else model)
        with open(os.path.join(base, "request.csv"), "rb") as f:
            body = f.read()
        want = read_rows(os.path.join(base, "expected.csv"))
        status, text = self.serve_and_predict(model, engine, body)
        if status != 200:
            return f"/invocations answered {status}: {text[:300]}"
        got = [[f32(v) for v in line.split(",")] for line in text.splitlines() if line]
        if len(got) != len(want):
            return f"{len(got)} rows, expected {len(want)}"
        allowed = int(outcome.split(":", 1)[1]) if outcome.startswith("ulp:") else 0
        worst = 0
        for r, (g, w) in enumerate(zip(got, want)):
            if len(g) != len(w):
                return f"row {r}: {len(g)} values, expected {len(w)}"
            for c, (a, b) in enumerate(zip(g, w)):
                d = ulp_distance(a, b)
                worst = max(worst, d)
                if d > allowed:
                    return (f"row {r} value {c}: served {a!r}, release {release} predicts "
                            f"{b!r} ({d} ulp apart, {allowed} allowed)")
        return None


def family_of(case, fmt):
    return case


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smserve", required=True)
    ap.add_argument("--wrapper", default="", help="command prefix, e.g. qemu-user")
    ap.add_argument("--engines", default="native,xgboost")
    ap.add_argument("--jobs", type=int, default=16,
                    help="models in flight (each mostly waits on its server)")
    ap.add_argument("--only", default="", help="regex on release/case/format")
    ap.add_argument("--fixtures", default=os.path.join(HERE, "fixtures"))
    ap.add_argument("--expect", default=os.path.join(HERE, "expect.tsv"))
    ap.add_argument("--expect-extra", action="append", default=[], metavar="FILE",
                    help="more rules in expect.tsv's format, read before --expect's (so they "
                         "win where both match), e.g. expect-aarch64.tsv; may be repeated")
    ap.add_argument("--runtime", default="", help="runtime version (default: --version)")
    ap.add_argument("--timeout", type=int, default=60)
    args = ap.parse_args()

    if not args.runtime:
        v = subprocess.run(shlex.split(args.wrapper) + [args.smserve, "--version"],
                           capture_output=True, text=True).stdout
        m = re.search(r"XGBoost (\d+\.\d+\.\d+)", v)
        if not m:
            sys.exit("run_matrix.py: cannot read the runtime version from --version: " + v)
        args.runtime = m.group(1)
    rules = [r for extra in args.expect_extra for r in load_expectations(extra)]
    rules += load_expectations(args.expect)
    only = re.compile(args.only) if args.only else None

    items = []
    with open(os.path.join(args.fixtures, "index.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            if row["path"] == "-":
                continue
            release, case, fmt = row["release"], row["case"], row["format"]
            if only and not only.search(f"{release}/{case}/{fmt}"):
                continue
            path = os.path.join(args.fixtures, row["path"])
            model = path if fmt == "targz" else os.path.dirname(path)
            outcome, reason = expectation(rules, release, case, fmt)
            items.append((release, case, fmt, model, outcome, reason, family_of(case, fmt)))
    if not items:
        sys.exit("run_matrix.py: no fixture selected")

    runner = Runner(args)
    engines = [e for e in args.engines.split(",") if e]
    jobs = [(it, e) for it in items for e in engines]
    failures = []
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(runner.one, it, e): (it, e) for it, e in jobs}
        for fut in concurrent.futures.as_completed(futures):
            it, e = futures[fut]
            try:
                err = fut.result()
            except Exception as exc:  # a crash or timeout of the server is a failure
                err = f"{type(exc).__name__}: {exc}"
            if err:
                failures.append(f"FAIL {it[0]}/{it[1]}/{it[2]} [{e}]: {err}")
    for line in sorted(failures):
        print(line)

    refused = sum(1 for it in items if it[4].startswith("refuse:"))
    print(f"matrix: {len(items)} models x {len(engines)} engines against runtime "
          f"{args.runtime} in {time.monotonic() - t0:.0f} s; {refused} expected refusals")
    for extra in args.expect_extra:
        print(f"  rules from {os.path.relpath(extra, HERE)} before expect.tsv's")
    families = sorted({k[0] for k in runner.engines if k[0] != "why"})
    for fam in families:
        n = runner.engines.get((fam, "native"), 0)
        c = runner.engines.get((fam, "C API"), 0)
        why = "; ".join(sorted(runner.engines.get(("why", fam), set())))[:200]
        print(f"  engine {fam:28s} native {n:3d}  C API {c:3d}  {why}")
    print(f"{len(jobs) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
