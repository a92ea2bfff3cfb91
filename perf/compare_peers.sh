#!/usr/bin/env bash
# compare_peers.sh: Braid's allreduce_perf against Open MPI's MPI_Allreduce over TCP loopback, in
# one run, and the ratios (docs/performance.md records the figures).
#
#   perf/compare_peers.sh               2 ranks, float32 sum, 8 B .. 128 MiB, 3 repetitions
#   NP=4 REPS=1 perf/compare_peers.sh   other rank count / fewer repetitions
#
# Environment: NP (ranks, 2), REPS (whole-sweep repetitions, 3; the table shows medians),
# MAX_BYTES (largest size, 128M), BUILD_DIR (Braid build tree, default build/; built if the
# tools are missing), KEEP (directory to keep the raw outputs in).
# Both sides: out-of-place, blocking calls (allreduce_perf -z 1, like MPI_Allreduce), same
# sizes, same warmup/iteration counts per size band, time per operation = the maximum over ranks
# (allreduce_perf -a 3), busbw = size/time * 2(n-1)/n from the median time. Run it on an idle
# machine: on 2 cores anything else running swamps the small-size latencies.
# Open MPI: --mca pml ob1 --mca btl tcp,self, on lo. Braid: BRAID_TRANSPORT=tcp under braidrun.
#
#   PEER=shm SIZES="8 512K 128M" REPS=5 perf/compare_peers.sh
# compares the shared-memory paths instead: Braid's shm transport (BRAID_TRANSPORT=shm) against
# Open MPI's default on one host (btl vader,self: shared memory with CMA single copy). SIZES
# (any mode) measures just those sizes instead of the 8 B .. MAX_BYTES sweep.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
NP=${NP:-2}
PEER=${PEER:-tcp}
SIZES=${SIZES:-}
REPS=${REPS:-3}
MAX_BYTES=${MAX_BYTES:-128M}
BUILD_DIR=${BUILD_DIR:-$repo/build}
TMO=900  # per-launch safety timeout (s)

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
bytes() { numfmt --from=iec "$1"; }

if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null; then
  if [ -x "$repo/scripts/install-deps.sh" ]; then
    log "Open MPI not found; installing the peer dependencies"
    "$repo/scripts/install-deps.sh" --peers
  else
    echo "compare_peers.sh: needs Open MPI: apt-get install -y openmpi-bin libopenmpi-dev" >&2
    exit 2
  fi
fi
command -v python3 >/dev/null || { echo "compare_peers.sh: needs python3" >&2; exit 2; }

if [ ! -x "$BUILD_DIR/perf/allreduce_perf" ] || [ ! -x "$BUILD_DIR/perf/braidrun" ]; then
  log "building Braid's perf tools in $BUILD_DIR"
  cmake -S "$repo" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target allreduce_perf braidrun >/dev/null
fi
braidrun=$BUILD_DIR/perf/braidrun
allreduce_perf=$BUILD_DIR/perf/allreduce_perf

out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$out"' EXIT
mpicc -O2 -Wall -o "$out/ompi_allreduce_bench" "$here/ompi_allreduce_bench.c"

# Size bands: many iterations where an operation takes microseconds, few where it takes 100 ms.
bands=("8 64K 200 20" "128K 4M 40 5" "8M $MAX_BYTES 8 2")
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$NP"
        --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
braid_transport=tcp
if [ "$PEER" = shm ]; then
  mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$NP"
          --mca pml ob1 --mca btl vader,self --mca oob_tcp_if_include lo)
  braid_transport=shm
fi
if [ -n "$SIZES" ]; then
  bands=()
  for size in $SIZES; do
    b=$(bytes "$size")
    if [ "$b" -le 65536 ]; then bands+=("$size $size 2000 200")
    elif [ "$b" -le 4194304 ]; then bands+=("$size $size 200 20")
    else bands+=("$size $size 10 2"); fi
  done
fi

{
  echo "date: $(date -Is)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "open mpi: $(mpirun --version 2>&1 | head -1)"
  echo "braid: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$out/versions.txt"

for rep in $(seq 1 "$REPS"); do
  for band in "${bands[@]}"; do
    read -r lo hi iters warm <<< "$band"
    # Clip the bands to MAX_BYTES.
    [ "$(bytes "$lo")" -le "$(bytes "$MAX_BYTES")" ] || continue
    [ "$(bytes "$hi")" -le "$(bytes "$MAX_BYTES")" ] || hi=$MAX_BYTES
    log "rep $rep/$REPS: Braid $lo..$hi"
    BRAID_TRANSPORT=$braid_transport timeout "$TMO" "$braidrun" -n "$NP" "$allreduce_perf" \
      -b "$lo" -e "$hi" -f 2 -n "$iters" -w "$warm" -d float -o sum -a 3 -c 1 -z 1 \
      >> "$out/braid_rep$rep.txt" 2>> "$out/braid.err" || { log "Braid FAILED"; cat "$out/braid.err" >&2; exit 1; }
    log "rep $rep/$REPS: Open MPI $lo..$hi"
    timeout "$TMO" "${mpirun[@]}" "$out/ompi_allreduce_bench" \
      -b "$lo" -e "$hi" -f 2 -n "$iters" -w "$warm" -c 1 \
      >> "$out/ompi_rep$rep.txt" 2>> "$out/ompi.err" || { log "Open MPI FAILED"; cat "$out/ompi.err" >&2; exit 1; }
  done
done

NP=$NP REPS=$REPS PEER=$PEER python3 - "$out" <<'EOF'
import glob, os, statistics, sys
out = sys.argv[1]
def load(pattern, tcol):
    data = {}  # size -> [times in us]
    for path in sorted(glob.glob(os.path.join(out, pattern))):
        for line in open(path):
            f = line.split()
            if not f or line.startswith('#'):
                continue
            data.setdefault(int(f[0]), []).append(float(f[tcol]))
    return data
# allreduce_perf: size count type redop root | time algbw busbw #wrong (out-of-place) | in-place
braid = load('braid_rep*.txt', 5)
# ompi_allreduce_bench: size count time algbw busbw #wrong
ompi = load('ompi_rep*.txt', 2)
n = int(os.environ['NP'])
def busbw(size, us):
    return size / us / 1e3 * 2 * (n - 1) / n if us > 0 else 0.0
def human(n):
    for unit, div in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if n >= div and n % div == 0:
            return f'{n // div} {unit}'
    return f'{n} B'
med = statistics.median
where = 'shared memory (Braid shm, Open MPI vader)' if os.environ['PEER'] == 'shm' else 'TCP loopback'
print(f"## Allreduce float32 sum, {os.environ['NP']} ranks, {where} "
      f"(medians of {os.environ['REPS']} runs; time = max over ranks)\n")
print('| size | Braid time (us) | Braid busbw (GB/s) | Open MPI time (us) | Open MPI busbw (GB/s) '
      '| time ratio OMPI/Braid | busbw ratio Braid/OMPI |')
print('|---:|---:|---:|---:|---:|---:|---:|')
for size in sorted(set(braid) & set(ompi)):
    bt, ot = med(braid[size]), med(ompi[size])
    bb, ob = busbw(size, bt), busbw(size, ot)
    tr = f'{ot / bt:.2f}x' if bt > 0 else '-'
    br = f'{bb / ob:.2f}x' if ob > 0 else '-'
    print(f'| {human(size)} | {bt:.2f} | {bb:.4g} | {ot:.2f} | {ob:.4g} | {tr} | {br} |')
print()
if os.environ['PEER'] == 'shm':
    print('Ratios above 1 favour Braid. Targets (issue 6): time ratio >= 1 at 8 B, '
          'busbw ratio >= 1.5 at 128 MiB.')
else:
    print('Ratios above 1 favour Braid. Targets (issue 2): time ratio >= 1 at 8 B, '
          'busbw ratio >= 2 at 128 MiB.')
EOF
echo
cat "$out/versions.txt"
[ -n "${KEEP:-}" ] && echo "raw outputs: $out"
exit 0
