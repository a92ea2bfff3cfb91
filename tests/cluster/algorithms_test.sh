#!/usr/bin/env bash
# Every collective algorithm, forced with BRAID_ALGO, across namespace hosts with 1 to 3 ranks
# per host, results checked exactly by the perf tools' -c 1 (AllReduce: every datatype and op);
# plus the selector's own choice, which is the hierarchical AllReduce when ranks share hosts.
# Correctness only: nothing here is timed. Usage:
#   algorithms_test.sh PERF_DIR HOSTSxRPH...        e.g. ... 3x3 4x2
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
perf=$1; shift

# BRAID_ALGO values: together they force every algorithm of every collective once.
SETS=(
  "allreduce:ring,allgather:ring,reducescatter:ring,broadcast:chain"
  "allreduce:recursive_doubling,allgather:bruck,reducescatter:recursive_halving,broadcast:tree"
  "allreduce:rabenseifner,allgather:recursive_doubling"
  "allreduce:tree"
  "auto"
)

# The algorithm a set forces for a tool's collective ("" = none: that run would repeat another).
forced() {  # set tool
  local name=${2%_perf}; name=${name//_/}
  [[ $1 == auto ]] && { [[ $name == allreduce ]] && echo auto; return; }
  tr ',' '\n' <<<"$1" | sed -n "s/^$name://p"
}

run_one() {  # hosts rph
  local hosts=$1 rph=$2 failed=0 set tool algo
  cluster_up "$hosts" || return $?
  for set in "${SETS[@]}"; do
    for tool in allreduce_perf allgather_perf reduce_scatter_perf broadcast_perf; do
      algo=$(forced "$set" "$tool")
      [[ -z $algo ]] && continue
      local args=(-b 1 -e 100K -f 31 -n 1 -w 0 -c 1) rc=0
      [[ $tool == allreduce_perf ]] && args+=(-d all -o all)
      [[ $tool == broadcast_perf ]] && args+=(-r $((hosts * rph - 1)))
      # auto with ranks sharing hosts: TRACE shows every rank taking the hierarchical path.
      ( unset BRAID_ALGO; [[ $set != auto ]] && export BRAID_ALGO=$set
        [[ $set == auto && $rph -gt 1 ]] && export BRAID_DEBUG=TRACE
        cluster_run "$rph" "$perf/$tool" "${args[@]}" ) || rc=$?
      local out=$CLUSTER_LOG seen
      seen=$(grep -c "Rank .* on *h[0-9]" "$out")
      # The run must have used the forced algorithm (rank 0 lists its choice per size), and
      # auto the hierarchical AllReduce on every rank when ranks share hosts.
      local used=1 r
      [[ $algo != auto ]] && ! grep -q "^\[r0 h1\] # .* B: $algo" "$out" && used=0
      if [[ $algo == auto && $rph -gt 1 ]]; then
        for ((r = 0; r < hosts * rph; r++)); do
          grep -q "^\[r$r h[0-9]*\] .*hierarchical over $hosts hosts" "$out" || used=0
        done
      fi
      if [[ $rc != 0 ]] || ! grep -q "Out of bounds values : 0 OK" "$out" ||
         [[ $seen != $((hosts * rph)) || $used != 1 ]]; then
        echo "FAILED: $tool $algo on $hosts hosts x $rph ranks (rc $rc, $seen rank lines, used $used)"
        tail -n 30 "$out"
        failed=1
      else
        echo "ok: $tool $algo on $hosts hosts x $rph ranks"
      fi
    done
  done
  cluster_down
  return $failed
}

cluster_each_topology "cluster algorithms" run_one "$@"
