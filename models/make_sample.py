#!/usr/bin/python3
"""Makes the bundled sample model and the requests that go with it.

usage: /usr/bin/python3 models/make_sample.py   (Debian's python3-xgboost 1.7.4)

Writes, next to this script:
  sample/xgboost-model.json  binary:logistic, gbtree, 20 trees of depth 4, 8 features
  sample.csv                 3 request rows (the second has a missing value)
  sample.json                the same rows as {"instances": [...]}
  sample.expected            python's predictions for them, one per line (%.9g)

The data is synthetic but shaped like a loan-default table, so the sample reads
like something a user might serve. Fixed seeds: reruns write the same files.
"""
import os

import numpy as np
import xgboost as xgb

FEATURES = [
    "age",               # years
    "income_k",          # yearly income, thousands
    "debt_to_income",    # ratio
    "credit_lines",      # open lines of credit
    "late_payments_2y",  # count in the last two years
    "years_employed",
    "loan_amount_k",     # thousands
    "has_mortgage",      # 0/1
]


def synthetic_loans(rng, n):
    age = rng.integers(21, 75, n).astype(float)
    income = np.round(rng.lognormal(np.log(55), 0.5, n), 1)
    dti = np.round(np.clip(rng.beta(2, 5, n) * 1.2, 0, 1.2), 3)
    lines = rng.poisson(4, n).astype(float)
    late = rng.poisson(0.6, n).astype(float)
    employed = np.round(np.clip(rng.gamma(2, 3, n), 0, age - 18), 1)
    loan = np.round(rng.lognormal(np.log(15), 0.7, n), 1)
    mortgage = (rng.random(n) < 0.4).astype(float)
    X = np.column_stack([age, income, dti, lines, late, employed, loan, mortgage])
    logit = (-2.2 + 3.0 * dti + 0.8 * late - 0.015 * (age - 40) - 0.01 * (income - 55)
             + 0.02 * loan - 0.05 * employed - 0.3 * mortgage)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    # Some applicants leave fields blank.
    X[rng.random(X.shape) < 0.03] = np.nan
    return X.astype(np.float32), y


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(2024)
    X, y = synthetic_loans(rng, 2000)
    dtrain = xgb.DMatrix(X, label=y, missing=np.nan, feature_names=FEATURES)
    params = {"booster": "gbtree", "objective": "binary:logistic", "max_depth": 4,
              "eta": 0.2, "seed": 7, "nthread": 1, "eval_metric": "logloss"}
    bst = xgb.train(params, dtrain, num_boost_round=20)

    os.makedirs(os.path.join(here, "sample"), exist_ok=True)
    model_path = os.path.join(here, "sample", "xgboost-model.json")
    bst.save_model(model_path)

    rows = np.array([
        [35, 72.5, 0.21, 5, 0, 8.5, 12.0, 1],
        [52, 41.0, 0.58, 3, np.nan, 2.0, 30.0, 0],
        [27, 38.2, 0.45, 2, 3, 1.5, 18.5, 0],
    ], dtype=np.float32)

    def text(v):
        return "" if np.isnan(v) else str(np.float32(v))

    with open(os.path.join(here, "sample.csv"), "w") as f:
        for row in rows:
            f.write(",".join(text(v) for v in row) + "\n")
    with open(os.path.join(here, "sample.json"), "w") as f:
        f.write('{"instances": [' + ", ".join(
            "[" + ", ".join(text(v) or "null" for v in row) + "]" for row in rows) + "]}\n")

    loaded = xgb.Booster(model_file=model_path)
    pred = loaded.inplace_predict(rows, missing=np.nan)
    with open(os.path.join(here, "sample.expected"), "w") as f:
        for p in pred:
            f.write("%.9g\n" % float(p))


if __name__ == "__main__":
    main()
