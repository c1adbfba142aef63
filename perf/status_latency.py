#!/usr/bin/env python3
"""Reads the JSON of sluice's metrics endpoint (`/status`) and prints the
freshness and ingest latency percentiles, in milliseconds:

    curl -s http://127.0.0.1:PORT/status | python3 perf/status_latency.py
prints: fresh_p50 fresh_p99 fresh_p999 fresh_count ingest_p50 ingest_p99 ingest_p999 ingest_count

Latency families are found by name wherever a "latency" object appears in the
document (core/metrics.h: "latency":{"<name>":{"count":N,"p50_ms":x,...}}):
the first whose name contains "freshness" (env SLUICE_FRESHNESS_METRIC) and
the first whose name contains "ingest" (env SLUICE_INGEST_METRIC); count is
how many values each holds (freshness: one per window written). Each figure
is "n/a" when the document, the family or the value is missing (an empty
input: a sluice without the endpoint). Standard library only; never fails.
"""
import json
import os
import sys

FIELDS = ("p50_ms", "p99_ms", "p999_ms", "count")


def latency_families(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "latency" and isinstance(value, dict):
                for name, family in value.items():
                    if isinstance(family, dict):
                        found.append((name, family))
            else:
                latency_families(value, found)
    elif isinstance(node, list):
        for value in node:
            latency_families(value, found)
    return found


def show(v):
    """Three significant digits without an exponent (0.635, 7.67, 145, 2774)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "n/a"
    if isinstance(v, int) or abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def figures(families, pattern):
    for name, family in families:
        if pattern in name:
            return [show(family.get(f)) for f in FIELDS]
    return ["n/a"] * len(FIELDS)


def main():
    try:
        doc = json.loads(sys.stdin.read())
    except ValueError:
        doc = {}
    families = latency_families(doc, [])
    out = figures(families, os.environ.get("SLUICE_FRESHNESS_METRIC", "freshness"))
    out += figures(families, os.environ.get("SLUICE_INGEST_METRIC", "ingest"))
    print(" ".join(out))


if __name__ == "__main__":
    main()
