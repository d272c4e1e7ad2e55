#!/usr/bin/env bash
# The test command: installs what is missing, builds (C++17, warnings as errors), runs every
# ctest test (labels fast, fuzz and slow), then builds the torch-free core with clang under
# AddressSanitizer + UBSan and runs its tests and every libFuzzer harness over its seed corpus
# (tests/fuzz), then checks that the project also compiles as C++20.
# Usage: scripts/test.sh [extra ctest args]      e.g. scripts/test.sh -L fast
# IFLAME_SKIP_SANITIZE=1 / IFLAME_SKIP_CXX20=1 leave out those two stages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
JOBS=${JOBS:-$(nproc)}
export OMP_WAIT_POLICY=PASSIVE

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DIFLAME_WERROR=ON >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS" "$@"

if [ "${IFLAME_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== ASan + UBSan: the core's tests and the fuzz harnesses' corpora"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIFLAME_FUZZ=ON \
    -DIFLAME_WERROR=ON >/dev/null
  cmake --build build-fuzz -j "$JOBS"
  ctest --test-dir build-fuzz --output-on-failure -j "$JOBS" -L 'fast|fuzz'
fi

if [ "${IFLAME_SKIP_CXX20:-0}" != "1" ]; then
  echo "== C++20 build check"
  cmake -S . -B build-cxx20 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD=20 -DIFLAME_WERROR=ON \
    -DIFLAME_BUILD_TESTS=OFF >/dev/null
  cmake --build build-cxx20 -j "$JOBS"
  echo "C++20 build: ok"
fi
