#!/usr/bin/env python3
"""Checks that several implementations of the perf job produced the same rows.

    python3 perf/compare_results.py NAME=FILE NAME=FILE ...

Each FILE is either Sluice's NDJSON output (window_start as RFC 3339) or a
CSV with a header (window_start as Unix seconds), with the columns
window_start, product_id, total_quantity, total_revenue, events. The first
file is the reference. Every other must have the same set of
(window_start, product_id), the same total_quantity and events exactly, and
total_revenue within a relative 1e-9 (float sums depend on summation order).
Exits 1 and names the first differences when they do not agree.
Standard library only.
"""
import csv
import json
import sys
from datetime import datetime

REVENUE_REL_TOL = 1e-9
SHOW_MAX = 5


def epoch_seconds(text):
    if isinstance(text, (int, float)):
        return int(text)
    if text.lstrip("-").isdigit():
        return int(text)
    # Sluice writes UTC with "Z"; fromisoformat in 3.11 takes it directly.
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def load(path):
    rows = {}
    with open(path, newline="") as f:
        first = f.readline()
        f.seek(0)
        if first.startswith("{"):
            records = (json.loads(line) for line in f if line.strip())
        else:
            records = csv.DictReader(f)
        for r in records:
            key = (epoch_seconds(r["window_start"]), int(r["product_id"]))
            if key in rows:
                raise SystemExit(f"{path}: duplicate row for window {key[0]} product {key[1]}")
            rows[key] = (int(r["total_quantity"]), float(r["total_revenue"]), int(r["events"]))
    return rows


def main():
    if len(sys.argv) < 3:
        raise SystemExit("usage: compare_results.py NAME=FILE NAME=FILE ...")
    named = [a.split("=", 1) for a in sys.argv[1:]]
    ref_name, ref_path = named[0]
    ref = load(ref_path)
    if not ref:
        raise SystemExit(f"{ref_name}: no rows in {ref_path}")
    failed = False
    for name, path in named[1:]:
        got = load(path)
        problems = []
        for key in sorted(ref.keys() - got.keys())[:SHOW_MAX]:
            problems.append(f"missing row window={key[0]} product={key[1]}")
        for key in sorted(got.keys() - ref.keys())[:SHOW_MAX]:
            problems.append(f"extra row window={key[0]} product={key[1]}")
        bad = 0
        for key in sorted(ref.keys() & got.keys()):
            (q1, r1, n1), (q2, r2, n2) = ref[key], got[key]
            scale = max(abs(r1), abs(r2))
            if q1 != q2 or n1 != n2 or (scale > 0 and abs(r1 - r2) > REVENUE_REL_TOL * scale):
                bad += 1
                if bad <= SHOW_MAX:
                    problems.append(f"window={key[0]} product={key[1]}: {ref_name} {ref[key]} vs {name} {got[key]}")
        if len(ref) != len(got) or bad:
            problems.append(f"{len(ref)} vs {len(got)} rows, {bad} differing values")
        if problems:
            failed = True
            print(f"compare: {name} ({path}) differs from {ref_name} ({ref_path}):", file=sys.stderr)
            for p in problems:
                print(f"  {p}", file=sys.stderr)
        else:
            print(f"compare: {name} == {ref_name}: {len(got)} rows, quantities and counts exact, "
                  f"revenue within {REVENUE_REL_TOL:g} relative")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
