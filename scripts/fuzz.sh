#!/usr/bin/env bash
# Coverage-guided fuzzing with clang's libFuzzer (+ASan/UBSan) for the
# decoders of outside bytes. Usage: scripts/fuzz.sh [TARGET] [SECONDS]
#   TARGET: framing | decoder | dead_letter | timestamp | kafka_response |
#           kafka_record_batch | http_request | hyperloglog | resp_reply | all (default all)
#   SECONDS: fuzzing time per target (default 60); scripts/test.sh runs
#           `scripts/fuzz.sh all 20` in CI.
# Targets run $(nproc) at a time, one libFuzzer process each. Each one starts
# from its committed corpus, tests/fuzz/corpus/<target> (read only), and
# writes the inputs it finds to build/fuzz/corpus/<target>; crash, leak and
# timeout reproducers go to build/fuzz/artifacts/<target>/. The checkout is
# never written to. Exit status 1 when any target found a crash, a leak, a
# timeout (an input taking more than 10 s) or a failed FUZZ_CHECK.
#
# To keep what a long run found, minimize it into the committed corpus:
#   build/fuzz/bin/fuzz_<t> -merge=1 tests/fuzz/corpus/<t> build/fuzz/corpus/<t>
#
# The config loader's target (tests/fuzz/config_fuzz.cc) is not built here:
# Debian's clang 14 cannot compile libstdc++ 12's <expected>; CI runs it
# through the mutation driver instead (ctest -L fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-all}
seconds=${2:-60}

# clang with libFuzzer's runtime, and the libraries the targets link.
packages=(clang libclang-rt-14-dev libsimdjson-dev libxxhash-dev zlib1g-dev libsnappy-dev
          liblz4-dev libzstd-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  echo "fuzz: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# -fno-sanitize-recover: a UBSan finding aborts, so libFuzzer reports it as a crash.
flags=(-std=c++2b -O1 -g -march=native -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I.)
libs=(-lsimdjson -lxxhash -lz -lsnappy -llz4 -lzstd -lfmt)
declare -A sources=(
  [framing]="tests/fuzz/framing_fuzz.cc"
  [decoder]="tests/fuzz/decoder_fuzz.cc operators/decoder.cc operators/json_text.cc core/timestamp.cc"
  [dead_letter]="tests/fuzz/dead_letter_fuzz.cc operators/dead_letter.cc operators/json_text.cc core/timestamp.cc"
  [timestamp]="tests/fuzz/timestamp_fuzz.cc core/timestamp.cc"
  [config_env]="tests/fuzz/config_env_fuzz.cc core/config_env.cc"
  [kafka_response]="tests/fuzz/kafka_response_fuzz.cc io/kafka/protocol.cc"
  [kafka_record_batch]="tests/fuzz/kafka_record_batch_fuzz.cc io/kafka/crc32c.cc io/kafka/compression.cc io/kafka/record_batch.cc"
  [http_request]="tests/fuzz/http_request_fuzz.cc io/http.cc"
  [hyperloglog]="tests/fuzz/hyperloglog_fuzz.cc operators/hyperloglog.cc"
  [resp_reply]="tests/fuzz/resp_reply_fuzz.cc io/redis/resp.cc"
)
# Longest input tried: past the HTTP head limit (8 KiB) for http_request.
declare -A max_len=([http_request]=9216)
all_targets=(framing decoder dead_letter timestamp config_env kafka_response kafka_record_batch http_request hyperloglog resp_reply)

targets=("$target")
[ "$target" = all ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -n "${sources[$t]:-}" ] || { echo "fuzz: unknown target '$t' (one of: ${all_targets[*]} all)" >&2; exit 2; }
done

out=build/fuzz
mkdir -p "$out/bin" "$out/logs"
jobs=$(nproc)

# Runs "$@ TARGET" for each target, at most $jobs at a time; prints the targets whose
# command failed (each job leaves its exit status in a file: `wait -n` reaps without telling).
parallel() {
  local t failed=()
  rm -f "$out"/logs/status_*
  for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    { rc=0; "$@" "$t" || rc=$?; echo "$rc" >"$out/logs/status_$t"; } &
  done
  wait
  for t in "${targets[@]}"; do
    [ "$(cat "$out/logs/status_$t" 2>/dev/null)" = 0 ] || failed+=("$t")
  done
  echo "${failed[*]}"
}

build_one() {
  # shellcheck disable=SC2086
  clang++ "${flags[@]}" ${sources[$1]} "${libs[@]}" -o "$out/bin/fuzz_$1" >"$out/logs/build_$1.log" 2>&1
}

fuzz_one() {
  local t=$1
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  # New inputs go to the first directory; -timeout is per input, in seconds.
  "$out/bin/fuzz_$t" -max_total_time="$seconds" -max_len="${max_len[$t]:-4096}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
    "$out/corpus/$t" "tests/fuzz/corpus/$t" >"$out/logs/fuzz_$t.log" 2>&1
}

start=$SECONDS
echo "== fuzz: building ${targets[*]} with clang libFuzzer"
failed=$(parallel build_one)
if [ -n "$failed" ]; then
  for t in $failed; do echo "fuzz: build of $t failed:"; cat "$out/logs/build_$t.log"; done
  exit 1
fi
echo "== fuzz: running each target for ${seconds}s, $jobs at a time (built in $((SECONDS - start))s)"
failed=$(parallel fuzz_one)
for t in "${targets[@]}"; do
  line=$(grep -E '^(stat::number_of_executed_units|Done [0-9]+ runs)' "$out/logs/fuzz_$t.log" | tail -1 || true)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$out/logs/fuzz_$t.log" | tail -1 || true)
  echo "fuzz: $t: ${line:-no stats} ${cov}"
done
if [ -n "$failed" ]; then
  for t in $failed; do
    echo "fuzz: $t FAILED (log $out/logs/fuzz_$t.log, reproducers in $out/artifacts/$t/):"
    grep -E -A40 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error|fuzz property failed|ALARM' \
      "$out/logs/fuzz_$t.log" | head -60 || tail -40 "$out/logs/fuzz_$t.log"
    ls -l "$out/artifacts/$t/"
  done
  exit 1
fi
echo "== fuzz: ${#targets[@]} targets, no failure, $((SECONDS - start))s"
