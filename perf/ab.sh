#!/usr/bin/env bash
# Two builds of sluice, alternated in one run, on the same workloads: a change
# that claims "no slowdown" (or a speed-up) shows it here. Each round runs
# every workload once with A, then once with B (A and B swap first place
# every other round), so noise from other tenants spreads over both.
#
#   file1   the file source (split = true), shards = 1: 2 M sales events, 5-minute windows
#   file2   the same, shards = 2
#   tcp     sluice-gen at full speed into a TCP source, shards = 1, pinned as in run.sh
#   kafka   1 M records from the mock broker (32 partitions), decode + 5-minute windows, shards = 1
#
# For each: the median events/s from sluice's exit summary (wall time, first
# read to last write) and the median CPU seconds (user + system, all threads)
# per run, which moves less with other tenants; B / A for both.
#
# Usage: perf/ab.sh A_BIN_DIR B_BIN_DIR [ROUNDS]   (default 7 rounds; AB_WORKLOADS="file1 tcp" picks some)
#   A_BIN_DIR, B_BIN_DIR: folders holding a `sluice` binary (Release builds).
#   The load generator, the Kafka mock and producer come from build/release/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/lib.sh
. perf/lib.sh
[ $# -ge 2 ] || { echo "usage: perf/ab.sh A_BIN_DIR B_BIN_DIR [ROUNDS]" >&2; exit 2; }
a=$1 b=$2 rounds=${3:-7}
tools=build/release/tools
work=perf/work/ab
mkdir -p "$work"
say() { echo "ab.sh: $*" >&2; }
die() { echo "ab.sh: FAILED: $*" >&2; exit 1; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
summary_rate() { grep -E 'done in [0-9.]+ s:' "$1" | tail -1 | sed -nE 's/.*; ([0-9]+) events\/s.*/\1/p'; }
summary_events() { grep -E 'done in [0-9.]+ s:' "$1" | tail -1 | sed -nE 's/.*: ([0-9]+) events in .*/\1/p'; }
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

bg=()
cleanup() { for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done; exec 9>&- 2>/dev/null || true; }
trap cleanup EXIT

# ---------------------------------------------------------------- data
data=perf/work/demo_2m.ndjson
[ -s "$data" ] || "$tools/sluice-gen" --count 2000000 --products 10000 --customers 100000 --step 1ms \
  --jitter 30s --seed 7 -o "$data"
job() {  # SHARDS SOURCE_TOML OUT
  cat <<TOML
[pipeline]
name = "perf-ab"
shards = $1
$2
$(sales_job_toml 5m 10m)
[[sinks]]
name = "out"
type = "file"
path = "$3"
[dead_letter]
path = "$3.dead"
TOML
}
file_source="[[sources]]
name = \"file\"
type = \"file\"
path = \"$data\"
split = true"
job 1 "$file_source" "$work/file1.ndjson" >"$work/file1.toml"
job 2 "$file_source" "$work/file2.ndjson" >"$work/file2.toml"
job 1 '[[sources]]
name = "tcp"
type = "tcp"
listen = "127.0.0.1:0"' "$work/tcp.ndjson" >"$work/tcp.toml"

# The Kafka topic, produced once.
kdata=perf/work/kafka/events_1m.ndjson
mkdir -p perf/work/kafka
[ -s "$kdata" ] || "$tools/sluice-gen" --count 1000000 --products 10000 --customers 100000 --step 1ms \
  --jitter 30s --seed 11 -o "$kdata"
fifo=$work/mock.stdin
rm -f "$fifo" && mkfifo "$fifo"
"$tools/sluice-kafka-mock" --brokers 1 --topic "perf:32" <"$fifo" >"$work/mock.out" 2>"$work/mock.err" &
bg+=($!)
exec 9>"$fifo"
for _ in $(seq 100); do [ -s "$work/mock.out" ] && break; sleep 0.05; done
brokers=$(head -1 "$work/mock.out" | cut -d' ' -f2)
"$tools/sluice-kafka-produce" -q -b "$brokers" -t perf -f "$kdata" --codec none -k product_id
job 1 "[[sources]]
name = \"kafka\"
type = \"kafka\"
brokers = [\"${brokers%%,*}\"]
topic = \"perf\"
stop = \"end\"" "$work/kafka.ndjson" >"$work/kafka.toml"

# ---------------------------------------------------------------- one run of a workload
run_one() {  # BIN_DIR WORKLOAD -> "rate cpu" on stdout
  local bin=$1 w=$2 log=$work/$2.log
  case $w in
    file1 | file2 | kafka)
      /usr/bin/time -f '%U %S' -o "$work/time" "$bin/sluice" run "$work/$w.toml" >/dev/null 2>"$log" ||
        die "$w with $bin: $(tail -3 "$log")"
      local cpu
      cpu=$(awk '{print $1 + $2}' "$work/time")
      ;;
    tcp)
      taskset -c 0 "$bin/sluice" run "$work/tcp.toml" >/dev/null 2>"$log" &
      local pid=$!
      local addr=""
      for _ in $(seq 1000); do
        addr=$(grep -m1 'starting' "$log" 2>/dev/null | grep -oE 'tcp 127\.0\.0\.1:[0-9]+' | cut -d' ' -f2 || true)
        [ -n "$addr" ] && break
        sleep 0.005
      done
      [ -n "$addr" ] || die "no TCP listener: $(tail -3 "$log")"
      "$tools/sluice-gen" --tcp "$addr" --rate 0 --count 6000000 --jitter 30s --products 10000 \
        --customers 100000 --seed 7 --connections 1 --cpu 1 >/dev/null 2>"$work/gen.log" ||
        die "sluice-gen: $(tail -3 "$work/gen.log")"
      # Wait until every event is in, then stop it and read its CPU time.
      local cpu
      cpu=$(cpu_of "$pid")
      kill -INT "$pid"
      wait "$pid" || die "tcp with $bin: $(tail -3 "$log")"
      ;;
  esac
  local events
  events=$(summary_events "$log")
  case $w in
    file1 | file2) [ "$events" = 2000000 ] || die "$w read $events events" ;;
    tcp) [ "$events" = 6000000 ] || die "tcp read $events events" ;;
    kafka) [ "$events" = 1000000 ] || die "kafka read $events events" ;;
  esac
  echo "$(summary_rate "$log") $cpu"
}

read -r -a workloads <<<"${AB_WORKLOADS:-file1 file2 tcp kafka}"
for r in $(seq "$rounds"); do
  say "round $r of $rounds"
  order=(A B)
  [ $((r % 2)) = 0 ] && order=(B A)
  for w in "${workloads[@]}"; do
    for side in "${order[@]}"; do
      dir=$a
      [ "$side" = B ] && dir=$b
      read -r rate cpu < <(run_one "$dir" "$w")
      echo "$rate" >>"$work/$w.$side.rate.$$"
      echo "$cpu" >>"$work/$w.$side.cpu.$$"
    done
  done
done

printf '| workload | A events/s | B events/s | B / A | A CPU s | B CPU s | B / A (CPU) | runs |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for w in "${workloads[@]}"; do
  ra=$(median <"$work/$w.A.rate.$$") rb=$(median <"$work/$w.B.rate.$$")
  ca=$(median <"$work/$w.A.cpu.$$") cb=$(median <"$work/$w.B.cpu.$$")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$ra" "$rb" \
    "$(awk -v x="$rb" -v y="$ra" 'BEGIN {printf "%.3f", x / y}')" "$ca" "$cb" \
    "$(awk -v x="$cb" -v y="$ca" 'BEGIN {if (y > 0) printf "%.3f", x / y; else print "n/a"}')" "$rounds"
done
rm -f "$work"/*.$$
