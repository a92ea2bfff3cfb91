#!/usr/bin/env bash
# Installs the build tree into a scratch prefix and uses the installed package from a clean
# environment: braid (a one-rank AllReduce) and, if built, braid.torch. libbraid must be found
# through the extensions' relative RPATH, so no LD_LIBRARY_PATH is set.
set -euo pipefail
build=$1 python=$2 pydir=$3 with_torch=$4
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
cd "$prefix"
env -u LD_LIBRARY_PATH PYTHONPATH="$prefix/$pydir" "$python" - "$with_torch" "$prefix" <<'PY'
import sys
import numpy as np
import braid
assert braid.__file__.startswith(sys.argv[2]), braid.__file__
comm = braid.Comm(1, braid.get_unique_id(), 0)
x = np.arange(5, dtype=np.float64)
comm.all_reduce(x)
assert list(x) == [0, 1, 2, 3, 4]
if sys.argv[1] == "ON":
    import braid.torch
    assert braid.torch.ProcessGroupBraid
print("installed package ok:", braid.__file__)
PY
