#!/usr/bin/env bash
# Kafka sink throughput: a file of generated sales events -> 1-minute windows
# (sum quantity, sum revenue, count) -> one record per row into a 4-partition
# topic of librdkafka's mock cluster (sluice-kafka-mock) started here, keyed by
# product, idempotent, acks all; beside it, in the same run, the same pipeline
# into a file (the pipeline without Kafka) and librdkafka's own producer
# (`kcat -P`, idempotent, same codec, same linger) sending the very rows the
# file run wrote, keyed the same way, to the same broker.
# Prints medians of RUNS runs: rows/s (sluice: its exit summary, first read to
# last acknowledged record; kcat: rows / wall time of the kcat process).
# Usage: [CODEC=lz4] perf/kafka_sink.sh [RUNS]   (needs a Release build and kcat)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/lib.sh
. perf/lib.sh
runs=${1:-5}
codec=${CODEC:-lz4}
bin=${SLUICE_BIN_DIR:-build/release/tools}
work=perf/work
mkdir -p "$work"
data=$work/redis_1m.ndjson  # the Redis sink benchmark's events
if [ ! -s "$data" ]; then
  "$bin/sluice-gen" --count 1000000 --products 200000 --customers 100000 --step 300us --seed 11 -o "$data"
fi
coproc MOCK { exec "$bin/sluice-kafka-mock" --brokers 1 --topic perf:4 --topic ref:4 2>"$work/kafka_mock.log"; }
read -r _ bootstrap <&"${MOCK[0]}"
trap 'kill $MOCK_PID 2>/dev/null || true' EXIT

job() {
  cat <<TOML
[pipeline]
name = "perf-kafka"
shards = 2
[[sources]]
name = "file"
type = "file"
path = "$data"
$(sales_job_toml 1m 0s)
[dead_letter]
path = "$work/kafka_dead_letter.ndjson"
TOML
}
{ job; cat <<TOML
[[sinks]]
name = "topic"
type = "kafka"
brokers = ["$bootstrap"]
topic = "perf"
key = "{product_id}"
compression = "$codec"
linger = "5ms"
TOML
} > "$work/kafka_sink.toml"
{ job; cat <<TOML
[[sinks]]
name = "out"
type = "file"
path = "$work/kafka_baseline.ndjson"
TOML
} > "$work/kafka_file.toml"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rate() { sed -n 's/.*done in \([0-9.]*\) s:.* \([0-9]*\) rows out.*/\2 \1/p' | awk '{printf "%.0f\n", $1 / $2}'; }

: > "$work/kafka_rates"; : > "$work/kafka_file_rates"; : > "$work/kcat_rates"
for _ in $(seq "$runs"); do
  "$bin/sluice" run "$work/kafka_sink.toml" 2>&1 | tee "$work/kafka_sink.log" | rate >> "$work/kafka_rates"
  "$bin/sluice" run "$work/kafka_file.toml" 2>&1 | rate >> "$work/kafka_file_rates"
  # The same rows, keyed by product, through librdkafka's producer.
  sed 's/.*"product_id":\([0-9]*\).*/\1\t&/' "$work/kafka_baseline.ndjson" > "$work/kcat_input.tsv"
  rows=$(wc -l < "$work/kcat_input.tsv")
  start=$(date +%s.%N)
  kcat -P -b "$bootstrap" -t ref -K $'\t' -z "$codec" -X enable.idempotence=true -X linger.ms=5 \
    -X topic.partitioner=murmur2_random -l "$work/kcat_input.tsv"
  end=$(date +%s.%N)
  awk -v r="$rows" -v s="$start" -v e="$end" 'BEGIN {printf "%.0f\n", r / (e - s)}' >> "$work/kcat_rates"
done
printf '| what (%s) | rows/s (median of %s) |\n|---|---|\n' "$codec" "$runs"
printf '| sluice, file -> windows -> Kafka sink (%s rows per run) | %s |\n' "$rows" "$(median < "$work/kafka_rates")"
printf '| sluice, same pipeline -> file sink | %s |\n' "$(median < "$work/kafka_file_rates")"
printf '| kcat -P (librdkafka 2.0.2, idempotent) of the same rows | %s |\n' "$(median < "$work/kcat_rates")"
