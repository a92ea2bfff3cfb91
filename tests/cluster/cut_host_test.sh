#!/usr/bin/env bash
# Fault: one host's link is cut (ip link set eth0 down) in the middle of a stream of
# AllReduces. Every surviving rank must fail (not hang) within BRAID_TIMEOUT plus slack, and
# the rank that receives from the cut host (its ring successor) must name it. (Ranks further
# away see the failure second-hand, as their neighbour's shutdown: naming the root cause there
# is the reliability work's.) Usage: cut_host_test.sh PERF_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
perf=$1
hosts=4 cut=3 timeout_s=10
export BRAID_TIMEOUT=$timeout_s
cluster_up $hosts || exit $?
CLUSTER_TIMEOUT=240
cluster_run 1 "$perf/allreduce_perf" -b 4M -e 4M -n 100000 -w 1 -c 0 &
runner=$!
# Cut once the ranks are inside the benchmark loop (rank 0 printed the table header).
for ((i = 0; i < 600; i++)); do
  grep -q "(elements)" "$CLUSTER_LOG" 2>/dev/null && break
  sleep 0.1
done
sleep 1
cut_at=$(date +%s)
cluster_cut_host $cut
wait $runner
rc=$?
took=$(( $(date +%s) - cut_at ))
status=0
if [[ $rc == 0 ]]; then echo "FAILED: the job succeeded although h$cut was cut off"; status=1; fi
if (( took > timeout_s + 60 )); then
  echo "FAILED: survivors needed ${took}s to fail (BRAID_TIMEOUT ${timeout_s}s)"; status=1
fi
# The cut host's ring successor (rank `cut` on host h(cut+1) with one rank per host).
for r in $cut; do
  if ! grep "^\[r$r " "$CLUSTER_LOG" | grep -q "host h$cut"; then
    echo "FAILED: rank $r's error does not name host h$cut"; status=1
  fi
done
for ((r = 0; r < hosts; r++)); do
  if ! grep -q "^\[r$r .*exited with status" "$CLUSTER_LOG"; then
    echo "FAILED: rank $r did not fail"; status=1
  fi
done
echo "--- rank errors (cut after the loop started, all failed ${took}s later):"
grep -E "failed|exited" "$CLUSTER_LOG" | cut -c1-400
[[ $status == 0 ]] && echo "cut host test: passed"
exit $status
