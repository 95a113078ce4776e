#!/usr/bin/python3
"""Generates the integration-test fixtures with Debian's python3-xgboost.

usage: /usr/bin/python3 tests/gen_fixtures.py OUTDIR

Writes (deterministic: fixed seeds, about 10 s):
  OUTDIR/serve/<case>/xgboost-model[.json|.ubj]  models smserve must serve
  OUTDIR/serve/<case>.csv / .json                the request bodies (40 rows)
  OUTDIR/serve/<case>.expected                   python's predictions, %.9g
  OUTDIR/serve/<case>.meta                       "num_feature num_outputs"
  OUTDIR/serve/index.txt                         one case per line
  OUTDIR/refuse/<case>/...                       model dirs smserve must refuse
  OUTDIR/refuse/index.txt                        "<case> <check name>" per line
  OUTDIR/tarball/model.tar.gz + tarball.*        a dir holding only a model.tar.gz

References come from booster.inplace_predict on the float32 rows with NaN as
missing, the call smserve makes through the C API. gblinear has no in-place
prediction in XGBoost 1.7 ("Inplace predict is not supported by current
booster"), so its reference comes from booster.predict on a DMatrix.
"""
import io
import json
import os
import shutil
import sys
import tarfile
import warnings

import numpy as np
import xgboost as xgb

N_TRAIN = 300
N_REQUEST = 40
MISSING_SHARE = 0.10

# name, booster, objective, extra params, num_feature, rounds, depth, file name
SERVE_CASES = [
    ("gbtree-binary-logistic", "gbtree", "binary:logistic", {}, 8, 12, 4, "xgboost-model.json"),
    ("gbtree-binary-logitraw", "gbtree", "binary:logitraw", {}, 7, 10, 3, "xgboost-model.ubj"),
    ("gbtree-multi-softprob", "gbtree", "multi:softprob", {"num_class": 3}, 9, 8, 4,
     "xgboost-model.json"),
    ("gbtree-multi-softmax", "gbtree", "multi:softmax", {"num_class": 4}, 10, 6, 3,
     "xgboost-model"),
    ("gbtree-reg-squarederror", "gbtree", "reg:squarederror", {}, 12, 20, 5, "xgboost-model.json"),
    ("gbtree-reg-tweedie", "gbtree", "reg:tweedie", {"tweedie_variance_power": 1.3}, 6, 15, 4,
     "xgboost-model.json"),
    ("gbtree-count-poisson", "gbtree", "count:poisson", {}, 8, 15, 3, "xgboost-model.ubj"),
    ("gbtree-reg-base-score-20", "gbtree", "reg:squarederror", {"base_score": 20.0}, 6, 10, 4,
     "xgboost-model.json"),
    ("gbtree-binary-logistic-legacy", "gbtree", "binary:logistic", {}, 11, 9, 5, "xgboost-model"),
    ("gbtree-reg-base-score-20-legacy", "gbtree", "reg:squarederror", {"base_score": 20.0}, 6, 8,
     3, "xgboost-model"),
    ("dart-binary-logistic", "dart", "binary:logistic", {"rate_drop": 0.3, "skip_drop": 0.0}, 8,
     12, 4, "xgboost-model.json"),
    ("dart-multi-softprob", "dart", "multi:softprob", {"num_class": 3, "rate_drop": 0.2}, 6, 10,
     3, "xgboost-model.ubj"),
    ("dart-reg-squarederror", "dart", "reg:squarederror", {"rate_drop": 0.25}, 9, 15, 5,
     "xgboost-model"),
    ("gblinear-binary-logistic", "gblinear", "binary:logistic", {}, 8, 10, 0, "xgboost-model.json"),
    ("gblinear-multi-softprob", "gblinear", "multi:softprob", {"num_class": 3}, 7, 10, 0,
     "xgboost-model.ubj"),
    ("gblinear-reg-squarederror", "gblinear", "reg:squarederror", {}, 10, 20, 0,
     "xgboost-model"),
]

REFUSE_CASES = [
    ("pickle", "format"),
    ("random-bytes", "format"),
    ("truncated-json", "parse"),
    ("xgb35-newer", "version"),
    ("xgb35-base-score", "version"),
    ("xgb35-base-score-allow", "base_score"),
    ("unknown-objective", "objective"),
    ("empty-dir", "empty"),
    ("empty-file", "format"),
    ("tar-traversal", "archive"),
    ("tar-symlink", "archive"),
]


def labels(rng, X, objective, params):
    """Labels that fit the objective and depend on the features."""
    signal = X[:, 0] + 0.5 * X[:, 1] - 0.7 * X[:, 2] + 0.3 * rng.normal(size=len(X))
    if objective.startswith("binary:"):
        return (signal > 0).astype(np.float32)
    if objective.startswith("multi:"):
        k = params["num_class"]
        cuts = np.quantile(signal, np.linspace(0, 1, k + 1)[1:-1])
        return np.digitize(signal, cuts).astype(np.float32)
    if objective == "count:poisson":
        return rng.poisson(np.exp(0.5 * signal)).astype(np.float32)
    if objective == "reg:tweedie":
        positive = rng.random(len(X)) < 0.7
        return (positive * rng.gamma(2.0, np.exp(0.3 * signal))).astype(np.float32)
    base = params.get("base_score", 0.0)
    return (base + 3.0 * signal).astype(np.float32)


def train(case, seed):
    name, booster, objective, extra, nfeat, rounds, depth, _ = case
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_TRAIN, nfeat)).astype(np.float32)
    # A few missing values in training too, so trees learn default directions.
    X[rng.random(X.shape) < 0.05] = np.nan
    y = labels(rng, np.nan_to_num(X), objective, extra)
    params = {"booster": booster, "objective": objective, "seed": seed, "nthread": 1,
              "eta": 0.3}
    if booster != "gblinear":
        params["max_depth"] = depth
    params.update(extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bst = xgb.train(params, xgb.DMatrix(X, label=y, missing=np.nan), rounds)
    return bst, rng


def request_rows(rng, nfeat):
    X = (rng.normal(size=(N_REQUEST, nfeat)) * 1.5).astype(np.float32)
    X[rng.random(X.shape) < MISSING_SHARE] = np.nan
    return X


def fmt32(v):
    return str(np.float32(v))


def write_requests(base, X):
    """base.csv (empty field = missing) and base.json (null = missing); the
    number text is numpy's shortest float32 repr, so strtof reads it back
    exactly."""
    csv_lines, rows = [], []
    for row in X:
        cells = ["" if np.isnan(v) else fmt32(v) for v in row]
        csv_lines.append(",".join(cells))
        rows.append("[" + ", ".join("null" if c == "" else c for c in cells) + "]")
    with open(base + ".csv", "w") as f:
        f.write("\n".join(csv_lines) + "\n")
    with open(base + ".json", "w") as f:
        f.write('{"instances": [' + ", ".join(rows) + "]}\n")


def predict(bst, booster, X):
    if booster == "gblinear":
        return bst.predict(xgb.DMatrix(X, missing=np.nan))
    return bst.inplace_predict(X, missing=np.nan)


def write_expected(base, pred, nfeat):
    pred = np.asarray(pred, dtype=np.float32)
    if pred.ndim == 1:
        pred = pred.reshape(-1, 1)
    with open(base + ".expected", "w") as f:
        for row in pred:
            f.write(",".join("%.9g" % float(v) for v in row) + "\n")
    with open(base + ".meta", "w") as f:
        f.write("%d %d\n" % (nfeat, pred.shape[1]))


def save(bst, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bst.save_model(path)


def make_serve(out):
    d = os.path.join(out, "serve")
    os.makedirs(d)
    names = []
    for i, case in enumerate(SERVE_CASES):
        name, booster, _, _, nfeat, _, _, fname = case
        bst, rng = train(case, 1000 + i)
        os.makedirs(os.path.join(d, name))
        save(bst, os.path.join(d, name, fname))
        # Predict with the model as saved and loaded back, the way smserve sees it.
        loaded = xgb.Booster(model_file=os.path.join(d, name, fname))
        X = request_rows(rng, nfeat)
        pred = predict(loaded, booster, X)
        if not np.array_equal(pred, predict(bst, booster, X)):
            sys.exit("%s: predictions change when the model is saved as %s" % (name, fname))
        base = os.path.join(d, name)
        write_requests(base, X)
        write_expected(base, pred, nfeat)
        names.append(name)
    with open(os.path.join(d, "index.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


def model_json(seed, objective="reg:squarederror", extra=None, nfeat=6):
    case = ("x", "gbtree", objective, extra or {}, nfeat, 5, 3, "")
    bst, _ = train(case, seed)
    raw = bst.save_raw(raw_format="json")
    return bytes(raw)


def tar_bytes(members):
    """members: list of (TarInfo, bytes or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_member(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 1700000000
    return info, data


def make_refuse(out, source_dir):
    d = os.path.join(out, "refuse")
    os.makedirs(d)
    rng = np.random.default_rng(77)

    def case_dir(name):
        p = os.path.join(d, name)
        os.makedirs(p)
        return p

    def write(path, data):
        with open(path, "wb") as f:
            f.write(data)

    shutil.copyfile(os.path.join(source_dir, "tests", "fixtures", "aws",
                                 "pickled-booster.refuse.pkl"),
                    os.path.join(case_dir("pickle"), "xgboost-model"))

    write(os.path.join(case_dir("random-bytes"), "xgboost-model"),
          rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())

    good = model_json(5)
    write(os.path.join(case_dir("truncated-json"), "xgboost-model.json"), good[: len(good) // 2])

    # A release newer than the runtime (3.4): refused by the version check.
    doc = json.loads(good)
    doc["version"] = [3, 5, 0]
    write(os.path.join(case_dir("xgb35-newer"), "xgboost-model.json"),
          json.dumps(doc, separators=(",", ":")).encode())

    # Newer, and a base_score vector of two values for one output: with
    # SMSERVE_ALLOW_NEWER the version check is only a warning, and the
    # base_score check still refuses.
    doc = json.loads(model_json(6, extra={"base_score": 20.0}))
    doc["version"] = [3, 5, 0]
    doc["learner"]["learner_model_param"]["base_score"] = "[2E1,3E1]"
    newer = json.dumps(doc, separators=(",", ":")).encode()
    write(os.path.join(case_dir("xgb35-base-score"), "xgboost-model.json"), newer)
    write(os.path.join(case_dir("xgb35-base-score-allow"), "xgboost-model.json"), newer)

    doc = json.loads(good)
    doc["learner"]["objective"] = {"name": "reg:futureloss"}
    write(os.path.join(case_dir("unknown-objective"), "xgboost-model.json"),
          json.dumps(doc, separators=(",", ":")).encode())

    case_dir("empty-dir")
    write(os.path.join(case_dir("empty-file"), "xgboost-model"), b"")

    # Both archives hold a good model first, so the refusal cannot be "no model".
    good_member = file_member("xgboost-model.json", model_json(8))
    evil = file_member("../evil", b"escaped\n")
    write(os.path.join(case_dir("tar-traversal"), "model.tar.gz"),
          tar_bytes([good_member, evil]))

    link = tarfile.TarInfo("evil")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    link.mtime = 1700000000
    write(os.path.join(case_dir("tar-symlink"), "model.tar.gz"), tar_bytes([good_member, (link, None)]))

    with open(os.path.join(d, "index.txt"), "w") as f:
        for name, check in REFUSE_CASES:
            f.write("%s %s\n" % (name, check))


def make_tarball(out):
    case = ("tarball", "gbtree", "binary:logistic", {}, 8, 10, 4, "xgboost-model.json")
    bst, rng = train(case, 4242)
    raw = bytes(bst.save_raw(raw_format="json"))
    d = os.path.join(out, "tarball")
    os.makedirs(d)
    with open(os.path.join(d, "model.tar.gz"), "wb") as f:
        f.write(tar_bytes([file_member("xgboost-model.json", raw)]))
    X = request_rows(rng, 8)
    base = os.path.join(out, "tarball")
    write_requests(base, X)
    write_expected(base, predict(bst, "gbtree", X), 8)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_fixtures.py OUTDIR")
    out = sys.argv[1]
    source_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(out, exist_ok=True)
    # Remove only what this script writes: OUTDIR may be shared.
    for sub in ("serve", "refuse", "tarball"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    for ext in (".csv", ".json", ".expected", ".meta"):
        if os.path.exists(os.path.join(out, "tarball" + ext)):
            os.remove(os.path.join(out, "tarball" + ext))
    make_serve(out)
    make_refuse(out, source_dir)
    make_tarball(out)


if __name__ == "__main__":
    main()
