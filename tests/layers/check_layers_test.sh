#!/usr/bin/env bash
# The layering check (cmake/check_layers.cmake) passes on the real tree and
# fails, naming the file and the rule, on a copy with one violation planted
# per layer. Usage: check_layers_test.sh SOURCE_DIR
set -euo pipefail
src=$1
check=$src/cmake/check_layers.cmake
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake -DSOURCE_DIR="$src" -P "$check" || { echo "FAIL: the real tree does not pass"; exit 1; }

plant() {  # layer file include -> must fail and name them
  local layer=$1 file=$2 include=$3
  rm -rf "$tmp/tree" && mkdir -p "$tmp/tree"
  for d in core operators io dataflow; do cp -r "$src/$d" "$tmp/tree/$d"; done
  mkdir -p "$(dirname "$tmp/tree/$layer/$file")"
  printf '#include "%s"\n' "$include" > "$tmp/tree/$layer/$file"
  if out=$(cmake -DSOURCE_DIR="$tmp/tree" -P "$check" 2>&1); then
    echo "FAIL: $layer/$file including $include was accepted"; exit 1
  fi
  grep -q "$layer/$file: $layer/ may not include ${include%%/*}/" <<<"$out" ||
    { echo "FAIL: the message does not name the violation:"; echo "$out"; exit 1; }
  echo "ok: $layer/$file including $include refused"
}
plant core planted.h "io/net.h"
plant core planted.cc "operators/event.h"
plant operators planted.cc "io/async_writer.h"
plant operators sub/planted.h "dataflow/engine.h"
plant io planted.h "dataflow/shard.h"
plant dataflow planted.cc "tools/gen/load.h"
echo "PASS"
