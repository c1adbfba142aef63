#!/usr/bin/env bash
# Installs what Sluice's Kafka test peers need beyond Debian packages (librdkafka-dev
# and kcat come from scripts/install-deps.sh): the kafkajs producer's npm packages,
# exactly as pinned in tests/peers/kafkajs/package-lock.json.
#
# Idempotent and quiet: skips `npm ci` when node_modules already matches the lock
# file. Installs Debian's nodejs and npm when they are missing; exits non-zero when
# anything cannot be installed (the tests need every peer).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=tests/peers/kafkajs
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "kafka-peers: installing Debian's nodejs and npm"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

stamp="$dir/node_modules/.sluice-package-lock.json"
if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json" && [ -d "$dir/node_modules/kafkajs" ]; then
  echo "kafka-peers: kafkajs peer up to date"
  exit 0
fi

if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
  echo "kafka-peers: npm ci failed in $dir" >&2
  exit 1
fi
cp "$dir/package-lock.json" "$stamp"
echo "kafka-peers: installed $(cd "$dir" && node -p "'kafkajs ' + require('kafkajs/package.json').version")"
