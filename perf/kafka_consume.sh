#!/usr/bin/env bash
# Kafka consumption, side by side, in one run: 1 M generated sales events
# (~112-byte JSON values) in a 32-partition topic on the librdkafka mock broker
# (32 partitions keep each under the mock's 5 MiB per-partition log), read
# from the beginning to the end by:
#   - librdkafka's consumer (check.crcs=false, its default, and =true), one
#     rd_kafka_consumer_poll per message, and its batch API;
#   - Sluice --consume-only (fetch, CRC-32C check, batch and record decode; no JSON);
#   - Sluice decoding JSON into 5-minute windows (sum quantity, sum revenue, count),
#     shards = 1 and 2.
# Each figure is the median of RUNS runs; ratios are against librdkafka
# (default settings). Usage: perf/kafka_consume.sh [RUNS] [CODEC]
# Needs a Release build with the Kafka peers:
#   cmake --preset release && cmake --build --preset release
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/lib.sh
. perf/lib.sh
runs=${1:-3}
codec=${2:-none}
bin=${SLUICE_BIN_DIR:-build/release/tools}
perf_bin=${SLUICE_PERF_BIN_DIR:-build/release/perf}
work=perf/work/kafka
mkdir -p "$work"
records=1000000
partitions=32

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

data=$work/events_1m.ndjson
[ -s "$data" ] || "$bin/sluice-gen" --count $records --products 10000 --customers 100000 \
  --step 1ms --jitter 30s --seed 11 -o "$data"

# The broker: stdin kept open by a FIFO until the script ends.
fifo=$work/mock.stdin
rm -f "$fifo" && mkfifo "$fifo"
"$bin/sluice-kafka-mock" --brokers 1 --topic "perf:$partitions" <"$fifo" >"$work/mock.out" 2>"$work/mock.err" &
mock=$!
exec 9>"$fifo"
trap 'exec 9>&-; kill $mock 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/mock.out" ] && break; sleep 0.05; done
brokers=$(head -1 "$work/mock.out" | cut -d' ' -f2)
"$bin/sluice-kafka-produce" -q -b "$brokers" -t perf -f "$data" --codec "$codec" -k product_id

cat >"$work/pipeline.toml" <<TOML
[pipeline]
name = "perf-kafka"
shards = SHARDS
[[sources]]
name = "kafka"
type = "kafka"
brokers = ["${brokers%%,*}"]
topic = "perf"
stop = "end"
$(sales_job_toml 5m 10m)
[[sinks]]
name = "out"
type = "file"
path = "$work/out.ndjson"
[dead_letter]
path = "$work/dead_letter.ndjson"
TOML

rdkafka() {
  "$perf_bin/sluice-perf-rdkafka-consume" "$brokers" perf "$@" | sed -E 's/.*records_per_s=([0-9]+).*/\1/'
}
sluice() {
  local shards=$1; shift
  sed "s/SHARDS/$shards/" "$work/pipeline.toml" >"$work/pipeline_$shards.toml"
  local line
  line=$("$bin/sluice" run "$@" "$work/pipeline_$shards.toml" 2>&1 | grep 'events/s')
  local n
  n=$(echo "$line" | sed -E 's/.* ([0-9]+) events in .*/\1/')
  [ "$n" = "$records" ] || { echo "sluice read $n events, expected $records" >&2; exit 1; }
  echo "$line" | sed -E 's/.*; ([0-9]+) events\/s.*/\1/'
}
measure() {
  local out=()
  for _ in $(seq "$runs"); do out+=("$("$@")"); done
  printf '%s\n' "${out[@]}" | median
}

base=$(measure rdkafka)
rows=(
  "librdkafka consumer (check.crcs=false, default)|$base"
  "librdkafka consumer (check.crcs=true)|$(measure rdkafka check_crcs)"
  "librdkafka batch consume (consume_batch_queue, check.crcs=true)|$(measure rdkafka check_crcs batch)"
  "Sluice --consume-only, shards=1 (CRC checked)|$(measure sluice 1 --consume-only)"
  "Sluice decode + 5-min windows, shards=1|$(measure sluice 1)"
  "Sluice decode + 5-min windows, shards=2|$(measure sluice 2)"
)
printf '\n%s records, codec %s, %s partitions, median of %s runs\n\n' "$records" "$codec" "$partitions" "$runs"
printf '| consumer | records/s | vs librdkafka |\n|---|---|---|\n'
for row in "${rows[@]}"; do
  name=${row%|*}
  rate=${row##*|}
  printf '| %s | %s | %s |\n' "$name" "$rate" "$(awk -v a="$rate" -v b="$base" 'BEGIN {printf "%.2f x", a / b}')"
done
