#!/usr/bin/env bash
# File-source throughput on the demo data: 2 M generated sales events, 10 000
# products, 30 s of out-of-order jitter, through 5-minute windows (sum
# quantity, sum revenue, count), with shards = 1 and shards = 2.
# Prints the median of RUNS runs (events/s from sluice's own exit summary,
# which times the whole pipeline from first read to last write).
# Usage: perf/file_source.sh [RUNS]   (needs a Release build: cmake --preset release && cmake --build --preset release)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/lib.sh
. perf/lib.sh
runs=${1:-5}
bin=${SLUICE_BIN_DIR:-build/release/tools}
work=perf/work
mkdir -p "$work"
data=$work/demo_2m.ndjson
if [ ! -s "$data" ]; then
  "$bin/sluice-gen" --count 2000000 --products 10000 --customers 100000 --step 1ms --jitter 30s --seed 7 -o "$data"
fi
bytes=$(stat -c %s "$data")

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '| shards | events/s (median of %s) | MB/s | runs |\n|---|---|---|---|\n' "$runs"
for shards in 1 2; do
  cat > "$work/file_$shards.toml" <<TOML
[pipeline]
name = "perf-file"
shards = $shards
[[sources]]
name = "file"
type = "file"
path = "$data"
$(sales_job_toml 5m 10m)
[[sinks]]
name = "out"
type = "file"
path = "$work/out_$shards.ndjson"
[dead_letter]
path = "$work/dead_letter_$shards.ndjson"
TOML
  rates=()
  for _ in $(seq "$runs"); do
    line=$("$bin/sluice" run "$work/file_$shards.toml" 2>&1 | grep 'events/s')
    rates+=("$(echo "$line" | sed -E 's/.*; ([0-9]+) events\/s.*/\1/')")
  done
  med=$(printf '%s\n' "${rates[@]}" | median)
  secs=$(awk -v e=2000000 -v r="$med" 'BEGIN {print e / r}')
  mbps=$(awk -v b="$bytes" -v s="$secs" 'BEGIN {printf "%.0f", b / s / 1e6}')
  printf '| %s | %s | %s | %s |\n' "$shards" "$med" "$mbps" "${rates[*]}"
done
