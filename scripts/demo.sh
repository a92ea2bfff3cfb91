#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs an allreduce_perf sweep (8 B to 128 MiB,
# float32 sum, results checked) over 4 local ranks on the best transport present.
# Override with NP=2 or extra allreduce_perf flags: scripts/demo.sh -e 1G
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BRAID_BUILD_DIR:-$root/build}
"$root/scripts/build.sh"
exec "$build/perf/braidrun" -n "${NP:-4}" -- "$build/perf/allreduce_perf" -b 8 -e 128M -f 2 -c 1 "$@"
