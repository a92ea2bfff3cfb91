#!/usr/bin/env bash
# bound_sweep.sh: Braid's ring AllReduce on shaped namespace hosts against the physical bound
# and Open MPI, in one run. Every host's egress is shaped to RATE (tbf); a ring AllReduce of S
# bytes over p hosts must move 2(p-1)/p * S bytes out of every host, so it cannot take less than
#   bound(S) = 2(p-1)/p * S / B.
# Printed per size: the median time of Braid and of Open MPI (--mca btl tcp,self, launched
# through the namespace rsh agent) and bound/time, i.e. the fraction of the bound's bandwidth
# each reaches (1.0 = at the bound). Needs root (network namespaces).
#
#   perf/bound_sweep.sh                   4 and 8 hosts, 1 gbit, 1 MiB .. 256 MiB, 3 repetitions
#   HOSTS="4" REPS=1 MAX_BYTES=64M perf/bound_sweep.sh
#
# Environment: HOSTS ("4 8"), RATE (1gbit; tc syntax), REPS (3), MIN_BYTES (1M), MAX_BYTES
# (256M), ITERS (3 timed iterations per size, 1 warmup), BUILD_DIR (build/), KEEP (directory
# for raw outputs), TABLE_FROM (print the table of an earlier KEEP directory, run nothing),
# CLUSTER_MTU (link MTU), BRAID_* variables pass through to Braid's ranks.
# Both sides: float32 sum, out-of-place, blocking, time per call = max over ranks.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
source "$repo/tests/cluster/lib.sh"
HOSTS=${HOSTS:-"4 8"}
RATE=${RATE:-1gbit}
REPS=${REPS:-3}
MIN_BYTES=${MIN_BYTES:-1M}
MAX_BYTES=${MAX_BYTES:-256M}
ITERS=${ITERS:-3}
BUILD_DIR=${BUILD_DIR:-$repo/build}
export CLUSTER_TIMEOUT=${CLUSTER_TIMEOUT:-1800}

rate_bytes_per_s() {  # "1gbit" -> 125000000 (tc's units: bit = bits/s, k/m/g = 1000s)
  python3 -c '
import re, sys
m = re.fullmatch(r"([0-9.]+)([kmg]?)(bit|bps)", sys.argv[1].lower())
v = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]
print(v / 8 if m.group(3) == "bit" else v)' "$1"
}

out=${TABLE_FROM:-${KEEP:-$(mktemp -d /tmp/bound_sweep.XXXX)}}
mkdir -p "$out"
[[ -n ${TABLE_FROM:-} ]] && HOSTS=$(ls "$out" | sed -n 's/^braid\.p\([0-9]*\)\.r1$/\1/p' | sort -n | tr '\n' ' ')
[[ -n ${TABLE_FROM:-} ]] && REPS=$(ls "$out" | grep -c "^braid\.p${HOSTS%% *}\.r")
[[ -n ${TABLE_FROM:-} ]] || mpicc -O2 -Wall -o "$out/ompi_allreduce_bench" "$here/ompi_allreduce_bench.c" || exit 2
B=$(rate_bytes_per_s "$RATE")
export CLUSTER_KEEP_LOGS=0

for p in $HOSTS; do
  [[ -n ${TABLE_FROM:-} ]] && break  # TABLE_FROM=DIR: only print the table of an earlier run
  cluster_up "$p" "$RATE" || exit $?
  for ((rep = 1; rep <= REPS; rep++)); do
    echo "[$(date +%H:%M:%S)] $p hosts, repetition $rep: Braid" >&2
    cluster_run 1 "$BUILD_DIR/perf/allreduce_perf" -b "$MIN_BYTES" -e "$MAX_BYTES" -f 2 \
      -n "$ITERS" -w 1 -c 0 -z 1 -a 3 -d float -o sum || { cat "$CLUSTER_LOG"; exit 1; }
    grep '^\[r0 ' "$CLUSTER_LOG" | sed 's/^\[r0 h1\] //' >"$out/braid.p$p.r$rep"
    echo "[$(date +%H:%M:%S)] $p hosts, repetition $rep: Open MPI" >&2
    cluster_mpirun 1 --bind-to none --mca pml ob1 "$out/ompi_allreduce_bench" \
      -b "$MIN_BYTES" -e "$MAX_BYTES" -f 2 -n "$ITERS" -w 1 -c 0 >"$out/ompi.p$p.r$rep" 2>&1
    # mpirun sometimes hangs in its PMIx teardown after a complete run: the table is what counts.
    grep -q "Out of bounds values : 0 OK" "$out/ompi.p$p.r$rep" || { cat "$out/ompi.p$p.r$rep"; exit 1; }
  done
  cluster_down
done

python3 - "$out" "$B" "$RATE" "$REPS" "${CLUSTER_MTU:-1500}" $HOSTS <<'PY'
import glob, statistics, sys
out, B, rate, reps, mtu, hosts = (sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4]),
                                  int(sys.argv[5]), sys.argv[6:])
def times(path, col):  # size -> time (us) from a table's data rows
  t = {}
  for line in open(path):
    f = line.split()
    if not f or f[0].startswith('#') or not f[0].isdigit(): continue
    t[int(f[0])] = float(f[col])
  return t
print(f"# AllReduce float32 sum, every host's egress shaped to {rate} (tbf), median of {reps}")
print("# fraction = bound / time, bound = 2(p-1)/p * S / B: 1.00 is the physical limit")
# tbf charges whole frames: each TCP segment of mtu-52 payload bytes (IPv4 + TCP with
# timestamps) costs mtu+14 bytes of B, and the ACKs of the reverse flow share the same egress.
print(f"# (TCP cannot exceed {(mtu - 52) / (mtu + 14):.3f} of B at MTU {mtu}: frame headers; "
      "ACKs take ~1-2% more)")
print(f"# {'hosts':>5} {'size':>10} {'bound(ms)':>10} {'braid(ms)':>10} {'braid':>6} "
      f"{'ompi(ms)':>10} {'ompi':>6} {'braid/ompi':>10}")
for p in hosts:
  pi = int(p)
  braid = [times(f, 5) for f in sorted(glob.glob(f"{out}/braid.p{p}.r*"))]
  ompi = [times(f, 2) for f in sorted(glob.glob(f"{out}/ompi.p{p}.r*"))]
  for size in sorted(braid[0]):
    bound = 2 * (pi - 1) / pi * size / B * 1e3
    b = statistics.median(t[size] for t in braid) / 1e3
    o = statistics.median(t[size] for t in ompi if size in t) / 1e3
    print(f"  {pi:>5} {size / 2**20:>8.0f}Mi {bound:>10.1f} {b:>10.1f} {bound / b:>6.3f} "
          f"{o:>10.1f} {bound / o:>6.3f} {o / b:>9.2f}x")
PY
echo "# raw outputs: $out" >&2
