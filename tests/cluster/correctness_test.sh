#!/usr/bin/env bash
# Collectives across namespace hosts, every result checked exactly by the perf tools' -c 1
# (every datatype and op for AllReduce). Usage:
#   correctness_test.sh PERF_DIR direct|mpirun HOSTSxRPH...   e.g. ... direct 2x1 3x2 8x3
# CLUSTER_TRANSPORT picks the transport (default: Braid's choice, tcp here).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
perf=$1 mode=$2; shift 2

run_one() {  # hosts rph
  local hosts=$1 rph=$2 tool args failed=0
  cluster_up "$hosts" || return $?
  for tool in allreduce_perf allgather_perf reduce_scatter_perf broadcast_perf; do
    args=(-b 1 -e 300K -f 7 -n 1 -w 0 -c 1)
    [[ $tool == allreduce_perf ]] && args+=(-d all -o all)
    [[ $tool == broadcast_perf ]] && args+=(-r $((hosts * rph - 1)))
    local out="$CLUSTER_DIR/$tool.out" rc=0
    if [[ $mode == mpirun ]]; then
      cluster_mpirun "$rph" "$perf/$tool" "${args[@]}" >"$out" 2>&1 || rc=$?
    else
      cluster_run "$rph" "$perf/$tool" "${args[@]}" || rc=$?
      cp "$CLUSTER_LOG" "$out"
    fi
    # Every host must appear among the ranks: traffic really crossed namespaces.
    local seen; seen=$(grep -c "Rank .* on *h[0-9]" "$out")
    # A forced transport must be the one every rank reports using.
    local other=0
    if [[ -n ${CLUSTER_TRANSPORT:-} ]]; then
      other=$(grep "Rank .* on *h[0-9]" "$out" | grep -vc "transport $CLUSTER_TRANSPORT\b")
    fi
    if [[ $rc != 0 ]] || ! grep -q "Out of bounds values : 0 OK" "$out" ||
       [[ $seen != $((hosts * rph)) ]] || [[ $other != 0 ]]; then
      echo "FAILED: $tool on $hosts hosts x $rph ranks ($mode, rc $rc, $seen rank lines," \
        "$other not on transport ${CLUSTER_TRANSPORT:-any})"
      tail -n 30 "$out"
      failed=1
    else
      echo "ok: $tool on $hosts hosts x $rph ranks ($mode)"
    fi
  done
  cluster_down
  return $failed
}

cluster_each_topology "cluster correctness" run_one "$@"
