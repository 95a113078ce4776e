#!/usr/bin/python3
"""Makes the model and request payloads that bench/http.sh serves and posts.

usage: /usr/bin/python3 bench/make_models.py OUTDIR   (Debian's python3-xgboost 1.7.4)

Writes:
  OUTDIR/model/xgboost-model.json  binary:logistic, 100 trees of depth 6, 20 features:
                                   the same shape as the engine bench's 100-tree model
  OUTDIR/csv1.csv, csv100.csv      1 and 100 request rows as CSV (~5% empty fields)
  OUTDIR/json1.json, json100.json  the same rows as {"instances": [...]} (null = missing)

The data is synthetic (features in [-2, 2), a target with interactions and
noise so the trees reach full depth). Fixed seeds: reruns write the same files.
"""
import os
import sys

import numpy as np
import xgboost as xgb

NUM_FEATURE = 20


def rows(rng, n):
    X = rng.uniform(-2, 2, (n, NUM_FEATURE)).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    return X


def target(rng, X):
    f = np.nan_to_num(X, nan=0.3).astype(np.float64)
    s = (np.sin(2 * f[:, 0]) + f[:, 1] * f[:, 2] + np.where(f[:, 3] > 0.4, 1.0, -0.5)
         - 0.3 * f[:, 4] ** 2 + 0.5 * np.cos(3 * f[:, 5] * f[:, 6])
         + 0.2 * np.sin(f[:, 7] * f[:, 6]) + 0.2 * np.sin(f[:, 14] * f[:, 13]))
    return (s + 1.2 * (rng.random(len(s)) - 0.5) > 0.3).astype(np.float32)


def csv_text(X):
    def cell(v):
        return "" if np.isnan(v) else str(v)  # shortest float32 text, as clients send
    return "".join(",".join(cell(v) for v in row) + "\n" for row in X)


def json_text(X):
    inst = ("[" + ",".join("null" if np.isnan(v) else str(v) for v in row) + "]" for row in X)
    return '{"instances":[' + ",".join(inst) + "]}"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_models.py OUTDIR")
    out = sys.argv[1]
    rng = np.random.default_rng(5)
    X = rows(rng, 20000)
    y = target(rng, X)
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6,
              "eta": 0.1, "min_child_weight": 0.1, "subsample": 0.8, "max_bin": 64,
              "seed": 7, "nthread": os.cpu_count() or 1}
    bst = xgb.train(params, xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=100)
    os.makedirs(os.path.join(out, "model"), exist_ok=True)
    bst.save_model(os.path.join(out, "model", "xgboost-model.json"))

    R = rows(rng, 100)
    for name, text in (("csv1.csv", csv_text(R[:1])), ("csv100.csv", csv_text(R)),
                       ("json1.json", json_text(R[:1])), ("json100.json", json_text(R))):
        with open(os.path.join(out, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
