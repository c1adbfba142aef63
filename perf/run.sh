#!/usr/bin/env bash
# Sluice's one-command performance run, on this machine:
#
#   1. limit   simdjson On-Demand parse + extraction of the five fields, one
#              core, line by line (sluice-perf-parse-limit): the ceiling for
#              the file source;
#   2. Sluice  file source -> 5-minute windows (sum quantity, sum revenue,
#              count) on 2 M generated events, 10 k products; shards 1 and 2;
#   3. DuckDB  the same result with read_json + time_bucket + GROUP BY
#              (npm @duckdb/node-api), threads 1 and 2;
#   4. pandas  the same result, read_json(lines=True) + floor + groupby
#              (Debian python3-pandas): the nightly batch job Sluice replaces;
#   5. TCP     sluice-gen at full speed over loopback into a TCP source,
#              generator on CPU 1, Sluice (shards = 1) on CPU 0; and iperf3 on
#              loopback, pinned the same way, as the transport limit;
#   6. latency freshness and ingest p50/p99/p99.9 at 25/50/75 % of the
#              maximum TCP rate of step 5, real-time events, 1 s windows,
#              from sluice's metrics endpoint (/status); "n/a" without it.
#
# Before any speed is printed, Sluice (shards 1 and 2), DuckDB (threads 1 and
# 2) and pandas must produce the same rows (perf/compare_results.py); the
# script exits 1 if they do not. Every figure is the median of RUNS runs;
# steps 1-5 run in RUNS rounds (one run of each per round) so that noise from
# other tenants spreads over all of them. Prints a markdown table, the targets as PASS/FAIL
# lines, and writes perf/results/summary.md and PNG plots (gnuplot).
#
# Usage: perf/run.sh [RUNS]      (default 3; see perf/README.md for the
#                                 environment variables)
# Installs what it needs (apt: gnuplot-nox iperf3 python3-pandas curl; npm ci
# in perf/duckdb) and builds the Release targets it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=perf/lib.sh
. perf/lib.sh

runs=${1:-${PERF_RUNS:-3}}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "usage: perf/run.sh [RUNS]" >&2; exit 2; }
bin=${SLUICE_BIN_DIR:-build/release/tools}
perf_bin=${SLUICE_PERF_BIN_DIR:-build/release/perf}
python=${SLUICE_PYTHON:-/usr/bin/python3}   # Debian's python3, which has python3-pandas
work=perf/work/run
results=perf/results
events=2000000                               # the file workload (as perf/file_source.sh)
data=perf/work/demo_2m.ndjson                # shared with perf/file_source.sh
tcp_events=${PERF_TCP_EVENTS:-6000000}       # per TCP run: ~0.7 GB, long enough that start-up is noise
latency_seconds=${PERF_LATENCY_SECONDS:-10}  # per latency run
iperf_seconds=${PERF_IPERF_SECONDS:-3}
loads=(25 50 75)                             # % of the maximum TCP rate
mkdir -p "$work" "$results"
raw=$work/raw
rm -rf "$raw" && mkdir -p "$raw"
t_begin=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

say() { echo "run.sh: $*" >&2; }
die() { echo "run.sh: FAILED: $*" >&2; exit 1; }

# Processes started in the background, stopped on exit (by pid, nothing else).
bg_pids=()
cleanup() {
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# ---------------------------------------------------------------- dependencies
install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_packages gnuplot-nox iperf3 python3-pandas curl iproute2 util-linux
command -v node >/dev/null && command -v npm >/dev/null || install_packages nodejs npm
if [ ! -d perf/duckdb/node_modules/@duckdb/node-api ] ||
   [ perf/duckdb/package-lock.json -nt perf/duckdb/node_modules/.package-lock.json ]; then
  say "npm ci in perf/duckdb"
  (cd perf/duckdb && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# ---------------------------------------------------------------- build
if [ -z "${SLUICE_BIN_DIR:-}" ] && [ "${PERF_BUILD:-1}" = 1 ]; then
  say "building (release preset)"
  cmake --preset release >/dev/null
  cmake --build --preset release --target sluice sluice-gen sluice-perf-parse-limit >"$work/build.log" 2>&1 ||
    die "build failed (cmake --build --preset release):
$(grep -E -m 20 'error|FAILED' "$work/build.log")"
fi
for b in "$bin/sluice" "$bin/sluice-gen" "$perf_bin/sluice-perf-parse-limit"; do
  [ -x "$b" ] || die "$b missing: build Release first (cmake --preset release && cmake --build --preset release)"
done

# ---------------------------------------------------------------- helpers
# median of the numbers on stdin (other words, such as n/a, are skipped); n/a if none.
median() {
  awk '$1 ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ {print $1}' | sort -g |
    awk '{a[NR]=$1} END {if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}
record() { echo "$2" >>"$raw/$1"; }           # record NAME VALUE
med() { median <"$raw/$1"; }                    # median of NAME's runs
all_runs() { tr '\n' ' ' <"$raw/$1" | sed 's/ $//'; }
# key=value from a line: kv LINE KEY
kv() { sed -nE "s/.*(^| )$2=([^ ]+).*/\2/p" <<<"$1" | head -1; }
# a / b, printed with a format; n/a when either is missing or b is 0
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf f, a / b; else printf "n/a"}'; }
int() { awk -v a="$1" 'BEGIN {if (a ~ /^[0-9.eE+-]+$/) printf "%.0f", a; else printf "n/a"}'; }
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Sluice's exit summary, e.g. "... done in 0.497 s: 2000000 events in (2000000 lines,
# 225.0 MB), 77797 rows out, 14 windows; dead letters: parse_error=0 ...; 4027694 events/s"
summary_line() { grep -E 'done in [0-9.]+ s:' "$1" | tail -1; }
s_events_in() { sed -nE 's/.*: ([0-9]+) events in .*/\1/p' <<<"$1"; }
s_seconds() { sed -nE 's/.*done in ([0-9.]+) s:.*/\1/p' <<<"$1"; }
s_rate() { sed -nE 's/.*; ([0-9]+) events\/s.*/\1/p' <<<"$1"; }
s_mb() { sed -nE 's/.*lines, ([0-9.]+) MB\).*/\1/p' <<<"$1"; }
s_dead() { sed -nE 's/.*dead letters: ([^;]*);.*/\1/p' <<<"$1" | grep -oE '=[0-9]+' | tr -d = | awk '{s+=$1} END {print s+0}'; }

# The job's pipeline: SOURCE_TOML WINDOW DELAY FLUSH SHARDS OUT DEAD [EXTRA_TOML]
pipeline_toml() {
  cat <<TOML
[pipeline]
name = "perf-run"
shards = $5
$1
$(sales_job_toml "$2" "$3")
[[sinks]]
name = "out"
type = "file"
path = "$6"
flush_interval = "$4"
[dead_letter]
path = "$7"
${8:-}
TOML
}

# ---------------------------------------------------------------- data and configs
if [ ! -s "$data" ]; then
  say "generating $data"
  "$bin/sluice-gen" --count $events --products 10000 --customers 100000 --step 1ms --jitter 30s --seed 7 -o "$data"
fi
bytes=$(stat -c %s "$data")
[ "$(wc -l <"$data")" -eq $events ] || die "$data does not hold $events lines; delete it to regenerate"

# split = true (each shard reads its own byte range of the file) when this
# sluice has it; otherwise one shard parses the whole file.
file_source='[[sources]]
name = "file"
type = "file"
path = "'"$data"'"'
pipeline_toml "$file_source
split = true" 5m 10m 100ms 2 "$work/x.ndjson" "$work/x.dead" >"$work/split_probe.toml"
split_note="no split: one shard parses the file"
file_split=${PERF_FILE_SPLIT:-auto}   # auto: when this sluice has it; 0: never; 1: always
if [ "$file_split" = 1 ] || { [ "$file_split" = auto ] && "$bin/sluice" check "$work/split_probe.toml" >/dev/null 2>&1; }; then
  file_source="$file_source
split = true"
  split_note="split = true: each shard parses its own part of the file"
fi
for shards in 1 2; do
  pipeline_toml "$file_source" 5m 10m 100ms $shards "$work/out_$shards.ndjson" "$work/dead_$shards.ndjson" \
    >"$work/file_$shards.toml"
done

sluice_file_run() {  # SHARDS -> prints the summary line
  local log=$work/sluice_file_$1.log
  "$bin/sluice" run "$work/file_$1.toml" 2>"$log" >/dev/null || die "sluice run (shards=$1) failed: $(tail -3 "$log")"
  summary_line "$log"
}
limit_run() { taskset -c 0 "$perf_bin/sluice-perf-parse-limit" "$data" 1; }
duckdb_run() { node perf/duckdb/window_agg.mjs "$data" "$work/duckdb_$1.csv" "$1"; }
pandas_run() { "$python" perf/pandas_baseline.py "$data" "$work/pandas.csv"; }

# ---------------------------------------------------------------- 0. same rows?
say "checking that Sluice, DuckDB and pandas agree on $data ($events events)"
for shards in 1 2; do
  line=$(sluice_file_run $shards)
  [ "$(s_events_in "$line")" = $events ] || die "sluice shards=$shards read $(s_events_in "$line") events, not $events: $line"
  [ "$(s_dead "$line")" = 0 ] || die "sluice shards=$shards wrote dead letters: $line"
done
duck_line=$(duckdb_run 1) && duckdb_run 2 >/dev/null || die "DuckDB failed"
duckdb_version=$(kv "$duck_line" duckdb)
pandas_line=$(pandas_run) || die "pandas failed"
pandas_version=$(kv "$pandas_line" pandas)
"$python" perf/compare_results.py "sluice_shards1=$work/out_1.ndjson" "sluice_shards2=$work/out_2.ndjson" \
  "duckdb_threads1=$work/duckdb_1.csv" "duckdb_threads2=$work/duckdb_2.csv" "pandas=$work/pandas.csv" >&2 ||
  die "the implementations do not produce the same rows (see above); no speed is reported"

# ---------------------------------------------------------------- TCP helpers
gen_help=$("$bin/sluice-gen" --help 2>&1 || true)
gen_tcp=0
grep -q -- '--tcp' <<<"$gen_help" && grep -q -- '--cpu' <<<"$gen_help" && gen_tcp=1
[ $gen_tcp = 1 ] || say "sluice-gen has no --tcp/--cpu: TCP ingest and latency are n/a"
gen_common=(--products 10000 --customers 100000 --seed 7 --connections 1 --cpu 1)

# Starts sluice on CONFIG pinned to CPU 0, waits for its TCP listener; sets
# sluice_pid and tcp_addr. Logs to LOG.
start_tcp_sluice() {  # CONFIG LOG
  taskset -c 0 "$bin/sluice" run "$1" 2>"$2" >/dev/null &
  sluice_pid=$!
  bg_pids+=("$sluice_pid")
  tcp_addr=""
  for _ in $(seq 1000); do
    tcp_addr=$(grep -m1 'starting' "$2" 2>/dev/null | grep -oE 'tcp 127\.0\.0\.1:[0-9]+' | cut -d' ' -f2 || true)
    [ -n "$tcp_addr" ] && return 0
    kill -0 "$sluice_pid" 2>/dev/null || die "sluice exited at start: $(tail -3 "$2")"
    sleep 0.005
  done
  die "sluice did not report its TCP listener: $(tail -3 "$2")"
}
# CPU seconds (user + system, all threads) sluice has used so far; sets sluice_cpu.
sluice_cpu_now() {
  sluice_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$sluice_pid/stat")
}
# CPU seconds (user + system) used by this shell's finished children; sets children_cpu.
# `times` runs in this shell (a $(...) subshell would see its own, empty, children).
children_cpu_now() {
  times >"$work/times"
  children_cpu=$(tail -1 "$work/times" | awk '{t = 0; for (i = 1; i <= 2; i++) {split($i, p, /[ms]/); t += p[1] * 60 + p[2]} print t}')
}
stop_sluice() {  # LOG; not in a subshell: the shell that started sluice must wait for it
  sluice_cpu_now
  kill -INT "$sluice_pid"
  wait "$sluice_pid" || die "sluice exited with status $?: $(tail -3 "$1")"
}

tcp_source='[[sources]]
name = "tcp"
type = "tcp"
listen = "127.0.0.1:0"'
pipeline_toml "$tcp_source" 5m 10m 100ms 1 "$work/out_tcp.ndjson" "$work/dead_tcp.ndjson" >"$work/tcp.toml"

# One TCP ingest run at full speed, and sluice-gen alone into /dev/null.
tcp_once() {
  start_tcp_sluice "$work/tcp.toml" "$work/sluice_tcp.log"
  children_cpu_now
  local cpu_before=$children_cpu line genline aloneline
  "$bin/sluice-gen" --tcp "$tcp_addr" --rate 0 --count "$tcp_events" --jitter 30s "${gen_common[@]}" \
    >/dev/null 2>"$work/gen_tcp.log" || die "sluice-gen --tcp failed: $(tail -3 "$work/gen_tcp.log")"
  children_cpu_now
  local gen_cpu
  gen_cpu=$(awk -v a="$children_cpu" -v b="$cpu_before" 'BEGIN {print a - b}')
  stop_sluice "$work/sluice_tcp.log"
  line=$(summary_line "$work/sluice_tcp.log")
  [ "$(s_events_in "$line")" = "$tcp_events" ] || die "sluice read $(s_events_in "$line") of $tcp_events events over TCP: $line"
  [ "$(s_dead "$line")" = 0 ] || die "sluice wrote dead letters over TCP: $line"
  record tcp "$(s_rate "$line")"
  record tcp_mbps "$(awk -v mb="$(s_mb "$line")" -v s="$(s_seconds "$line")" 'BEGIN {printf "%.1f", mb / s}')"
  genline=$(grep -E '(^| )events=' "$work/gen_tcp.log" | tail -1 || true)
  record gen_rate "$(kv "$genline" rate)"
  record gen_cpu "$(awk -v c="$gen_cpu" -v s="$(kv "$genline" seconds)" 'BEGIN {printf "%.0f", 100 * c / s}')"
  record sluice_cpu "$(awk -v c="$sluice_cpu" -v s="$(s_seconds "$line")" 'BEGIN {printf "%.0f", 100 * c / s}')"
  # The generator alone, same CPU, into /dev/null: what it can send when nobody reads slowly.
  aloneline=$("$bin/sluice-gen" -o /dev/null --rate 0 --count "$tcp_events" --jitter 30s \
    --products 10000 --customers 100000 --seed 7 --cpu 1 2>&1 >/dev/null | grep -E '(^| )events=' | tail -1)
  record gen_alone "$(kv "$aloneline" rate)"
}

# One iperf3 run: server on CPU 0, client on CPU 1, client -> server.
iperf_once() {
  local port ipid
  port=$(free_port)
  taskset -c 0 iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
  ipid=$!
  bg_pids+=("$ipid")
  for _ in $(seq 200); do ss -ltnH "sport = :$port" | grep -q . && break; sleep 0.01; done
  taskset -c 1 iperf3 -c 127.0.0.1 -p "$port" -t "$iperf_seconds" -J >"$work/iperf3.json" 2>/dev/null ||
    die "iperf3 client failed"
  wait "$ipid" || true
  record iperf_mbps "$("$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f" % (d["end"]["sum_received"]["bits_per_second"] / 8e6))' "$work/iperf3.json")"
}

# ---------------------------------------------------------------- 1-5. throughput, in rounds
for r in $(seq "$runs"); do
  say "round $r of $runs: limit, Sluice file 1/2, DuckDB 1/2, pandas, TCP ingest ($tcp_events events), iperf3 (${iperf_seconds} s)"
  line=$(limit_run) || die "sluice-perf-parse-limit failed"
  record limit "$(kv "$line" events_per_s)"
  for shards in 1 2; do
    line=$(sluice_file_run $shards)
    record "sluice$shards" "$(s_rate "$line")"
  done
  for threads in 1 2; do
    line=$(duckdb_run $threads) || die "DuckDB failed"
    record "duckdb$threads" "$(kv "$line" events_per_s)"
  done
  line=$(pandas_run) || die "pandas failed"
  record pandas "$(kv "$line" events_per_s)"
  [ $gen_tcp = 1 ] && tcp_once
  iperf_once
done

# ---------------------------------------------------------------- 6. latency
latency_rows=()   # "load rate_target rate_got f50 f99 f999 i50 i99 i999"
metrics_note=""
tcp_max=$( [ $gen_tcp = 1 ] && med tcp || echo n/a)
if [ $gen_tcp = 1 ]; then
  latency_toml() {  # METRICS_PORT (empty: no [metrics] section)
    pipeline_toml "$tcp_source" 1s 0s 0s 1 "$work/out_lat.ndjson" "$work/dead_lat.ndjson" \
      "${1:+[metrics]
listen = \"127.0.0.1:$1\"}" >"$work/latency.toml"
  }
  metrics=1
  latency_toml "$(free_port)"
  if ! "$bin/sluice" check "$work/latency.toml" >/dev/null 2>&1; then
    metrics=0
    metrics_note="this sluice has no [metrics] endpoint: latency is n/a"
    say "$metrics_note"
  fi
  for load in "${loads[@]}"; do
    rate=$(awk -v m="$tcp_max" -v l="$load" 'BEGIN {printf "%.0f", m * l / 100}')
    count=$((rate * latency_seconds))
    for r in $(seq "$runs"); do
      say "latency at $load % ($rate events/s for ${latency_seconds} s), run $r of $runs"
      mport=""
      [ $metrics = 1 ] && mport=$(free_port)   # free when chosen: a fresh one per run
      latency_toml "$mport"
      start_tcp_sluice "$work/latency.toml" "$work/sluice_lat.log"
      "$bin/sluice-gen" --tcp "$tcp_addr" --rate "$rate" --time now --count "$count" "${gen_common[@]}" \
        >/dev/null 2>"$work/gen_lat.log" || die "sluice-gen --time now failed: $(tail -3 "$work/gen_lat.log")"
      sleep 1.5   # the last complete 1 s window fires and is written
      status=""
      [ $metrics = 1 ] && status=$(curl -s --max-time 5 "http://127.0.0.1:$mport/status" || true)
      [ -n "$status" ] && echo "$status" >"$work/status_${load}_$r.json"
      read -r f50 f99 f999 fn i50 i99 i999 in < <("$python" perf/status_latency.py <<<"$status")
      stop_sluice "$work/sluice_lat.log"
      line=$(summary_line "$work/sluice_lat.log")
      [ "$(s_events_in "$line")" = "$count" ] || die "sluice read $(s_events_in "$line") of $count events: $line"
      genline=$(grep -E '(^| )events=' "$work/gen_lat.log" | tail -1 || true)
      record "lat_${load}_rate" "$(kv "$genline" rate)"
      record "lat_${load}_lag" "$(kv "$genline" lag_p99_ms)"
      for k in f50 f99 f999 fn i50 i99 i999 in; do record "lat_${load}_$k" "${!k}"; done
    done
  done
fi

# ---------------------------------------------------------------- report
limit=$(med limit); s1=$(med sluice1); s2=$(med sluice2); d1=$(med duckdb1); d2=$(med duckdb2); pd_=$(med pandas)
tcp=${tcp_max}
mbps() { awk -v r="$1" -v b="$bytes" -v e=$events 'BEGIN {if (r+0 > 0) printf "%.0f", r * b / e / 1e6; else printf "n/a"}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%.0f %%", 100 * a / b; else printf "n/a"}'; }
x() { ratio "$1" "$2" "%.2f x"; }
iperf=$(med iperf_mbps)
tcp_mb=$( [ $gen_tcp = 1 ] && med tcp_mbps || echo n/a)
gen_rate=n/a; gen_alone=n/a; gen_cpu_pct=n/a; sluice_cpu_pct=n/a
if [ $gen_tcp = 1 ]; then
  gen_rate=$(med gen_rate); gen_alone=$(med gen_alone); gen_cpu_pct=$(med gen_cpu); sluice_cpu_pct=$(med sluice_cpu)
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"
cpu=$(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1)
elapsed=$(( $(date +%s) - t_begin ))

{
  echo "## Sluice perf run — $(date -u +%Y-%m-%dT%H:%MZ), commit $commit"
  echo
  echo "$(nproc) CPUs ($cpu); load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg);"
  echo "every figure is the median of $runs runs; the run took ${elapsed} s."
  if awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
    echo "**The machine was busy when the run started (other processes): the figures are noisy and low.**"
  fi
  echo "Data: $data, $events events, $((bytes / 1000000)) MB, 10 000 products; 5-minute windows, sum quantity, sum revenue, count."
  echo "Checked first: Sluice (shards 1, 2), DuckDB (threads 1, 2) and pandas wrote the same rows."
  echo
  echo "| run | events/s | MB/s | vs limit | vs peers | runs (events/s) |"
  echo "|---|---|---|---|---|---|"
  echo "| limit: simdjson On-Demand parse + extract, 1 core | $(int "$limit") | $(mbps "$limit") | 100 % | | $(all_runs limit) |"
  echo "| Sluice file, shards = 1 | $(int "$s1") | $(mbps "$s1") | $(pct "$s1" "$limit") | $(x "$s1" "$d1") DuckDB threads = 1; $(x "$s1" "$pd_") pandas | $(all_runs sluice1) |"
  echo "| Sluice file, shards = 2 | $(int "$s2") | $(mbps "$s2") | $(pct "$s2" "$limit") | $(x "$s2" "$s1") shards = 1; $(x "$s2" "$d2") DuckDB threads = 2; $(x "$s2" "$pd_") pandas | $(all_runs sluice2) |"
  echo "| DuckDB $duckdb_version, threads = 1 | $(int "$d1") | $(mbps "$d1") | $(pct "$d1" "$limit") | $(x "$d1" "$pd_") pandas | $(all_runs duckdb1) |"
  echo "| DuckDB $duckdb_version, threads = 2 | $(int "$d2") | $(mbps "$d2") | $(pct "$d2" "$limit") | $(x "$d2" "$d1") threads = 1; $(x "$d2" "$pd_") pandas | $(all_runs duckdb2) |"
  echo "| pandas $pandas_version | $(int "$pd_") | $(mbps "$pd_") | $(pct "$pd_" "$limit") | | $(all_runs pandas) |"
  if [ $gen_tcp = 1 ]; then
    echo "| Sluice TCP ingest, shards = 1 (CPU 0; sluice-gen on CPU 1) | $(int "$tcp") | $tcp_mb | $(pct "$tcp" "$limit") | $(pct "$tcp" "$s1") of file shards = 1; $(pct "$tcp_mb" "$iperf") of iperf3 | $(all_runs tcp) |"
  else
    echo "| Sluice TCP ingest, shards = 1 | n/a | n/a | | sluice-gen has no --tcp | |"
  fi
  echo "| iperf3 loopback (transport limit; CPU 0 / CPU 1) | | $(int "$iperf") | | | $(all_runs iperf_mbps) MB/s |"
  [ $gen_tcp = 1 ] &&
    echo "| sluice-gen alone, to /dev/null (CPU 1) | $(int "$gen_alone") | | | | $(all_runs gen_alone) |"
  echo
  echo "File source: $split_note."
  echo "Sluice's events/s come from its exit summary (first read to last write; for TCP from"
  echo "start-up to the drain after the sender is done). DuckDB and pandas"
  echo "are timed inside node and python: reading the file, aggregating and writing the rows,"
  echo "not interpreter start-up. MB/s = events/s x the file's bytes per event (TCP: bytes read"
  echo "/ time). TCP runs: sluice-gen sent $(int "$gen_rate") events/s using $gen_cpu_pct % of CPU 1;"
  echo "sluice used $sluice_cpu_pct % of one CPU (all threads) over its run (medians)."
  echo
  echo "### Latency (real-time events, 1 s windows, watermark_delay = 0s, flush_interval = 0s, shards = 1)"
  echo
  echo "| load | target events/s | sent events/s | sender lag p99 (ms) | freshness p50 / p99 / p99.9 (ms) [windows] | ingest p50 / p99 / p99.9 (ms) [events] |"
  echo "|---|---|---|---|---|---|"
  for load in "${loads[@]}"; do
    if [ $gen_tcp = 1 ]; then
      rate=$(awk -v m="$tcp_max" -v l="$load" 'BEGIN {printf "%.0f", m * l / 100}')
      m() { med "lat_${load}_$1"; }
      echo "| $load % | $rate | $(int "$(m rate)") | $(m lag) | $(m f50) / $(m f99) / $(m f999) [$(int "$(m fn)")] | $(m i50) / $(m i99) / $(m i999) [$(int "$(m in)")] |"
      latency_rows+=("$load $rate $(m f50) $(m f99) $(m f999) $(m i50) $(m i99) $(m i999)")
    else
      echo "| $load % | n/a | n/a | n/a | n/a | n/a |"
    fi
  done
  echo
  echo "Sender lag: how far sluice-gen's writes fell behind its schedule (open loop); a large"
  echo "lag means the offered load was not reached and the latencies are not at that load."
  echo "Freshness (window end + watermark_delay to its rows written) has one value per window,"
  echo "so with 1 s windows a run of ${latency_seconds} s holds about ${latency_seconds}: its p99 and p99.9 are"
  echo "the worst window. Ingest latency (bytes received to event applied) has one per event."
  echo "Read from /status just before SIGINT, so the final flush at shutdown is not counted."
  [ -n "$metrics_note" ] && { echo; echo "Latency: $metrics_note."; }
  echo
  echo "### Targets"
  echo
  target() {  # DESCRIPTION VALUE OP THRESHOLD SHOWN
    local verdict
    if [[ $2 == n/a || -z $2 ]]; then verdict="NOT MEASURED"
    elif awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN {exit !((op == ">=") ? v >= t : v <= t)}'; then verdict=PASS
    else verdict=FAIL; fi
    echo "- $verdict: $1 (got $5)"
  }
  target "file shards = 1 >= 50 % of the parse limit" "$(ratio "$s1" "$limit" %.4f)" ">=" 0.5 "$(pct "$s1" "$limit")"
  target "file shards = 2 >= 1.7 x shards = 1" "$(ratio "$s2" "$s1" %.4f)" ">=" 1.7 "$(x "$s2" "$s1")"
  target "shards = 1 >= 4 x DuckDB threads = 1" "$(ratio "$s1" "$d1" %.4f)" ">=" 4 "$(x "$s1" "$d1")"
  target "shards = 2 >= 4 x DuckDB threads = 2" "$(ratio "$s2" "$d2" %.4f)" ">=" 4 "$(x "$s2" "$d2")"
  target "shards = 1 >= 50 x pandas" "$(ratio "$s1" "$pd_" %.4f)" ">=" 50 "$(x "$s1" "$pd_")"
  target "TCP ingest shards = 1 >= 70 % of file shards = 1" "$(ratio "$tcp" "$s1" %.4f)" ">=" 0.7 "$(pct "$tcp" "$s1")"
  f99=$( [ $gen_tcp = 1 ] && med lat_50_f99 || echo n/a); i99=$( [ $gen_tcp = 1 ] && med lat_50_i99 || echo n/a)
  target "freshness p99 <= 5 ms at 50 % load" "$f99" "<=" 5 "$f99 ms"
  target "ingest p99 <= 1 ms at 50 % load" "$i99" "<=" 1 "$i99 ms"
} >"$results/summary.md"

# ---------------------------------------------------------------- plots
{
  echo "\"parse limit\" $limit"
  echo "\"Sluice file s=1\" $s1"
  echo "\"Sluice file s=2\" $s2"
  [[ $tcp != n/a ]] && echo "\"Sluice TCP s=1\" $tcp"
  echo "\"DuckDB t=1\" $d1"
  echo "\"DuckDB t=2\" $d2"
  echo "\"pandas\" $pd_"
} >"$results/throughput.dat"
{
  echo "\"parse limit\" $(mbps "$limit")"
  echo "\"Sluice file s=1\" $(mbps "$s1")"
  echo "\"Sluice file s=2\" $(mbps "$s2")"
  [[ $tcp_mb != n/a ]] && echo "\"Sluice TCP s=1\" $tcp_mb"
  [[ $iperf != n/a ]] && echo "\"iperf3 loopback\" $iperf"
  echo "\"DuckDB t=1\" $(mbps "$d1")"
  echo "\"DuckDB t=2\" $(mbps "$d2")"
  echo "\"pandas\" $(mbps "$pd_")"
} >"$results/bandwidth.dat"
gnuplot -e "dat='$results/throughput.dat'; out='$results/throughput.png'; ylab='events/s (median of $runs)'; ttl='5-minute windows over 2 M events: throughput'; div=1e6; unit='M'" perf/plots/throughput.gp
gnuplot -e "dat='$results/bandwidth.dat'; out='$results/bandwidth.png'; ylab='MB/s (median of $runs)'; ttl='Input bytes per second (iperf3: loopback transport limit)'; div=1; unit='MB/s'" perf/plots/throughput.gp
printf '%s\n' "${latency_rows[@]}" >"$results/latency.dat"
empty=1
grep -qE '^[0-9]+ [0-9]+ [0-9.]' "$results/latency.dat" && empty=0
gnuplot -e "dat='$results/latency.dat'; out='$results/latency.png'; ttl='Latency vs load (TCP, shards = 1, 1 s windows)'; empty=$empty" perf/plots/latency.gp

cat "$results/summary.md"
echo
echo "Written: $results/summary.md, throughput.png, bandwidth.png, latency.png"
