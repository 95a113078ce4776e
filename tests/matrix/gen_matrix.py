#!/usr/bin/env python3
"""Cross-release parity matrix: XGBoost models saved by many releases, with
each release's own predictions, as small committed fixtures (CI needs no venv).

usage (from the repository root, with any Python 3; the parent imports only
the standard library):
  python3 tests/matrix/gen_matrix.py                     # every release
  python3 tests/matrix/gen_matrix.py --releases 1.7.6,3.4.1 [--out DIR]

For each release the generator creates (or reuses) a virtual environment
  /root/.cache/smserve-matrix/venv-<release>   (MATRIX_VENV_ROOT overrides)
installs that release there from PyPI (`xgboost-cpu` where the release has
it, else the full `xgboost` wheel; numpy<2 for 1.7/2.0, numpy<1.22 for the
Python 3.7 releases) and re-runs this file inside it with `--worker`.
Everything is deterministic (fixed seeds, nthread 1): a rerun rewrites the
same bytes (tar and gzip headers carry mtime 0). A release that cannot be
installed is reported and skipped; the others go on.

Layout under --out (default tests/matrix/fixtures):
  <release>/<case>/request.csv     32 float32 rows, no header, empty = NaN,
                                   shortest float32 repr (round-trips exactly)
  <release>/<case>/expected.csv    booster.predict(DMatrix(request, missing=NaN))
                                   one line per row, '%.9g' of each float32
  <release>/<case>/json/xgboost-model.json
  <release>/<case>/ubj/xgboost-model.ubj                      (1.6+)
  <release>/<case>/binary/xgboost-model      legacy binary (bytes checked: not '{')
  <release>/<case>/targz/model.tar.gz        one member `xgboost-model`, written by
                                   save_model("xgboost-model") (binary in 1.x, UBJ 2.1+)
  index.tsv   release, case, format, path, objective, booster, num_feature,
              num_output, inplace_equal, note   (one row per file; a skipped
              format or case gets a row with path '-' and the reason in note)
The SageMaker-era releases 0.90-1.5.2 (Python 3.7) get 8 cases in json and
binary only (0.90 has no JSON; its dart is predicted with ntree_limit, since
0.90's plain predict applies dropout). inplace_equal: whether
booster.inplace_predict on the same float32 rows is bit-identical to predict
('na' where the release or booster has no in-place prediction).
Request and training data depend on the case only, so every release of a
case sees the same request rows. Running a subset of releases replaces only
those releases' directories and index rows.
"""
import argparse
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_ROOT = os.environ.get("MATRIX_VENV_ROOT", "/root/.cache/smserve-matrix")
PY37 = "/root/.pyenv/versions/3.7.16/bin/python3.7"
PY311 = "/root/.pyenv/versions/3.11.7/bin/python3.11"
PY312 = "/root/.pyenv/versions/3.12.1/bin/python3.12"

# release -> (python, pip requirements); 3.3.0 is the only 3.3.x on PyPI.
RELEASES = {
    "0.90": (PY37, ["xgboost==0.90", "numpy<1.22", "scipy"]),
    "1.0.2": (PY37, ["xgboost==1.0.2", "numpy<1.22", "scipy"]),
    "1.2.1": (PY37, ["xgboost==1.2.1", "numpy<1.22", "scipy"]),
    "1.3.3": (PY37, ["xgboost==1.3.3", "numpy<1.22", "scipy"]),
    "1.5.2": (PY37, ["xgboost==1.5.2", "numpy<1.22", "scipy"]),
    "1.7.6": (PY311, ["xgboost==1.7.6", "numpy<2", "scipy"]),
    "2.0.3": (PY311, ["xgboost==2.0.3", "numpy<2", "scipy"]),
    "2.1.4": (PY311, ["xgboost-cpu==2.1.4", "numpy", "scipy"]),
    "3.0.5": (PY311, ["xgboost-cpu==3.0.5", "numpy", "scipy"]),
    "3.1.3": (PY311, ["xgboost-cpu==3.1.3", "numpy", "scipy"]),
    "3.2.0": (PY311, ["xgboost-cpu==3.2.0", "numpy", "scipy"]),
    "3.3.0": (PY312, ["xgboost-cpu==3.3.0", "numpy", "scipy"]),
    "3.4.1": (PY312, ["xgboost-cpu==3.4.1", "numpy", "scipy"]),
}
# Releases from SageMaker's legacy-binary era: only these cases, json + binary.
LEGACY = ("0.90", "1.0.2", "1.2.1", "1.3.3", "1.5.2")
LEGACY_CASES = ("binary-logistic", "binary-logitraw", "reg-squarederror-estimated",
                "reg-squarederror-base20",
                "multi-softprob", "count-poisson", "dart", "gblinear-squarederror",
                "gblinear-logistic")
FORMATS = ("json", "ubj", "binary", "targz")
COLUMNS = ("release", "case", "format", "path", "objective", "booster", "num_feature",
           "num_output", "inplace_equal", "note")

N_TRAIN, N_REQUEST, ROUNDS, DEPTH = 240, 32, 4, 3
TRAIN_NAN, REQUEST_NAN, NAN_ROWS = 0.08, 0.15, (5, 17, 30)
CAT_LEVELS = (4, 5)  # categories in features 0 and 1 of the categorical cases


def vt(s):
    return tuple(int(p) for p in s.split(".")[:3] if p.isdigit())


# name, objective, booster, num_feature, label kind, since, extra params
# (kind: what label to make; since: first release that has the feature, where
# an older one would silently train something else instead of failing).
CASES = [
    ("binary-logistic", "binary:logistic", "gbtree", 6, "binary", None, {}),
    ("binary-logitraw", "binary:logitraw", "gbtree", 6, "binary", None, {}),
    ("binary-hinge", "binary:hinge", "gbtree", 5, "binary", None, {}),
    ("reg-squarederror-estimated", "reg:squarederror", "gbtree", 6, "reg", None, {}),
    ("reg-squarederror-base20", "reg:squarederror", "gbtree", 5, "reg20",
     None, {"base_score": 20.0}),
    ("reg-absoluteerror", "reg:absoluteerror", "gbtree", 6, "reg", None, {}),
    ("reg-pseudohubererror", "reg:pseudohubererror", "gbtree", 5, "reg", None, {}),
    ("reg-quantileerror", "reg:quantileerror", "gbtree", 6, "reg", "2.0",
     {"quantile_alpha": [0.1, 0.5, 0.9]}),
    # Neighbouring quantiles fitted separately cross on some rows: 3.4 sorts each
    # row's outputs, 2.0-3.3 return them as the trees give them.
    ("reg-quantileerror-crossing", "reg:quantileerror", "gbtree", 6, "reg", "2.0",
     {"quantile_alpha": [0.48, 0.5, 0.52]}),
    ("reg-expectileerror", "reg:expectileerror", "gbtree", 6, "reg", "3.3",
     {"expectile_alpha": [0.1, 0.5, 0.9]}),
    ("reg-tweedie", "reg:tweedie", "gbtree", 6, "tweedie", None,
     {"tweedie_variance_power": 1.4}),
    ("reg-gamma", "reg:gamma", "gbtree", 5, "positive", None, {}),
    ("count-poisson", "count:poisson", "gbtree", 6, "count", None, {}),
    ("survival-cox", "survival:cox", "gbtree", 5, "cox", None, {}),
    ("survival-aft", "survival:aft", "gbtree", 5, "aft", "1.2",
     {"aft_loss_distribution": "normal", "aft_loss_distribution_scale": 1.2}),
    ("multi-softprob", "multi:softprob", "gbtree", 6, "multi", None, {"num_class": 3}),
    ("multi-softmax", "multi:softmax", "gbtree", 6, "multi", None, {"num_class": 3}),
    ("rank-ndcg", "rank:ndcg", "gbtree", 6, "rank", None, {}),
    ("rank-pairwise", "rank:pairwise", "gbtree", 6, "rank", None, {}),
    ("multi-target-vector-leaf", "reg:squarederror", "gbtree", 6, "target3", "2.0",
     {"multi_strategy": "multi_output_tree", "tree_method": "hist"}),
    ("multi-target-per-tree", "reg:squarederror", "gbtree", 6, "target2", "1.6",
     {"tree_method": "hist"}),
    ("cat-onehot", "reg:squarederror", "gbtree", 6, "cat", "1.6",
     {"tree_method": "hist", "max_cat_to_onehot": 64}),
    ("cat-partition", "reg:squarederror", "gbtree", 6, "cat", "1.6",
     {"tree_method": "hist", "max_cat_to_onehot": 1}),
    ("dart", "reg:squarederror", "dart", 6, "reg", None,
     {"rate_drop": 0.3, "skip_drop": 0.0}),
    ("gblinear-squarederror", "reg:squarederror", "gblinear", 6, "reg", None, {}),
    ("gblinear-logistic", "binary:logistic", "gblinear", 6, "binary", None, {}),
]


# ----------------------------------------------------------------- worker side
def make_data(case):
    """Training set and request rows of one case: depend on the case only."""
    import numpy as np
    name, _, _, nf, kind = case[:5]
    rng = np.random.RandomState(zlib.crc32(name.encode()) & 0x7FFFFFFF)

    def features(n, nan_share):
        x = np.round(rng.normal(0.0, 1.0, (n, nf)), 3)
        if kind == "cat":
            for j, k in enumerate(CAT_LEVELS):
                x[:, j] = rng.randint(0, k, n)
        full = x.copy()
        x[rng.rand(n, nf) < nan_share] = np.nan
        return x.astype(np.float32), full

    x, full = features(N_TRAIN, TRAIN_NAN)
    score = full[:, 0] + 0.5 * full[:, 1] - full[:, 2] * full[:, 3] \
        + 0.2 * rng.normal(size=N_TRAIN)
    info = {}
    if kind == "cat":
        table0, table1 = rng.normal(0, 2, CAT_LEVELS[0]), rng.normal(0, 2, CAT_LEVELS[1])
        score = table0[full[:, 0].astype(int)] + table1[full[:, 1].astype(int)] + full[:, 2]
    if kind in ("binary",):
        y = (score > 0).astype(np.float32)
    elif kind in ("reg", "cat"):
        y = 10.0 + 3.0 * score
    elif kind == "reg20":
        y = 20.0 + 3.0 * score
    elif kind == "positive":
        y = np.exp(0.3 * score) * rng.gamma(2.0, 0.5, N_TRAIN)
    elif kind == "count":
        y = rng.poisson(np.exp(0.3 * score)).astype(np.float64)
    elif kind == "tweedie":
        y = rng.poisson(np.exp(0.3 * score) * 0.8) * rng.gamma(2.0, 1.0, N_TRAIN)
    elif kind in ("cox", "aft"):
        t = np.exp(-0.3 * score) * rng.exponential(1.0, N_TRAIN) + 0.01
        censored = rng.rand(N_TRAIN) < 0.3
        y = np.where(censored, -t, t)
        info = {"label_lower_bound": t, "label_upper_bound": np.where(censored, np.inf, t)}
    elif kind in ("multi", "rank"):
        y = np.digitize(score, np.percentile(score, [33, 67] if kind == "multi"
                                             else [40, 70, 90])).astype(np.float64)
    elif kind in ("target2", "target3"):
        k = int(kind[-1])
        y = np.stack([score, full[:, 2] - full[:, 4], np.abs(full[:, 1])][:k], axis=1)
    req, _ = features(N_REQUEST, REQUEST_NAN)
    req[list(NAN_ROWS), :] = np.nan
    return x, y.astype(np.float32), info, req


def sniff(data):
    if data[:1] == b"{":
        rest = data[1:].lstrip()
        return "json" if rest[:1] in (b'"', b"}") else "ubj"
    return "binary(binf)" if data[:4] == b"binf" else "binary(raw)"


def write_targz(path, member_bytes):
    """model.tar.gz with one member `xgboost-model`, reproducible bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("xgboost-model")
        info.size, info.mtime, info.mode = len(member_bytes), 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tf.addfile(info, io.BytesIO(member_bytes))
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
            gz.write(raw.getvalue())


def fmt32(v):
    """Shortest repr of a float32 (numpy's str); '' for NaN; checked exact."""
    import numpy as np
    v = np.float32(v)
    if np.isnan(v):
        return ""
    s = str(v)
    assert np.float32(float(s)).tobytes() == v.tobytes(), s
    return s


def first_line(err):
    lines = [l for l in str(err).splitlines() if l.strip()]
    msg = lines[0] if lines else type(err).__name__
    for l in lines:  # XGBoostError: prefer the 'Check failed' / reason line
        if "Check failed" in l or "support" in l.lower() or "Unknown" in l:
            msg = l
            break
    # drop XGBoost's "[06:16:47] ../src/x.cc:123: " prefix: keeps index.tsv stable
    msg = re.sub(r"^\[[0-9:]+\] [^ ]+:[0-9]+: ", "", msg.strip())
    return msg.replace("\t", " ")[:160]


def run_case(xgb, np, release, case, outdir, tmp):
    name, objective, booster, nf, kind, since, extra = case
    rel = vt(release)
    row = {"release": release, "case": name, "objective": objective, "booster": booster,
           "num_feature": nf, "num_output": "-", "inplace_equal": "na"}
    if since and rel < vt(since):
        return [dict(row, format="-", path="-", note="skipped: needs XGBoost %s+" % since)]
    x, y, info, req = make_data(case)
    dm_kw = {}
    if kind == "cat":
        dm_kw = {"feature_types": ["c", "c"] + ["q"] * (nf - 2), "enable_categorical": True}
    params = {"objective": objective, "booster": booster, "max_depth": DEPTH, "eta": 0.3,
              "seed": 0, "nthread": 1, "verbosity": 0}
    params.update(extra)
    for key in ("quantile_alpha", "expectile_alpha"):
        if key in params:
            params[key] = np.array(params[key])
    notes = []
    if name == "reg-squarederror-estimated" and rel < (2, 0):
        notes.append("no intercept estimation before 2.0 (base_score 0.5)")
    try:
        dtrain = xgb.DMatrix(x, label=y, missing=np.nan, **dm_kw)
        for key, val in info.items():
            dtrain.set_float_info(key, val.astype(np.float32))
        if kind == "rank":
            dtrain.set_group([12] * (N_TRAIN // 12))
        bst = xgb.train(params, dtrain, num_boost_round=ROUNDS)
        dreq = xgb.DMatrix(req, missing=np.nan, **dm_kw)
        pkw = {}
        if booster == "dart" and rel < (1, 0):  # 0.90 predicts with dropout otherwise
            pkw = {"ntree_limit": ROUNDS}
            notes.append("predicted with ntree_limit=%d (0.90 dart drops trees without)"
                         % ROUNDS)
        pred = np.asarray(bst.predict(dreq, **pkw), dtype=np.float32).reshape(N_REQUEST, -1)
    except Exception as e:  # objective or parameter this release does not have
        return [dict(row, format="-", path="-", note="skipped: " + first_line(e))]
    row["num_output"] = pred.shape[1]
    inplace = "na"
    if hasattr(bst, "inplace_predict"):
        try:
            ip = np.asarray(bst.inplace_predict(req), dtype=np.float32).reshape(N_REQUEST, -1)
            inplace = "yes" if ip.tobytes() == pred.tobytes() else "no"
            if inplace == "no":
                notes.append("inplace max|diff| %.3g" % float(np.nanmax(np.abs(ip - pred))))
        except Exception as e:
            notes.append("no inplace: " + first_line(e))
    else:
        notes.append("no inplace_predict in this release")
    row["inplace_equal"] = inplace

    cdir = os.path.join(outdir, release, name)
    os.makedirs(cdir)
    with open(os.path.join(cdir, "request.csv"), "w") as f:
        f.writelines(",".join(fmt32(v) for v in r) + "\n" for r in req)
    with open(os.path.join(cdir, "expected.csv"), "w") as f:
        f.writelines(",".join("%.9g" % v for v in r) + "\n" for r in pred)

    rows = []
    for fmt in FORMATS:
        if release in LEGACY and fmt not in ("json", "binary"):
            continue
        fnote = list(notes)
        data, reason = save_bytes(bst, fmt, release, tmp)
        if data is None:
            rows.append(dict(row, format=fmt, path="-", note=reason))
            continue
        fname = {"json": "xgboost-model.json", "ubj": "xgboost-model.ubj",
                 "binary": "xgboost-model", "targz": "model.tar.gz"}[fmt]
        os.makedirs(os.path.join(cdir, fmt))
        path = os.path.join(cdir, fmt, fname)
        if fmt == "targz":
            write_targz(path, data)
            fnote.append("member is " + sniff(data))
        else:
            with open(path, "wb") as f:
                f.write(data)
            if fmt == "binary":
                fnote.append("bytes are " + sniff(data))
        fnote.append(reload_check(xgb, np, fname if fmt != "targz" else "xgboost-model",
                                  data, pred, dm_kw, pkw, req, tmp))
        rows.append(dict(row, format=fmt, path=os.path.relpath(path, outdir),
                         note="; ".join(fnote)))
    return rows


def save_bytes(bst, fmt, release, tmp):
    """(bytes, None) as `release` writes format `fmt`, or (None, why not)."""
    rel = vt(release)
    if fmt == "json" and rel < (1, 0):
        return None, "skipped: no JSON model format before 1.0"
    if fmt == "ubj" and rel < (1, 6):
        return None, "skipped: no UBJSON model format before 1.6"
    # binary: 1.x writes it for any name but .json/.ubj; 2.0+ for '.deprecated'.
    fname = {"json": "m.json", "ubj": "m.ubj", "binary": "xgboost-model.deprecated",
             "targz": "xgboost-model"}[fmt]
    path = os.path.join(tmp, fname)
    if os.path.exists(path):
        os.remove(path)
    try:
        bst.save_model(path)
        with open(path, "rb") as f:
            data = f.read()
    except Exception as e:
        return None, "cannot save: " + first_line(e)
    kind = sniff(data)
    want = {"json": "json", "ubj": "ubj"}.get(fmt)
    if fmt == "binary" and not kind.startswith("binary"):
        return None, "no legacy binary writer (save_model('.deprecated') wrote %s)" % kind
    if want and kind != want:
        return None, "save_model wrote %s for %s" % (kind, fname)
    return data, None


def reload_check(xgb, np, fname, data, pred, dm_kw, pkw, req, tmp):
    path = os.path.join(tmp, "reload", fname)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    try:
        again = xgb.Booster(model_file=path)
        got = np.asarray(again.predict(xgb.DMatrix(req, missing=np.nan, **dm_kw), **pkw),
                         dtype=np.float32).reshape(pred.shape)
    except Exception as e:
        return "RELOAD FAILED: " + first_line(e)
    finally:
        os.remove(path)
    if got.tobytes() == pred.tobytes():
        return "reload identical"
    return "RELOAD DIFFERS: max|diff| %.3g" % float(np.nanmax(np.abs(got - pred)))


def worker(release, outdir, rows_file):
    import warnings
    warnings.simplefilter("ignore")
    import numpy as np
    import xgboost as xgb
    if xgb.__version__ != release:
        sys.exit("venv holds xgboost %s, expected %s" % (xgb.__version__, release))
    rows = []
    tmp = tempfile.mkdtemp(prefix="matrix-")
    try:
        for case in CASES:
            if release in LEGACY and case[0] not in LEGACY_CASES:
                continue
            rows.extend(run_case(xgb, np, release, case, outdir, tmp))
    finally:
        shutil.rmtree(tmp)
    with open(rows_file, "w") as f:
        json.dump(rows, f)


# ----------------------------------------------------------------- parent side
def ensure_venv(release):
    """Path of the venv's python with `release` installed, or raise with why."""
    python, reqs = RELEASES[release]
    venv = os.path.join(VENV_ROOT, "venv-" + release)
    vpy = os.path.join(venv, "bin", "python")
    check = [vpy, "-c", "import xgboost, scipy; print(xgboost.__version__)"]
    if os.path.exists(vpy):
        ok = subprocess.run(check, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if ok.returncode == 0 and ok.stdout.decode().strip() == release:
            return vpy
    if not os.path.exists(python):
        raise RuntimeError("interpreter %s not found" % python)
    log("  creating %s (%s)" % (venv, " ".join(reqs)))
    steps = [[python, "-m", "venv", venv], [vpy, "-m", "pip", "install", "-q"] + reqs]
    for cmd in steps:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            tail = p.stdout.decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError("%s failed: %s" % (" ".join(cmd[:4]), " | ".join(tail)))
    return vpy


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def read_index(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.read().splitlines()
    return [dict(zip(COLUMNS, l.split("\t"))) for l in lines[1:] if l]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--releases", default=",".join(RELEASES))
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--release", help=argparse.SUPPRESS)
    ap.add_argument("--rows", help=argparse.SUPPRESS)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    if args.worker:
        return worker(args.release, out, args.rows)

    releases = [r.strip() for r in args.releases.split(",") if r.strip()]
    unknown = [r for r in releases if r not in RELEASES]
    if unknown:
        sys.exit("unknown release(s) %s; known: %s" % (",".join(unknown), ",".join(RELEASES)))
    os.makedirs(out, exist_ok=True)
    index_path = os.path.join(out, "index.tsv")
    rows = [r for r in read_index(index_path) if r["release"] not in releases]
    failed = {}
    for release in releases:
        start = time.time()
        target = os.path.join(out, release)
        if os.path.isdir(target):
            shutil.rmtree(target)
        try:
            vpy = ensure_venv(release)
            fd, rows_file = tempfile.mkstemp(suffix=".json")
            os.close(fd)
            cmd = [vpy, os.path.abspath(__file__), "--worker", "--release", release,
                   "--out", out, "--rows", rows_file]
            env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            if p.returncode != 0:
                tail = p.stdout.decode(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError("worker failed: " + " | ".join(tail))
            with open(rows_file) as f:
                new = json.load(f)
            os.remove(rows_file)
        except RuntimeError as e:
            failed[release] = str(e)
            log("%s: FAILED: %s" % (release, e))
            continue
        rows.extend(new)
        files = sum(1 for r in new if r["path"] != "-")
        skipped = sum(1 for r in new if r["path"] == "-")
        log("%s: %d model files, %d skipped rows, %.1fs" % (release, files, skipped,
                                                      time.time() - start))
    order = list(RELEASES)
    case_order = [c[0] for c in CASES]
    fmt_order = ("-",) + FORMATS
    rows.sort(key=lambda r: (order.index(r["release"]) if r["release"] in order else 99,
                             case_order.index(r["case"]) if r["case"] in case_order else 99,
                             fmt_order.index(r["format"])))
    with open(index_path, "w") as f:
        f.write("\t".join(COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join(str(r[c]) for c in COLUMNS) + "\n")
    if failed:
        log("not generated: " + "; ".join("%s (%s)" % kv for kv in failed.items()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
