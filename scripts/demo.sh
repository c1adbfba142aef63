#!/usr/bin/env bash
# Installs dependencies, builds the Release binary and runs the demo pipeline
# (examples/demo.toml): generated sales events, 5-minute windows on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
exec ./build/release/tools/sluice run examples/demo.toml
