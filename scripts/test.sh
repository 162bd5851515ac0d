#!/usr/bin/env bash
# Builds everything and runs every test. BUILD_DIR and extra cmake arguments can be given:
#   BUILD_DIR=build-asan scripts/test.sh -DSOCK_SANITIZE=address,undefined
# CTEST_ARGS is passed to ctest, e.g. to run a subset: CTEST_ARGS="-LE unit" (all but unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOCK_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
# shellcheck disable=SC2086  # CTEST_ARGS is a list of arguments
ctest --test-dir "$build" -j"$(nproc)" --output-on-failure --timeout 120 ${CTEST_ARGS:-}
