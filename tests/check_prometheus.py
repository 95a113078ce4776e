#!/usr/bin/python3
"""Checks a Prometheus text exposition with a real parser (python3-prometheus-client).

usage: check_prometheus.py FILE [NAME{label=value,...}=VALUE ...]

Parses FILE with prometheus_client.parser.text_string_to_metric_families and
checks that every histogram's buckets have increasing le bounds and
non-decreasing cumulative counts ending with le="+Inf" equal to _count (and
a _sum), that counters are non-negative, that quantile gauges do not
decrease with the quantile, that no sample appears twice (same name and
labels), and that each expectation matches: the samples named NAME whose
labels include the given ones exist and all have VALUE. Labels may be given
as JSON object members instead, for values with commas, quotes or any
character: NAME{"model": "a\\"b"}=VALUE.
Exits 0 when everything holds, 1 (listing the problems) otherwise.
"""
import json
import math
import re
import sys
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families


def key_without(labels, drop):
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def check_histogram(family, problems):
    series = defaultdict(lambda: {"buckets": [], "sum": None, "count": None})
    for s in family.samples:
        if s.name.endswith("_bucket"):
            series[key_without(s.labels, {"le"})]["buckets"].append(
                (float(s.labels["le"]), s.value))
        elif s.name.endswith("_sum"):
            series[key_without(s.labels, set())]["sum"] = s.value
        elif s.name.endswith("_count"):
            series[key_without(s.labels, set())]["count"] = s.value
    if not series:
        problems.append(f"{family.name}: histogram without samples")
    for labels, h in series.items():
        where = f"{family.name}{dict(labels)}"
        buckets = h["buckets"]
        if not buckets:
            problems.append(f"{where}: no buckets")
            continue
        les = [le for le, _ in buckets]
        if any(b <= a for a, b in zip(les, les[1:])):
            problems.append(f"{where}: le bounds not increasing")
        counts = [c for _, c in buckets]
        if any(b < a for a, b in zip(counts, counts[1:])):
            problems.append(f"{where}: bucket counts not cumulative")
        if not math.isinf(les[-1]):
            problems.append(f"{where}: last bucket is le={les[-1]}, not +Inf")
        if h["count"] is None or h["sum"] is None:
            problems.append(f"{where}: _count or _sum missing")
        elif counts[-1] != h["count"]:
            problems.append(f"{where}: +Inf bucket {counts[-1]} != _count {h['count']}")


def check_quantiles(family, problems):
    series = defaultdict(list)
    for s in family.samples:
        if "quantile" in s.labels:
            series[key_without(s.labels, {"quantile"})].append(
                (float(s.labels["quantile"]), s.value))
    for labels, qs in series.items():
        vals = [v for _, v in sorted(qs) if not math.isnan(v)]
        if any(b < a for a, b in zip(vals, vals[1:])):
            problems.append(f"{family.name}{dict(labels)}: quantiles decrease")


def parse_expectation(arg):
    m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?=(.+)", arg)
    if not m:
        raise SystemExit(f"bad expectation {arg!r}")
    labels = {}
    if m.group(2) and m.group(2).startswith('"'):
        labels = json.loads("{" + m.group(2) + "}")
    elif m.group(2):
        for pair in m.group(2).split(","):
            k, _, v = pair.partition("=")
            labels[k.strip()] = v.strip().strip('"')
    return m.group(1), labels, float(m.group(3))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    problems = []
    families = list(text_string_to_metric_families(text))
    samples = []
    for family in families:
        samples.extend(family.samples)
        if family.type == "histogram":
            check_histogram(family, problems)
        elif family.type == "counter":
            problems.extend(f"{s.name}: negative counter" for s in family.samples if s.value < 0)
        elif family.type == "gauge":
            check_quantiles(family, problems)
        elif family.type != "summary":
            problems.append(f"{family.name}: type {family.type}")
    seen = set()
    for s in samples:
        key = (s.name, tuple(sorted(s.labels.items())))
        if key in seen:
            problems.append(f"{s.name}{s.labels}: sample appears twice")
        seen.add(key)
    for arg in sys.argv[2:]:
        name, labels, want = parse_expectation(arg)
        got = [s.value for s in samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
        if not got:
            problems.append(f"{arg}: no such sample")
        elif any(not math.isclose(v, want, rel_tol=1e-9, abs_tol=1e-12) for v in got):
            problems.append(f"{arg}: got {got}")
    for p in problems:
        print("check_prometheus:", p)
    print(f"check_prometheus: {len(families)} families, {len(samples)} samples, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
