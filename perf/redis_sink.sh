#!/usr/bin/env bash
# Redis sink throughput: a file of generated sales events -> 1-minute windows
# (sum quantity, sum revenue, count, approx_count_distinct) -> a Redis hash per
# product (HSET of 5 fields), against a redis-server started here on a free
# loopback port; beside it, in the same run, the same pipeline into a file
# (the pipeline without Redis) and redis-benchmark sending the same HSET
# shape pipelined (what Redis itself takes on this machine).
# Prints medians of RUNS runs: rows/s from sluice's exit summary (first read
# to last acknowledged write).
# With SKETCHES=1 the Redis sink also SETs each row's HyperLogLog (12 KiB,
# `sketches`): rows/s then counts rows with their sketch.
# Usage: [SKETCHES=1] perf/redis_sink.sh [RUNS]   (needs a Release build and redis-server, redis-tools)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/lib.sh
. perf/lib.sh
runs=${1:-5}
bin=${SLUICE_BIN_DIR:-build/release/tools}
work=perf/work
mkdir -p "$work"
data=$work/redis_1m.ndjson
if [ ! -s "$data" ]; then
  "$bin/sluice-gen" --count 1000000 --products 200000 --customers 100000 --step 300us --seed 11 -o "$data"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done

job() {
  cat <<TOML
[pipeline]
name = "perf-redis"
shards = 2
[[sources]]
name = "file"
type = "file"
path = "$data"
$(sales_job_toml 1m 0s)
[[aggregates]]
name = "unique_customers"
fn = "approx_count_distinct"
field = "customer_id"
[dead_letter]
path = "$work/redis_dead_letter.ndjson"
TOML
}
{ job; cat <<TOML
[[sinks]]
name = "cache"
type = "redis"
address = "127.0.0.1:$port"
key = "product:{product_id}"
fields = { quantity = "total_quantity", revenue = "total_revenue", events = "events", customers = "unique_customers", last_updated = "window_end" }
$( [ "${SKETCHES:-0}" = 1 ] && echo 'sketches = { unique_customers = "customers:{product_id}:{window_start}" }' )
TOML
} > "$work/redis_sink.toml"
{ job; cat <<TOML
[[sinks]]
name = "out"
type = "file"
path = "$work/redis_baseline.ndjson"
TOML
} > "$work/redis_file.toml"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# rows/s from "done in S s: ... N rows out"
rate() { sed -n 's/.*done in \([0-9.]*\) s:.* \([0-9]*\) rows out.*/\2 \1/p' | awk '{printf "%.0f\n", $1 / $2}'; }

: > "$work/redis_rates"; : > "$work/file_rates"
for _ in $(seq "$runs"); do
  redis-cli -p "$port" FLUSHALL >/dev/null
  "$bin/sluice" run "$work/redis_sink.toml" 2>&1 | rate >> "$work/redis_rates"
  "$bin/sluice" run "$work/redis_file.toml" 2>&1 | rate >> "$work/file_rates"
done
keys=$(redis-cli -p "$port" DBSIZE)
bench() {  # redis-benchmark's requests/s for the same HSET shape
  redis-benchmark -p "$port" -q "$@" -n 1000000 -r 200000 HSET product:__rand_int__ quantity 12 revenue 1234.56 \
    events 9 customers 5 last_updated 2024-01-01T00:05:00Z 2>/dev/null | tr '\r' '\n' | \
    sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1
}
b1=$(bench -c 1 -P 1000)
b50=$(bench -c 50 -P 100)
printf '| what | rows/s (median of %s) |\n|---|---|\n' "$runs"
printf '| sluice, file -> windows -> Redis sink%s (%s keys at the end) | %s |\n' \
  "$( [ "${SKETCHES:-0}" = 1 ] && echo ' with a sketch per row')" "$keys" "$(median < "$work/redis_rates")"
printf '| sluice, same pipeline -> file sink | %s |\n' "$(median < "$work/file_rates")"
printf '| redis-benchmark HSET x5 fields, 1 client, -P 1000 | %s |\n' "$b1"
printf '| redis-benchmark HSET x5 fields, 50 clients, -P 100 | %s |\n' "$b50"
