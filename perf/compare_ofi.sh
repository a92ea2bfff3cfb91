#!/usr/bin/env bash
# compare_ofi.sh: Braid over libfabric (the ofi transport, on tcp;ofi_rxm and on shm) against
# Braid over its own io_uring TCP transport and Open MPI's MPI_Allreduce, in one run, with
# ratios (docs/performance.md records the figures). Same method as compare_peers.sh.
#
#   perf/compare_ofi.sh                 2 ranks, float32 sum, 8 B .. 16 MiB, 3 repetitions
#   NP=3 REPS=5 MAX_BYTES=64M perf/compare_ofi.sh
#
# Environment: NP (ranks, 2), REPS (whole-sweep repetitions, 3; the table shows medians),
# MAX_BYTES (largest size, 16M), BUILD_DIR (default build/; built if the tools are missing),
# KEEP (directory to keep the raw outputs in).
# Every side: out-of-place, blocking calls (-z 1), same sizes and iteration counts per size
# band, time per operation = the maximum over ranks (-a 3). Open MPI: --mca pml ob1 --mca btl
# tcp,self on lo. Run it on an idle machine; on 2 shared cores the small sizes are noise.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
NP=${NP:-2}
REPS=${REPS:-3}
MAX_BYTES=${MAX_BYTES:-16M}
BUILD_DIR=${BUILD_DIR:-$repo/build}
TMO=900

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
bytes() { numfmt --from=iec "$1"; }

for tool in mpicc mpirun fi_info python3; do
  command -v "$tool" >/dev/null || {
    echo "compare_ofi.sh: needs $tool (scripts/install-deps.sh --peers installs Open MPI;" \
         "libfabric-bin has fi_info)" >&2; exit 2; }
done
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

bands=("8 64K 200 20" "128K 4M 40 5" "8M 128M 8 2")
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$NP"
        --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
# name -> environment for Braid.
declare -A variants=(
  [uring]="BRAID_TRANSPORT=tcp"
  [ofi_tcp]="BRAID_TRANSPORT=ofi BRAID_OFI_PROVIDER=tcp"
  [ofi_shm]="BRAID_TRANSPORT=ofi BRAID_OFI_PROVIDER=shm"
)

{
  echo "date: $(date -Is)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "open mpi: $(mpirun --version 2>&1 | head -1)"
  echo "libfabric: $(fi_info --version 2>&1 | grep -m1 libfabric)"
  echo "braid: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$out/versions.txt"

for rep in $(seq 1 "$REPS"); do
  for band in "${bands[@]}"; do
    read -r lo hi iters warm <<< "$band"
    [ "$(bytes "$lo")" -le "$(bytes "$MAX_BYTES")" ] || continue
    [ "$(bytes "$hi")" -le "$(bytes "$MAX_BYTES")" ] || hi=$MAX_BYTES
    for name in uring ofi_tcp ofi_shm; do
      log "rep $rep/$REPS: Braid $name $lo..$hi"
      env ${variants[$name]} timeout "$TMO" "$braidrun" -n "$NP" "$allreduce_perf" \
        -b "$lo" -e "$hi" -f 2 -n "$iters" -w "$warm" -d float -o sum -a 3 -c 1 -z 1 \
        >> "$out/${name}_rep$rep.txt" 2>> "$out/$name.err" ||
        { log "Braid $name FAILED"; cat "$out/$name.err" >&2; exit 1; }
    done
    log "rep $rep/$REPS: Open MPI $lo..$hi"
    timeout "$TMO" "${mpirun[@]}" "$out/ompi_allreduce_bench" \
      -b "$lo" -e "$hi" -f 2 -n "$iters" -w "$warm" -c 1 \
      >> "$out/ompi_rep$rep.txt" 2>> "$out/ompi.err" || { log "Open MPI FAILED"; cat "$out/ompi.err" >&2; exit 1; }
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/versions.txt"

NP=$NP REPS=$REPS python3 - "$out" <<'PY'
import glob, os, statistics, sys
out = sys.argv[1]
def load(pattern, tcol):
    data = {}
    for path in sorted(glob.glob(os.path.join(out, pattern))):
        for line in open(path):
            f = line.split()
            if not f or line.startswith('#'):
                continue
            data.setdefault(int(f[0]), []).append(float(f[tcol]))
    return {size: statistics.median(times) for size, times in data.items()}
# allreduce_perf: size count type redop root | time ... ; ompi_allreduce_bench: size count time ...
sides = {name: load(f'{name}_rep*.txt', 5) for name in ('uring', 'ofi_tcp', 'ofi_shm')}
sides['ompi'] = load('ompi_rep*.txt', 2)
def human(n):
    for unit, div in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if n >= div and n % div == 0:
            return f'{n // div} {unit}'
    return f'{n} B'
def ratio(a, b):
    return f'{a / b:.2f}x' if b > 0 else '-'
print(f"## Allreduce float32 sum, {os.environ['NP']} ranks, one host: Braid over ofi vs io_uring "
      f"TCP vs Open MPI (median time in us of {os.environ['REPS']} runs; max over ranks)\n")
print('| size | Braid io_uring tcp | Braid ofi tcp;ofi_rxm | Braid ofi shm | Open MPI tcp '
      '| uring/ofi-tcp | uring/ofi-shm | OMPI/ofi-tcp |')
print('|---:|---:|---:|---:|---:|---:|---:|---:|')
common = set.intersection(*(set(s) for s in sides.values()))
for size in sorted(common):
    u, t, s, o = (sides[k][size] for k in ('uring', 'ofi_tcp', 'ofi_shm', 'ompi'))
    print(f'| {human(size)} | {u:.1f} | {t:.1f} | {s:.1f} | {o:.1f} | {ratio(u, t)} '
          f'| {ratio(u, s)} | {ratio(o, t)} |')
print()
print('Time ratios: above 1 means the ofi side is faster than the one it is compared with.')
PY
echo
cat "$out/versions.txt"
[ -n "${KEEP:-}" ] && echo "raw outputs: $out"
exit 0
