#!/usr/bin/python3
"""smserve as a SageMaker Python SDK client sees it: requests made by the SDK's own
serializers, answers read by its own deserializers.

usage: test_sdk_client.py --smserve BUILD/smserve [--timeout S] [--system-python PATH]

The SDK is `sagemaker` 2.257.6 with its `scipy` extra, in a venv made by
scripts/sdk-venv.sh (outside the source tree, once): whichever python starts this
file, it makes or reuses that venv and runs itself in it. A venv that cannot be made
(no PyPI) fails the test. From the SDK it uses sagemaker.serializers (CSVSerializer,
JSONSerializer, JSONLinesSerializer, LibSVMSerializer, RecordSerializer),
sagemaker.deserializers (CSVDeserializer, JSONDeserializer, JSONLinesDeserializer,
RecordDeserializer) and sagemaker.serializer_utils (write_numpy_to_dense_tensor,
write_spmatrix_to_sparse_tensor): serialize() and CONTENT_TYPE, ACCEPT and
deserialize(), without a session, credentials or boto3.

Three `smserve serve` on free loopback ports (tests/serverproc.py):
  - models/sample (binary:logistic, 8 features) and tests/matrix/fixtures/1.7.6/
    multi-softprob/json (3 classes, 6 features). Rows with missing values, an
    all-missing row and an all-zero row go out as CSV, JSON (bare rows and
    {"instances": [{"features": ...}]}), JSON lines (bare and {"features": ...}),
    libsvm (1-based and 0-based), RecordIO-protobuf from RecordSerializer (float64),
    write_numpy_to_dense_tensor (float32 and int) and write_spmatrix_to_sparse_tensor
    (scipy CSR built from the dense rows, so zeros are absent keys: missing values,
    as the README says of sparse RecordIO), each with Accept text/csv,
    application/json, application/jsonlines and application/x-recordio-protobuf.
    Every value must equal, as a float32, what Debian's python3-xgboost (1.7.4,
    --system-python) predicts for the same float32 rows with NaN as missing.
    JSON rows holding NaN (what JSONSerializer makes of a numpy NaN) are the
    README's documented 400.
  - models/sample with SAGEMAKER_INFERENCE_OUTPUT=probabilities,predicted_label,
    probability: the keys in the variable's order in CSV, in the README table's
    order in JSON and JSON lines, as label tensors in RecordIO; p, int(p > 0.5)
    and [1 - p, p] in float32.
Each server must stop with status 0 on SIGTERM (LeakSanitizer included). Ends with
"N passed, M failed" and exits 1 on any failure.
"""
import argparse
import io
import json
import logging
import os
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import serverproc  # noqa: E402 (tests/serverproc.py)

VENV_SCRIPT = os.path.join(REPO, "scripts", "sdk-venv.sh")
BINARY_MODEL = os.path.join(REPO, "models", "sample")
SOFTPROB_MODEL = os.path.join(REPO, "tests", "matrix", "fixtures", "1.7.6", "multi-softprob",
                              "json")
SELECTED = "probabilities,predicted_label,probability"
SELECTED_JSON_ORDER = ["predicted_label", "probability", "probabilities"]


# ---------------------------------------------------------------- reference predictions

def predict_with_xgboost():
    """--predict, under Debian's python3-xgboost: stdin holds [{"model": FILE, "rows":
    [[value or null, ...], ...]}, ...]; stdout gets one list of per-row output lists per
    entry, from inplace_predict on the rows as float32 with NaN missing."""
    import numpy as np
    import xgboost as xgb

    out = []
    for job in json.load(sys.stdin):
        booster = xgb.Booster(model_file=job["model"])
        rows = np.array([[np.nan if v is None else v for v in r] for r in job["rows"]],
                        dtype=np.float64).astype(np.float32)
        pred = booster.inplace_predict(rows).reshape(len(rows), -1)
        out.append(pred.astype(np.float64).tolist())
    json.dump(out, sys.stdout)
    return 0


# ---------------------------------------------------------------- the SDK's venv

def run_in_sdk_venv(argv):
    """Makes or reuses the SDK venv and execs this file in it; returns 1 when the venv
    cannot be had."""
    p = subprocess.run([VENV_SCRIPT], stdout=subprocess.PIPE)
    python = p.stdout.decode().strip().splitlines()[-1] if p.stdout.strip() else ""
    if p.returncode != 0 or not os.access(python, os.X_OK):
        print("test_sdk_client: FAIL: the SageMaker Python SDK venv could not be made "
              "(scripts/sdk-venv.sh exited %d; its messages are above). This test needs "
              "PyPI once to install sagemaker %s." % (p.returncode, sdk_version()),
              file=sys.stderr)
        return 1
    sys.stdout.flush()
    os.execv(python, [python, os.path.abspath(__file__)] + argv + ["--in-sdk-venv"])


def sdk_version():
    p = subprocess.run([VENV_SCRIPT, "--version"], stdout=subprocess.PIPE, text=True)
    return p.stdout.strip() or "?"


# ---------------------------------------------------------------- checks

def f32(x):
    return struct.unpack("<f", struct.pack("<f", float(x)))[0]


def f32_bits(x):
    return struct.pack("<f", f32(x))


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, name, why):
        """One assertion: why is None when it holds, else what went wrong."""
        if why is None:
            self.passed += 1
        else:
            self.failed.append(name)
            print("FAIL %s: %s" % (name, why))
        return why is None


def same_values(got, want, got_is="served", want_is="xgboost predicts"):
    """None when got (rows of numbers) equals want as float32 bit patterns."""
    if len(got) != len(want):
        return "%d rows, expected %d" % (len(got), len(want))
    for r, (g, w) in enumerate(zip(got, want)):
        if len(g) != len(w):
            return "row %d: %d values, expected %d" % (r, len(g), len(w))
        for c, (a, b) in enumerate(zip(g, w)):
            if not isinstance(a, (int, float)) or isinstance(a, bool):
                return "row %d value %d: %r is not a number" % (r, c, a)
            if f32_bits(a) != f32_bits(b):
                return "row %d value %d: %s %.9g, %s %.9g" % (r, c, got_is, f32(a), want_is,
                                                               f32(b))
    return None


# ---------------------------------------------------------------- HTTP

def post(port, body, content_type, accept, timeout):
    """(status, response media type, body bytes) for one POST /invocations."""
    post.count += 1
    req = urllib.request.Request("http://127.0.0.1:%d/invocations" % port, data=body,
                                 method="POST",
                                 headers={"Content-Type": content_type, "Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


post.count = 0


def start_server(smserve, model_dir, env, timeout):
    """(a ready serverproc.Server for model_dir with env, None), or (None, why not).
    SAGEMAKER_* variables from outside are left out: they would change the answers."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    for _ in range(5):
        srv, exited = serverproc.start([smserve], model_dir, env, timeout, base_env=base)
        if exited is not None:
            return None, "smserve exited %d at start: %s" % (exited[0], exited[1][-600:])
        # The /ping that answered may have come from another test's server on a port
        # this one then failed to bind: it is ours once its log says it listens there.
        deadline = time.monotonic() + timeout
        mine = "listening on port %d " % srv.port
        while mine not in srv.text() and srv.proc.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        if mine in srv.text() and srv.proc.poll() is None:
            return srv, None
        taken = srv.port_taken()
        why = srv.stop()
        if not taken:
            return None, "no 'listening on port %d' from smserve: %s" % (srv.port, why)
    return None, "5 ports taken before smserve could bind them"


# ---------------------------------------------------------------- rows and bodies

def read_csv_rows(path):
    with open(path) as f:
        return [[float(v) if v else float("nan") for v in line.strip().split(",")]
                for line in f if line.strip()]


def binary_rows(np):
    """models/sample.csv's rows, then rows scaled from them at random with a tenth of
    the values missing (zeros stay zeros), then all-missing and all-zero."""
    base = np.array(read_csv_rows(os.path.join(REPO, "models", "sample.csv")))
    rng = np.random.default_rng(20260)
    more = base[np.arange(21) % len(base)] * rng.uniform(0.5, 1.5, (21, base.shape[1]))
    more[rng.random(more.shape) < 0.1] = np.nan
    edge = np.array([[np.nan] * base.shape[1], [0.0] * base.shape[1]])
    return np.vstack([base, more, edge])


def softprob_rows(np):
    base = np.array(read_csv_rows(os.path.join(os.path.dirname(SOFTPROB_MODEL),
                                               "request.csv")))
    edge = np.array([[np.nan] * base.shape[1], [0.0] * base.shape[1]])
    return np.vstack([base, edge])


def as_lists(np, rows):
    """Rows as Python lists with None for NaN (JSON's null)."""
    return [[None if np.isnan(v) else float(v) for v in r] for r in rows]


def libsvm_text(np, rows, base):
    """One `0 index:value ...` line per row (present values only; an all-missing row is
    a label-only line), indices from base."""
    lines = []
    for r in rows:
        pairs = ["%d:%r" % (i + base, float(v)) for i, v in enumerate(r) if not np.isnan(v)]
        lines.append(" ".join(["0"] + pairs))
    return "\n".join(lines) + "\n"


def payload(serialized):
    """The bytes a serializer's output puts on the wire: RecordSerializer gives a
    buffer (read once), the text serializers a str."""
    if hasattr(serialized, "read"):
        serialized = serialized.read()
    return serialized.encode("utf-8") if isinstance(serialized, str) else serialized


def requests_for(np, sdk, rows):
    """(name, body bytes, content type, rows as the server must read them) for every way
    the SDK sends rows."""
    ser, utils = sdk["serializers"], sdk["serializer_utils"]
    out = []

    s = ser.CSVSerializer()
    out.append(("csv", s.serialize(rows), s.CONTENT_TYPE, rows))

    s = ser.JSONSerializer()
    out.append(("json", s.serialize(as_lists(np, rows)), s.CONTENT_TYPE, rows))
    out.append(("json-instances",
                s.serialize({"instances": [{"features": r} for r in as_lists(np, rows)]}),
                s.CONTENT_TYPE, rows))

    s = ser.JSONLinesSerializer()
    out.append(("jsonlines", s.serialize(as_lists(np, rows)), s.CONTENT_TYPE, rows))
    out.append(("jsonlines-features",
                s.serialize([{"features": r} for r in as_lists(np, rows)]),
                s.CONTENT_TYPE, rows))

    # LibSVMSerializer takes a str or a file, not a list of lines.
    s = ser.LibSVMSerializer()
    out.append(("libsvm-1based", s.serialize(libsvm_text(np, rows, 1)), s.CONTENT_TYPE, rows))
    # A 0-based body is recognised by index 0, which the all-zero row always has.
    out.append(("libsvm-0based", s.serialize(libsvm_text(np, rows, 0)), s.CONTENT_TYPE, rows))

    s = ser.RecordSerializer()
    out.append(("recordio-float64", s.serialize(rows.astype(np.float64)), s.CONTENT_TYPE, rows))

    buf = io.BytesIO()
    utils.write_numpy_to_dense_tensor(buf, rows.astype(np.float32))
    out.append(("recordio-dense-float32", buf.getvalue(), s.CONTENT_TYPE, rows))

    ints = np.rint(np.nan_to_num(rows, nan=0.0)).astype(int)
    buf = io.BytesIO()
    utils.write_numpy_to_dense_tensor(buf, ints)
    out.append(("recordio-dense-int32", buf.getvalue(), s.CONTENT_TYPE,
                ints.astype(np.float64)))

    # A client's sparse matrix drops zeros: absent keys, which smserve reads as missing.
    dense = np.nan_to_num(rows, nan=0.0)
    sparse = sdk["scipy_sparse"].csr_matrix(dense)
    buf = io.BytesIO()
    utils.write_spmatrix_to_sparse_tensor(buf, sparse)
    out.append(("recordio-sparse", buf.getvalue(), s.CONTENT_TYPE,
                np.where(dense == 0.0, np.nan, dense)))
    return [(name, payload(body), ctype, as_read) for name, body, ctype, as_read in out]


# ---------------------------------------------------------------- answers

def decoders(sdk):
    """(Accept header, deserializer) for each response type. ACCEPT is a tuple of media
    types, which the SDK's Predictor joins with ", " for the header."""
    d = sdk["deserializers"]
    return [(", ".join(x.ACCEPT), x) for x in (d.CSVDeserializer(), d.JSONDeserializer(),
                                               d.JSONLinesDeserializer(),
                                               d.RecordDeserializer())]


def deserialize(deser, body, content_type):
    return deser.deserialize(io.BytesIO(body), content_type)


def score_rows(accept, decoded):
    """The per-row values of a scores answer, as the deserializer gave them."""
    if accept == "text/csv":
        return [[float(v) for v in line] for line in decoded]
    if accept == "application/json":
        preds = decoded["predictions"]
    elif accept == "application/jsonlines":
        preds = decoded
    else:
        return [list(r.label["score"].float32_tensor.values) for r in decoded]
    return [p["score"] if isinstance(p["score"], list) else [p["score"]] for p in preds]


def media_type(content_type):
    return content_type.split(";")[0].strip().lower()


def post_checked(checks, label, port, body, ctype, accept, timeout):
    """POSTs and checks for a 200 of the Accept's media type: (Content-Type, body), or
    (None, None) when the status is not 200."""
    status, got_type, answer = post(port, body, ctype, accept, timeout)
    if not checks.check(label + " status", None if status == 200 else
                        "%d %s" % (status, answer[:300])):
        return None, None
    checks.check(label + " Content-Type", None if media_type(got_type) == accept else got_type)
    return got_type, answer


def check_scores(checks, args, sdk, np, model_dir, rows, reference):
    name = os.path.relpath(model_dir, REPO)
    srv, why = start_server(args.smserve, model_dir, {}, args.timeout)
    if not checks.check("%s start" % name, why):
        return
    try:
        for req, body, ctype, as_read in requests_for(np, sdk, rows):
            want = reference(as_read)
            for accept, deser in decoders(sdk):
                label = "%s %s -> %s" % (name, req, accept)
                got_type, answer = post_checked(checks, label, srv.port, body, ctype, accept,
                                                args.timeout)
                if answer is None:
                    continue
                try:
                    got = score_rows(accept, deserialize(deser, answer, got_type))
                except Exception as e:  # an answer the SDK cannot read fails the check
                    checks.check(label + " values", "the SDK could not read %r: %s: %s" % (
                        answer[:200], type(e).__name__, e))
                    continue
                checks.check(label + " values", same_values(got, want))
        # JSONSerializer writes a numpy NaN as the bare token NaN (Python's json
        # module does), which the README reads as a missing value, like null.
        s = sdk["serializers"].JSONSerializer()
        body = payload(s.serialize(rows))
        checks.check("%s json-numpy-nan sends NaN" % name,
                     None if b"NaN" in body else "no NaN token in %r" % body[:200])
        status, got_type, answer = post(srv.port, body, s.CONTENT_TYPE, "application/json",
                                        args.timeout)
        if checks.check("%s json-numpy-nan status" % name,
                        None if status == 200 else "%d %s" % (status, answer[:300])):
            got = score_rows("application/json",
                             deserialize(sdk["deserializers"].JSONDeserializer(), answer,
                                         got_type))
            checks.check("%s json-numpy-nan values" % name, same_values(got, reference(rows)))
    finally:
        why = srv.stop()
    checks.check("%s clean stop" % name, why)


def check_selected(checks, args, sdk, np, rows, probs):
    """SAGEMAKER_INFERENCE_OUTPUT on the binary model; probs: xgboost's p per row."""
    srv, why = start_server(args.smserve, BINARY_MODEL,
                            {"SAGEMAKER_INFERENCE_OUTPUT": SELECTED}, args.timeout)
    if not checks.check("selected start", why):
        return
    s = sdk["serializers"].CSVSerializer()
    body = payload(s.serialize(rows))
    want = [{"predicted_label": int(p > 0.5), "probability": p,
             "probabilities": [f32(1.0 - p), p]} for p in probs]
    try:
        for accept, deser in decoders(sdk):
            label = "selected %s -> %s" % (SELECTED, accept)
            got_type, answer = post_checked(checks, label, srv.port, body, s.CONTENT_TYPE,
                                            accept, args.timeout)
            if answer is None:
                continue
            try:
                why = selected_differs(accept, deserialize(deser, answer, got_type), want)
            except Exception as e:  # an answer the SDK cannot read fails the check
                why = "the SDK could not read %r: %s: %s" % (answer[:200], type(e).__name__, e)
            checks.check(label + " values", why)
    finally:
        why = srv.stop()
    checks.check("selected clean stop", why)


def selected_differs(accept, decoded, want):
    """None when a selectable-output answer says what want says, in the right layout."""
    if accept == "text/csv":
        # The variable's order; lists as quoted Python lists, which csv.reader unquotes.
        got = []
        for line in decoded:
            if len(line) != 3:
                return "line %r: %d fields, expected 3" % (line, len(line))
            label = line[1]
            if label not in ("0", "1"):
                return "predicted_label %r is not written as an int" % label
            got.append({"probabilities": json.loads(line[0]), "predicted_label": int(label),
                        "probability": float(line[2])})
    elif accept in ("application/json", "application/jsonlines"):
        got = decoded["predictions"] if accept == "application/json" else decoded
        for obj in got:
            if list(obj) != SELECTED_JSON_ORDER:
                return "keys %s, expected %s" % (list(obj), SELECTED_JSON_ORDER)
            if type(obj["predicted_label"]) is not int:
                return "predicted_label %r is not an int" % obj["predicted_label"]
    else:
        got = []
        for rec in decoded:
            keys = sorted(rec.label)
            if keys != sorted(SELECTED_JSON_ORDER):
                return "label keys %s, expected %s" % (keys, sorted(SELECTED_JSON_ORDER))
            t = {k: list(rec.label[k].float32_tensor.values) for k in keys}
            if len(t["predicted_label"]) != 1 or len(t["probability"]) != 1:
                return "tensors %s, expected one value each for the scalars" % t
            got.append({"predicted_label": t["predicted_label"][0],
                        "probability": t["probability"][0],
                        "probabilities": t["probabilities"]})
    if len(got) != len(want):
        return "%d rows, expected %d" % (len(got), len(want))
    for r, (g, w) in enumerate(zip(got, want)):
        why = same_values([[g["predicted_label"], g["probability"]] + g["probabilities"]],
                          [[w["predicted_label"], w["probability"]] + w["probabilities"]])
        if why is not None:
            return "row %d: %s (got %s)" % (r, why, g)
    return None


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smserve", help="the smserve binary under test")
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--system-python", default="/usr/bin/python3",
                    help="a python with xgboost, for the reference predictions")
    ap.add_argument("--predict", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--in-sdk-venv", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.predict:
        return predict_with_xgboost()
    if not args.smserve:
        ap.error("--smserve is required")

    if not args.in_sdk_venv:
        return run_in_sdk_venv(sys.argv[1:])
    # Neither the v2 deprecation notice nor "Not applying SDK defaults" lines.
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    try:
        import numpy as np
        import scipy.sparse
        import sagemaker
        import sagemaker.deserializers
        import sagemaker.serializer_utils
        import sagemaker.serializers
    except ImportError as e:
        print("test_sdk_client: FAIL: the SDK venv (%s) lacks a module: %s" % (
            sys.executable, e), file=sys.stderr)
        return 1
    sdk = {"serializers": sagemaker.serializers, "deserializers": sagemaker.deserializers,
           "serializer_utils": sagemaker.serializer_utils, "scipy_sparse": scipy.sparse}
    t0 = time.monotonic()
    print("SageMaker Python SDK %s (%s), numpy %s" % (
        sagemaker.__version__, os.path.dirname(sagemaker.__file__), np.__version__))

    checks = Checks()
    pinned = sdk_version()
    checks.check("the SDK is the pinned %s" % pinned,
                 None if sagemaker.__version__ == pinned else sagemaker.__version__)
    models = [(BINARY_MODEL, "xgboost-model.json", binary_rows(np)),
              (SOFTPROB_MODEL, "xgboost-model.json", softprob_rows(np))]
    # Every row set any request carries, predicted by xgboost in one run.
    jobs, index = [], {}
    for model_dir, file, rows in models:
        for _, _, _, as_read in requests_for(np, sdk, rows):
            key = (model_dir, as_read.tobytes())
            if key not in index:
                index[key] = len(jobs)
                jobs.append({"model": os.path.join(model_dir, file),
                             "rows": as_lists(np, as_read)})
    p = subprocess.run([args.system_python, os.path.abspath(__file__), "--predict"],
                       input=json.dumps(jobs), capture_output=True, text=True)
    if p.returncode != 0:
        print("test_sdk_client: FAIL: %s could not predict with xgboost: %s" % (
            args.system_python, p.stderr[-600:]), file=sys.stderr)
        return 1
    predictions = json.loads(p.stdout)

    def reference_for(model_dir):
        return lambda rows: predictions[index[(model_dir, rows.tobytes())]]

    # The reference itself: models/sample.expected, and the all-zero row predicting
    # otherwise than the all-missing one (so the sparse rows' check means something).
    with open(os.path.join(REPO, "models", "sample.expected")) as f:
        expected = [[float(line)] for line in f if line.strip()]
    binary_ref = reference_for(BINARY_MODEL)(models[0][2])
    checks.check("xgboost reproduces models/sample.expected",
                 same_values(binary_ref[:len(expected)], expected, "xgboost predicts",
                             "models/sample.expected says"))
    for model_dir, _, rows in models:
        ref = reference_for(model_dir)(rows)
        checks.check("%s: all-zero and all-missing rows predict differently" % (
            os.path.relpath(model_dir, REPO)),
            None if ref[-1] != ref[-2] else "both %s" % ref[-1])

    for model_dir, _, rows in models:
        check_scores(checks, args, sdk, np, model_dir, rows, reference_for(model_dir))
    check_selected(checks, args, sdk, np, models[0][2], [r[0] for r in binary_ref])

    print("sdk client: %d requests encoded by the SDK's serializers to 3 servers in %.1f s" % (
        post.count, time.monotonic() - t0))
    print("%d passed, %d failed" % (checks.passed, len(checks.failed)))
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
