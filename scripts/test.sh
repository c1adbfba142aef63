#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test twice: the Release build,
# then a Debug build with AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/kafka-peers.sh

jobs=$(nproc)
echo "== Release build and tests"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"

echo "== ASan+UBSan build and tests"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs"

echo "== Coverage-guided fuzzing (clang libFuzzer + ASan/UBSan), 20 s per target"
./scripts/fuzz.sh all 20
