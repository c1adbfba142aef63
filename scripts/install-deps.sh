#!/usr/bin/env bash
# Installs everything Sluice needs to build and test, from Debian 12 packages only.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  liburing-dev libsimdjson-dev libxxhash-dev
  libconcurrentqueue-dev libreaderwriterqueue-dev
  libtomlplusplus-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  librdkafka-dev kcat
  redis-server redis-tools
  libpq-dev postgresql
  prometheus
  netcat-openbsd python3 curl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
