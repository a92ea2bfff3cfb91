#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite with CTest.
# Prints how many tests ran and passed. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BRAID_BUILD_DIR:-$root/build}
"$root/scripts/build.sh"
cd "$build"
# Multi-process tests fork up to 8 ranks each; running them one at a time keeps 2-core
# machines from timing out.
ctest --output-on-failure --timeout 900 "$@"
