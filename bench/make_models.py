#!/usr/bin/python3
"""Makes the model and request payloads that bench/http.sh serves and posts.

usage: /usr/bin/python3 bench/make_models.py OUTDIR [--families LIST]

LIST is comma-separated (default: binary, what bench/http.sh uses):
  binary       OUTDIR/model/xgboost-model.json: binary:logistic, 100 trees of depth 6,
               20 features, the same shape as the engine bench's 100-tree model;
               OUTDIR/csv1.csv, csv100.csv (1 and 100 request rows, ~5% empty fields)
               and OUTDIR/json1.json, json100.json (the same rows as {"instances": [...]},
               null = missing)
  categorical  OUTDIR/categorical/: binary:logistic on 4 categorical features (50
               categories) and 16 numerical ones, 100 trees of depth 6, partition splits
  gblinear     OUTDIR/gblinear/: binary:logistic gblinear, 200 features
  vector       OUTDIR/vector/: reg:squarederror, 3 targets in vector leaves
               (multi_strategy="multi_output_tree"), 100 trees of depth 6, 20 features
  quantile     OUTDIR/quantile/: reg:quantileerror, alphas 0.1, 0.5, 0.9, 100 rounds
               of depth 6 (300 trees), 20 features
  all          every family above
Each family directory holds model/xgboost-model.json and its own csv1.csv, csv100.csv,
json1.json, json100.json, as OUTDIR itself does for binary.

Debian bookworm's python3-xgboost (1.7.4) makes binary, categorical and gblinear.
vector and quantile need XGBoost 3.2 or later (2.0 introduced them, but the runtime,
3.4, crashes loading vector leaves as 2.0-3.1 saved them): set XGBOOST_PYTHON to a
Python with such an xgboost (e.g. the matrix venv,
/root/.cache/smserve-matrix/venv-3.4.1/bin/python, see tests/matrix/gen_matrix.py)
and this script runs those families there; without it they are refused with that
reason.

The data is synthetic (features in [-2, 2), a target with interactions and
noise so the trees reach full depth). Fixed seeds: reruns write the same files
(with the same xgboost).
"""
import os
import subprocess
import sys

import numpy as np
import xgboost as xgb

NUM_FEATURE = 20
NUM_CATEGORIES = 50
FAMILIES = ["binary", "categorical", "gblinear", "vector", "quantile"]
NEEDS_32 = {"vector", "quantile"}


def rows(rng, n, nfeat=NUM_FEATURE, categorical=0):
    X = rng.uniform(-2, 2, (n, nfeat)).astype(np.float32)
    if categorical:
        X[:, :categorical] = rng.integers(0, NUM_CATEGORIES, (n, categorical))
    X[rng.random(X.shape) < 0.05] = np.nan
    return X


def signal(X, categorical=0):
    f = np.nan_to_num(X, nan=0.3).astype(np.float64)
    if categorical:
        f[:, :categorical] = np.sin(7.3 * f[:, :categorical]) * 1.5
    return (np.sin(2 * f[:, 0]) + f[:, 1] * f[:, 2] + np.where(f[:, 3] > 0.4, 1.0, -0.5)
            - 0.3 * f[:, 4] ** 2 + 0.5 * np.cos(3 * f[:, 5] * f[:, 6])
            + 0.2 * np.sin(f[:, 7] * f[:, 6]) + 0.2 * np.sin(f[:, 14] * f[:, 13]))


def target(rng, X, categorical=0):
    s = signal(X, categorical)
    return (s + 1.2 * (rng.random(len(s)) - 0.5) > 0.3).astype(np.float32)


def csv_text(X):
    def cell(v):
        return "" if np.isnan(v) else str(v)  # shortest float32 text, as clients send
    return "".join(",".join(cell(v) for v in row) + "\n" for row in X)


def json_text(X):
    inst = ("[" + ",".join("null" if np.isnan(v) else str(v) for v in row) + "]" for row in X)
    return '{"instances":[' + ",".join(inst) + "]}"


def write_family(out, bst, R):
    os.makedirs(os.path.join(out, "model"), exist_ok=True)
    bst.save_model(os.path.join(out, "model", "xgboost-model.json"))
    for name, text in (("csv1.csv", csv_text(R[:1])), ("csv100.csv", csv_text(R)),
                       ("json1.json", json_text(R[:1])), ("json100.json", json_text(R))):
        with open(os.path.join(out, name), "w") as f:
            f.write(text)


def tree_params(**extra):
    params = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "min_child_weight": 0.1,
              "subsample": 0.8, "max_bin": 64, "seed": 7, "nthread": os.cpu_count() or 1}
    params.update(extra)
    return params


def make_binary(out):
    rng = np.random.default_rng(5)
    X = rows(rng, 20000)
    y = target(rng, X)
    bst = xgb.train(tree_params(objective="binary:logistic"),
                    xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=100)
    write_family(out, bst, rows(rng, 100))


def make_categorical(out):
    rng = np.random.default_rng(6)
    X = rows(rng, 20000, categorical=4)
    y = target(rng, X, categorical=4)
    types = ["c"] * 4 + ["q"] * (NUM_FEATURE - 4)
    dm = xgb.DMatrix(X, label=y, missing=np.nan, feature_types=types, enable_categorical=True)
    bst = xgb.train(tree_params(objective="binary:logistic", max_cat_to_onehot=1), dm,
                    num_boost_round=100)
    write_family(os.path.join(out, "categorical"), bst, rows(rng, 100, categorical=4))


def make_gblinear(out):
    rng = np.random.default_rng(7)
    X = rows(rng, 20000, nfeat=200)
    y = target(rng, X)
    params = {"booster": "gblinear", "objective": "binary:logistic", "eta": 0.5, "seed": 7,
              "nthread": os.cpu_count() or 1}
    bst = xgb.train(params, xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=20)
    write_family(os.path.join(out, "gblinear"), bst, rows(rng, 100, nfeat=200))


def make_vector(out):
    rng = np.random.default_rng(8)
    X = rows(rng, 20000)
    s = signal(X)
    f = np.nan_to_num(X, nan=0.3)
    Y = np.stack([s, s * 1.5 + np.cos(f[:, 9]), s * 2.0 + np.cos(f[:, 10])], axis=1)
    Y = (Y + rng.random(Y.shape) - 0.5).astype(np.float32)
    bst = xgb.train(tree_params(objective="reg:squarederror", multi_strategy="multi_output_tree"),
                    xgb.DMatrix(X, label=Y, missing=np.nan), num_boost_round=100)
    write_family(os.path.join(out, "vector"), bst, rows(rng, 100))


def make_quantile(out):
    rng = np.random.default_rng(9)
    X = rows(rng, 20000)
    y = (signal(X) + rng.random(len(X)) - 0.5).astype(np.float32)
    bst = xgb.train(tree_params(objective="reg:quantileerror", quantile_alpha=[0.1, 0.5, 0.9]),
                    xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=100)
    write_family(os.path.join(out, "quantile"), bst, rows(rng, 100))


def version():
    return tuple(int(p) for p in xgb.__version__.split(".")[:2])


def main():
    args = sys.argv[1:]
    families = ["binary"]
    if len(args) == 3 and args[1] == "--families":
        families = FAMILIES if args[2] == "all" else args[2].split(",")
        args = args[:1]
    if len(args) != 1 or any(f not in FAMILIES for f in families):
        sys.exit("usage: make_models.py OUTDIR [--families binary,categorical,gblinear,vector,"
                 "quantile|all]")
    out = args[0]
    elsewhere = [f for f in families if f in NEEDS_32 and version() < (3, 2)]
    python = os.environ.get("XGBOOST_PYTHON")
    if elsewhere and not python:
        sys.exit("make_models.py: %s need xgboost >= 3.2 (this one is %s); set XGBOOST_PYTHON "
                 "to a Python that has it" % (",".join(elsewhere), xgb.__version__))
    for family in families:
        if family not in elsewhere:
            globals()["make_" + family](out)
    if elsewhere:
        subprocess.run([python, os.path.abspath(__file__), out, "--families",
                        ",".join(elsewhere)], check=True)


if __name__ == "__main__":
    main()
