#!/usr/bin/env bash
# braid-health's proof on the namespace cluster (tests/cluster/lib.sh): six hosts shaped to the
# same rate with tbf.
#   healthy    every host at RATE: exit 0, no culprit.
#   slow-host  h4 at a quarter of RATE: exit 1, exactly h4 named as a slow host.
#   slow-link  only the path h2 -> h5 at a quarter (an htb class on h2): exit 1, exactly that
#              link named, not the hosts.
#   cut-host   h3's link cut during the pair rounds: exit 2, exactly h3 named, within budget.
# usage: cluster_health_test.sh BRAID_HEALTH SCENARIO...  (exit 77 = skipped, reason printed)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../cluster/lib.sh"
tool=$1; shift
hosts=6 rate=200mbit quarter=50mbit budget=90
cluster_up $hosts $rate || exit $?

shape_host() {  # host, rate
  ip netns exec "$(cluster_ns "$1")" tc qdisc replace dev eth0 root tbf rate "$2" burst 256kb \
    latency 50ms
}
shape_path() {  # from, to, rate: only traffic from -> to is slow
  local ns; ns=$(cluster_ns "$1")
  ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null
  ip netns exec "$ns" tc qdisc add dev eth0 root handle 1: htb default 10
  ip netns exec "$ns" tc class add dev eth0 parent 1: classid 1:10 htb rate $rate burst 256kb
  ip netns exec "$ns" tc class add dev eth0 parent 1: classid 1:20 htb rate "$3" burst 256kb
  ip netns exec "$ns" tc filter add dev eth0 parent 1: protocol ip prio 1 u32 \
    match ip dst "$CLUSTER_NET.$2/32" flowid 1:20
}
reset_shaping() { for ((h = 1; h <= hosts; h++)); do shape_host $h $rate; done; }

# Runs the tool on one rank per host; checks rank 0's JSON: status and the exact culprits.
run_check() {  # scenario, expected status, expected culprits (python list literal)
  local scenario=$1 expect=$2 culprits=$3 json="$CLUSTER_DIR/$1.json" start rc
  start=$(date +%s)
  cluster_run 1 "$tool" --budget $budget --bytes 1M --iters 2 --sizes 1M --json "$json"
  rc=$?
  local took=$(( $(date +%s) - start ))
  grep "^\[r0 " "$CLUSTER_LOG" | grep -v "round\|AllReduce over\|collecting" | head -30
  python3 - "$json" "$expect" "$culprits" "$took" "$budget" "$scenario" <<'PY'
import ast, json, sys
path, expect, culprits, took, budget, scenario = sys.argv[1:]
r = json.load(open(path))
got = sorted((f["kind"], f["subject"]) for f in r["findings"] if f["severity"] != "healthy")
want = sorted(ast.literal_eval(culprits))
ok = r["status"] == expect and got == want and int(took) <= int(budget) + 15
print(f"{scenario}: status {r['status']} (want {expect}), culprits {got} (want {want}), "
      f"median {r['median_gbps']:.4f} GB/s, {took}s: {'ok' if ok else 'FAILED'}")
sys.exit(0 if ok else 1)
PY
  local verdict=$?
  # Rank 0 exits with the verdict; the cluster run fails exactly when it is not healthy.
  if [[ $expect == healthy && $rc != 0 ]] || [[ $expect != healthy && $rc == 0 ]]; then
    echo "$scenario: cluster run exit $rc does not match status $expect"; verdict=1
  fi
  return $verdict
}

status=0
for scenario in "$@"; do
  reset_shaping
  case $scenario in
    healthy) run_check healthy healthy "[]" || status=1 ;;
    slow-host) shape_host 4 $quarter
               run_check slow-host degraded "[('slow-host', 'h4')]" || status=1 ;;
    slow-link) shape_path 2 5 $quarter
               run_check slow-link degraded "[('slow-link', 'h2 -> h5')]" || status=1 ;;
    cut-host)
      : >"$CLUSTER_LOG"  # the watcher below must not see the previous run's rounds
      ( for _ in $(seq 1 600); do grep -q "round 2/" "$CLUSTER_LOG" 2>/dev/null && break
          sleep 0.1; done
        cluster_cut_host 3 ) &
      run_check cut-host failed "[('failed-host', 'h3')]" || status=1
      wait ;;
    *) echo "unknown scenario $scenario"; status=1 ;;
  esac
done
exit $status
