#!/usr/bin/env bash
# End-to-end check of the Kafka test peers: sluice-kafka-mock with 3 brokers and a
# 4-partition topic; 10 000 JSON lines from each of kcat (lz4), sluice-kafka-produce
# (zstd, keyed) and kafkajs (gzip, keyed, headers); everything consumed back with
# `kcat -C -e` and compared; every stdin fault command exercised once while the
# clients run. Prints "N passed, N failed" last; exit 0 only if nothing failed.
#
#   tests/peers/check-peers.sh [TOOLS_DIR]     (default: build/release/tools)
#
# Needs kcat; kafkajs checks are skipped (and said so) without node or without
# `scripts/kafka-peers.sh` having installed tests/peers/kafkajs/node_modules.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
tools=${1:-build/release/tools}
mock_bin=$tools/sluice-kafka-mock
produce_bin=$tools/sluice-kafka-produce
lines=10000
# Every client call is bounded: a hung peer fails the check instead of the run.
client_timeout_s=60

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() {  # check "description" command...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

for b in "$mock_bin" "$produce_bin"; do
  [ -x "$b" ] || { echo "check-peers: $b not built"; echo "0 passed, 1 failed"; exit 1; }
done
command -v kcat >/dev/null || { echo "check-peers: kcat not installed"; echo "0 passed, 1 failed"; exit 1; }

work=$(mktemp -d)
mock_pid=
cleanup() {
  [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# --- Input: the same synthetic sales events for each producer, tagged by "src". ---
gen() {  # gen SRC > file
  awk -v src="$1" -v n="$lines" 'BEGIN {
    srand(42);
    for (i = 0; i < n; i++) {
      printf "{\"src\":\"%s\",\"seq\":%d,\"product_id\":%d,\"customer_id\":\"c%06d\",\"quantity\":%d,\"revenue\":%.2f,\"timestamp\":\"2024-01-01T00:%02d:%02d.%03dZ\"}\n",
        src, i, int(rand() * 100), int(rand() * 10000), 1 + int(rand() * 10), rand() * 200,
        int(i / 60000) % 60, int(i / 1000) % 60, i % 1000;
    }
  }'
}
gen kcat >"$work/kcat.ndjson"
gen sluice >"$work/sluice.ndjson"
gen kafkajs >"$work/kafkajs.ndjson"
# kcat takes the key before a delimiter on each line: "product_id<TAB>line".
awk '{ s = $0; sub(/.*"product_id":/, "", s); sub(/[,}].*/, "", s); print s "\t" $0 }' \
  "$work/kcat.ndjson" >"$work/kcat.keyed"

# --- The mock: stdin/stdout as a coprocess so the test can talk to it. ---
coproc MOCK { exec "$mock_bin" --brokers 3 --topic events:4 --leaders round-robin 2>"$work/mock.err"; }
mock_pid=$MOCK_PID
mock_in=${MOCK[1]}
mock_out=${MOCK[0]}
read -r -t 10 -u "$mock_out" word bootstrap || word=
if [ "$word" != bootstrap ]; then
  fail "mock prints 'bootstrap <addresses>' first"; cat "$work/mock.err"
  echo "$passed passed, $failed failed"; exit 1
fi
pass "mock started: bootstrap $bootstrap"
IFS=, read -r b1 b2 b3 <<<"$bootstrap"
check "mock lists 3 brokers" test -n "$b3"

mock() {  # mock "command" -> sets $reply
  echo "$1" >&"$mock_in"
  reply=
  read -r -t 10 -u "$mock_out" reply
}
expect_ok() {
  mock "$1"
  if [ "$reply" = ok ]; then pass "mock: $1"; else fail "mock: $1 -> '$reply'"; fi
}
expect_error() {
  mock "$1"
  case $reply in "error "*) pass "mock: $1 -> $reply" ;; *) fail "mock: $1 -> '$reply' (want error)" ;; esac
}
leader_of() {  # leader_of TOPIC PARTITION
  timeout "$client_timeout_s" kcat -L -b "$bootstrap" -t "$1" 2>/dev/null |
    awk -v p="$2" '$1 == "partition" && $2 == p "," { print $4; exit }' | tr -d ,
}

# --- kcat, lz4, keyed, headers; while broker 2 answers 30 ms late. ---
expect_ok "rtt 2 30"
check "kcat -P lz4 (10000 keyed lines)" timeout "$client_timeout_s" \
  kcat -P -b "$bootstrap" -t events -K '\t' -H producer=kcat -X compression.codec=lz4 -l "$work/kcat.keyed"
expect_ok "rtt 2 0"

# --- sluice-kafka-produce, zstd, keyed; the first Produce requests fail. ---
expect_ok "errors Produce 3 NOT_LEADER_OR_FOLLOWER REQUEST_TIMED_OUT NOT_LEADER_OR_FOLLOWER"
check "sluice-kafka-produce zstd keyed (retries through injected errors)" timeout "$client_timeout_s" \
  "$produce_bin" -q -b "$bootstrap" -t events -f "$work/sluice.ndjson" --key-field product_id \
  --codec zstd --header producer=sluice
expect_ok "clear_errors Produce"

# --- kafkajs, gzip, keyed, headers. ---
have_kafkajs=no
if command -v node >/dev/null && [ -d tests/peers/kafkajs/node_modules/kafkajs ]; then have_kafkajs=yes; fi
if [ $have_kafkajs = yes ]; then
  check "kafkajs gzip keyed with headers" timeout "$client_timeout_s" \
    node tests/peers/kafkajs/produce.js --brokers "$bootstrap" --topic events \
    --file "$work/kafkajs.ndjson" --key-field product_id --codec gzip \
    --header producer=kafkajs --header store=17
else
  echo "SKIP kafkajs (run scripts/kafka-peers.sh; needs node)"
fi

# --- Faults before consuming: leader moves, a broker bounces, Fetch errors. ---
before=$(leader_of events 1)
expect_ok "leader events 1 3"
check "kcat -L sees partition 1 led by broker 3 (was $before)" test "$(leader_of events 1)" = 3
expect_ok "broker_down 2"
expect_ok "broker_up 2"
expect_ok "errors Fetch 2 NOT_LEADER_OR_FOLLOWER"
expect_ok "create extra 2"
check "kcat -L sees topic 'extra' with 2 partitions" bash -c \
  "timeout $client_timeout_s kcat -L -b '$bootstrap' -t extra | grep -q 'topic \"extra\" with 2 partitions'"
expect_error "broker_down 9"
expect_error "errors Bogus 1 NOT_LEADER_OR_FOLLOWER"
expect_error "leader events 99 1"

# --- Consume everything back. ---
out=$work/consumed.tsv
consume() {
  timeout "$client_timeout_s" kcat -C -b "$bootstrap" -t events -o beginning -e -q \
    -f '%p\t%o\t%k\t%h\t%s\n' >"$out"
}
check "kcat -C -e reads the topic to its end" consume

expected_total=$((2 * lines))
[ $have_kafkajs = yes ] && expected_total=$((3 * lines))
check "consumed $expected_total records in all" test "$(wc -l <"$out")" -eq "$expected_total"
producers="kcat sluice"
[ $have_kafkajs = yes ] && producers="kcat sluice kafkajs"
for p in $producers; do
  grep -F "\"src\":\"$p\"" "$out" | cut -f5 | sort >"$work/$p.got"
  sort "$work/$p.ndjson" >"$work/$p.want"
  check "$p: all $lines values back, byte for byte" cmp -s "$work/$p.got" "$work/$p.want"
  # Key = product_id, headers as sent, for every record of this producer.
  bad=$(grep -F "\"src\":\"$p\"" "$out" | awk -F'\t' -v p="$p" '{
      s = $5; sub(/.*"product_id":/, "", s); sub(/[,}].*/, "", s);
      if ($3 != s || index($4, "producer=" p) != 1) n++
    } END { print n + 0 }')
  check "$p: every key is product_id and headers start producer=$p" test "$bad" -eq 0
done
if [ $have_kafkajs = yes ]; then
  other=$(grep -F '"src":"kafkajs"' "$out" | cut -f4 | grep -cvx 'producer=kafkajs,store=17')
  check "kafkajs: headers exactly producer=kafkajs,store=17" test "$other" -eq 0
fi
check "records landed on all 4 partitions" test "$(cut -f1 "$out" | sort -u | wc -l)" -eq 4
# Per partition, offsets are dense from 0: nothing lost, nothing duplicated.
gaps=$(sort -t$'\t' -k1,1n -k2,2n "$out" | awk -F'\t' '$1 != p { p = $1; want = 0 } $2 != want { n++ } { want = $2 + 1 } END { print n + 0 }')
check "offsets per partition dense from 0" test "$gaps" -eq 0
echo "sample:"; head -2 "$out" | cut -c1-200

# --- quit: acknowledged, then the mock exits 0. ---
expect_ok "quit"
wait "$mock_pid"
rc=$?
mock_pid=
check "mock exits 0 after quit" test "$rc" -eq 0

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
