#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the whole suite with CTest, then
# runs it again under AddressSanitizer+UndefinedBehaviorSanitizer and ThreadSanitizer (the
# multi-process tests at 1-3 ranks there, since sanitized ranks are 5-20x slower on 2 cores).
# Prints how many tests ran and passed in each pass. BRAID_TEST_SANITIZERS=0 skips the
# sanitizer passes; extra arguments go to every ctest call (e.g. -L unit).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BRAID_BUILD_DIR:-$root/build}

echo "== tests: regular build"
"$root/scripts/build.sh"
# Two at a time: most multi-rank tests sleep on their transports; the namespace-cluster and
# QEMU tests are RUN_SERIAL. cluster_long (every hosts x ranks layout, ~5 min) is opt-in:
# ctest -L cluster_long.
(cd "$build" && ctest --output-on-failure --timeout 900 -j2 -LE cluster_long "$@")

if [[ "${BRAID_TEST_FUZZ:-1}" != 0 ]]; then
  # libFuzzer targets of every wire decoder, each for BRAID_FUZZ_SECONDS (clang build).
  echo "== tests: libFuzzer"
  cmake -S "$root" -B "$build-fuzz" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DBRAID_FUZZ=ON -DBRAID_BUILD_PERF=OFF -DBRAID_FUZZ_SECONDS="${BRAID_FUZZ_SECONDS:-15}" >/dev/null
  cmake --build "$build-fuzz" -j "$(nproc)" --target fuzz_tcp_wire fuzz_bootstrap_wire \
    fuzz_collective_signature
  (cd "$build-fuzz" && ctest --output-on-failure --timeout 900 -L fuzz)
fi

if [[ "${BRAID_TEST_SANITIZERS:-1}" != 0 ]]; then
  # The transport-layout (tcp:, mixed:) and forced-algorithm (algo_) repeats of the collective
  # suite run in the regular pass only: the code they add is covered by conformance and the
  # node-aware and unprefixed suites here.
  sanitized_subset=(-L 'unit|conformance|multiproc' -E '5ranks|8ranks|^tcp:|^mixed:|^algo_')
  echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer"
  BRAID_BUILD_DIR="$build-asan" "$root/scripts/build.sh" -DBRAID_SANITIZE=address,undefined \
    -DBRAID_BUILD_PERF=OFF
  (cd "$build-asan" && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --output-on-failure --timeout 900 -j2 "${sanitized_subset[@]}" "$@")
  echo "== tests: ThreadSanitizer"
  BRAID_BUILD_DIR="$build-tsan" "$root/scripts/build.sh" -DBRAID_SANITIZE=thread \
    -DBRAID_BUILD_PERF=OFF
  (cd "$build-tsan" && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --output-on-failure --timeout 900 -j2 "${sanitized_subset[@]}" "$@")
fi
