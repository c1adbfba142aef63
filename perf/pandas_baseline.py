#!/usr/bin/python3
"""The nightly batch job Sluice replaces, as pandas code: read the NDJSON
file, floor each event time to its 5-minute window, and per (window, product)
sum quantity, sum revenue and count events; write the rows as CSV.

    /usr/bin/python3 perf/pandas_baseline.py FILE OUT.csv
prints: events=N rows=R seconds=S events_per_s=E pandas=VERSION

The clock covers reading, aggregation and writing, not Python's start-up or
imports. Debian's python3-pandas (1.5) is used, hence /usr/bin/python3.
window_start is written as Unix seconds for perf/compare_results.py.
"""
import sys
import time

import pandas as pd


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: pandas_baseline.py FILE OUT.csv", file=sys.stderr)
        return 2
    path, out = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    df = pd.read_json(path, lines=True, convert_dates=["timestamp"],
                      dtype={"product_id": "int64", "quantity": "int64", "revenue": "float64"})
    # Timestamps with "Z" come back tz-aware (UTC); floor() keeps them so.
    window = df["timestamp"].dt.floor("5min")
    rows = (df.assign(window_start=window)
              .groupby(["window_start", "product_id"], sort=False)
              .agg(total_quantity=("quantity", "sum"),
                   total_revenue=("revenue", "sum"),
                   events=("quantity", "size"))
              .reset_index())
    # ns since the epoch (UTC) -> whole seconds; windows start on whole minutes.
    rows["window_start"] = rows["window_start"].astype("int64") // 1_000_000_000
    rows.to_csv(out, index=False, float_format="%.17g")
    seconds = time.perf_counter() - start
    events = len(df)
    print(f"events={events} rows={len(rows)} seconds={seconds:.6f} "
          f"events_per_s={events / seconds:.0f} pandas={pd.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
