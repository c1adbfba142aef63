#!/usr/bin/env bash
# Coverage-guided fuzzing with clang's libFuzzer (+ASan/UBSan) for the
# decoders of outside bytes. Usage: scripts/fuzz.sh [TARGET] [SECONDS]
#   TARGET: framing | decoder | dead_letter | timestamp | kafka_response | kafka_record_batch |
#           all (default all)
# The config loader's target (tests/fuzz/config_fuzz.cc) is not built here:
# Debian's clang 14 cannot compile libstdc++ 12's <expected>; CI runs it
# through the mutation driver instead (ctest -L fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-all}
seconds=${2:-60}
if ! command -v clang++ >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
out=build/fuzz
mkdir -p "$out"
flags=(-std=c++2b -O1 -g -march=native -fsanitize=fuzzer,address,undefined -I.)
libs=(-lsimdjson -lxxhash -lz -lsnappy -llz4 -lzstd)
declare -A sources=(
  [framing]="tests/fuzz/framing_fuzz.cc"
  [decoder]="tests/fuzz/decoder_fuzz.cc operators/decoder.cc operators/json_text.cc core/timestamp.cc"
  [dead_letter]="tests/fuzz/dead_letter_fuzz.cc operators/dead_letter.cc operators/json_text.cc"
  [timestamp]="tests/fuzz/timestamp_fuzz.cc core/timestamp.cc"
  [kafka_response]="tests/fuzz/kafka_response_fuzz.cc io/kafka/protocol.cc"
  [kafka_record_batch]="tests/fuzz/kafka_record_batch_fuzz.cc io/kafka/crc32c.cc io/kafka/compression.cc io/kafka/record_batch.cc"
)
targets=("$target")
[ "$target" = all ] && targets=(framing decoder dead_letter timestamp kafka_response kafka_record_batch)
for t in "${targets[@]}"; do
  # shellcheck disable=SC2086
  clang++ "${flags[@]}" ${sources[$t]} "${libs[@]}" -o "$out/fuzz_$t"
  mkdir -p "$out/corpus_$t"
  "$out/fuzz_$t" -max_total_time="$seconds" -max_len=4096 "$out/corpus_$t" "tests/fuzz/corpus/$t"
done
