#!/usr/bin/python3
"""Makes the models that bench/bench_load.c loads (it runs this script itself).

usage: /usr/bin/python3 bench/make_load_model.py OUTDIR SPEC...

SPEC is NAME:ROUNDS:DEPTH:FEATURES[:FORMAT[:OBJECTIVE]], e.g. load:100:6:30 (the
multi-model endpoint's yardstick: binary:logistic, 100 trees of depth 6, 30 features,
saved as JSON). FORMAT is json (default), ubj or binary (1.7's legacy format, written
by save_model without an extension); OBJECTIVE is binary (binary:logistic, the
default), softprob (multi:softprob, 4 classes, 4 trees a round) or gblinear
(binary:logistic, ROUNDS rounds, DEPTH ignored). Each SPEC writes OUTDIR/NAME/xgboost-model[.json|.ubj] and
OUTDIR/NAME-tar/model.tar.gz holding the same file.

The data is synthetic (features in [-2, 2), ~5% missing, a target with interactions
so the trees reach full depth). Fixed seeds: reruns write the same files (with the
same xgboost).
"""
import os
import sys
import tarfile

import numpy as np
import xgboost as xgb

EXTENSIONS = {"json": ".json", "ubj": ".ubj", "binary": ""}


def data(rng, n, nfeat, classes):
    X = rng.uniform(-2, 2, (n, nfeat)).astype(np.float32)
    f = X.astype(np.float64)
    X[rng.random(X.shape) < 0.05] = np.nan
    s = np.sin(2 * f[:, 0]) + f[:, 1] * f[:, 2] + np.where(f[:, 3] > 0.4, 1.0, -0.5)
    s += 0.3 * f[:, 4:].sum(axis=1) / max(1, nfeat - 4) + rng.normal(0, 0.3, n)
    if classes:
        return X, np.digitize(s, np.quantile(s, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, (s > np.median(s)).astype(np.float32)


def make(outdir, spec):
    parts = spec.split(":")
    if len(parts) < 4 or len(parts) > 6:
        sys.exit("bad SPEC %r (NAME:ROUNDS:DEPTH:FEATURES[:FORMAT[:OBJECTIVE]])" % spec)
    name, rounds, depth, nfeat = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
    fmt = parts[4] if len(parts) > 4 else "json"
    objective = parts[5] if len(parts) > 5 else "binary"
    if fmt not in EXTENSIONS or objective not in ("binary", "softprob", "gblinear"):
        sys.exit("bad FORMAT or OBJECTIVE in %r" % spec)
    classes = 4 if objective == "softprob" else 0
    rng = np.random.default_rng(rounds * 1000 + depth * 100 + nfeat)
    X, y = data(rng, 20000, nfeat, classes)
    params = {"objective": "binary:logistic", "max_depth": depth, "eta": 0.1,
              "min_child_weight": 0.1, "tree_method": "hist", "nthread": 1, "seed": 1}
    if classes:
        params.update(objective="multi:softprob", num_class=classes)
    if objective == "gblinear":
        params = {"objective": "binary:logistic", "booster": "gblinear", "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=rounds)
    model_dir = os.path.join(outdir, name)
    tar_dir = os.path.join(outdir, name + "-tar")
    os.makedirs(model_dir, exist_ok=True)
    os.makedirs(tar_dir, exist_ok=True)
    file_name = "xgboost-model" + EXTENSIONS[fmt]
    path = os.path.join(model_dir, file_name)
    booster.save_model(path)
    with tarfile.open(os.path.join(tar_dir, "model.tar.gz"), "w:gz") as tar:
        tar.add(path, arcname=file_name)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    for spec in sys.argv[2:]:
        make(sys.argv[1], spec)


if __name__ == "__main__":
    main()
