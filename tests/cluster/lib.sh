# A cluster of hosts on one machine (network namespaces on a bridge), sourced by the cluster
# tests and perf/bound_sweep.sh. Needs root (ip netns). docs/launching.md describes it.
#
#   cluster_up N [RATE]      N hosts h1..hN, each 198.19.X.i/24, optional tbf egress RATE
#                            (e.g. 1gbit). Registers teardown on EXIT/INT/TERM.
#   cluster_run RPH PROG...  starts RPH ranks per host inside the namespaces (rank r on host
#                            r / RPH + 1) with BRAID_RANK/WORLD_SIZE/ROOT/SECRET/HOSTNAME; waits
#                            for all; returns non-zero if any rank failed. Output in $CLUSTER_LOG.
#   cluster_mpirun RPH ARGS...  mpirun over the hosts through an rsh agent that enters the
#                            namespace named as the host (host names added to /etc/hosts).
#   cluster_cut_host I       cuts host hI off the network (link down), for fault tests.
#   cluster_restore_host I   puts host hI back on the network.
#   cluster_down             tears everything down (also run on EXIT).
#   cluster_stale_cleanup    removes namespaces/links/hosts lines left by killed runs.
#   cluster_each_topology NAME FN HOSTSxRPH...  runs `FN HOSTS RPH` for each topology; exits 77
#                            at once if one returns 77 (cannot build a cluster here), else 1 if
#                            any failed, 0 with "NAME: all passed" if none did.
#
# Knobs: CLUSTER_TRANSPORT (BRAID_TRANSPORT for the ranks), CLUSTER_UTS=1 (each rank also in
# its own UTS namespace with hostname hN), CLUSTER_TIMEOUT (seconds before ranks are killed),
# CLUSTER_MTU (the hosts' link MTU, default 1500),
# CLUSTER_LAUNCH_ENV=braid|slurm|torchrun (which launcher's variables cluster_run sets, as srun
# or torchrun would; torchrun's MASTER_ADDR is a host name, resolved through /etc/hosts).

CLUSTER_PREFIX="bc$$"
CLUSTER_HOSTS=0
CLUSTER_NET=""             # e.g. 198.19.42
CLUSTER_TAG="# braid-cluster $CLUSTER_PREFIX"
CLUSTER_DIR=""
CLUSTER_LOG=""
: "${CLUSTER_TIMEOUT:=300}"

cluster_ns() { echo "${CLUSTER_PREFIX}-h$1"; }

# Namespaces of runs whose shell is gone (killed with SIGKILL, machine trouble).
cluster_stale_cleanup() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^bc[0-9]+-h[0-9]+$'); do
    pid=${ns#bc}; pid=${pid%%-*}
    if ! kill -0 "$pid" 2>/dev/null; then ip netns del "$ns" 2>/dev/null || true; fi
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
                grep -E '^bc[0-9]+(br|v[0-9]+)$'); do
    pid=${link#bc}; pid=${pid%%[bv]*}
    if ! kill -0 "$pid" 2>/dev/null; then ip link del "$link" 2>/dev/null || true; fi
  done
  for dir in /tmp/bc[0-9]*.*; do
    [[ -d $dir ]] || continue
    pid=${dir#/tmp/bc}; pid=${pid%%.*}
    if ! kill -0 "$pid" 2>/dev/null; then rm -rf "$dir"; fi
  done
  if grep -q '# braid-cluster bc' /etc/hosts 2>/dev/null; then
    local keep; keep=$(mktemp)
    while IFS= read -r line; do
      if [[ $line =~ \#\ braid-cluster\ bc([0-9]+) ]] && ! kill -0 "${BASH_REMATCH[1]}" 2>/dev/null
      then continue; fi
      printf '%s\n' "$line"
    done </etc/hosts >"$keep"
    cat "$keep" >/etc/hosts  # rewrite in place: /etc/hosts may be a bind mount
    rm -f "$keep"
  fi
}

cluster_down() {
  local i
  if [[ -n $CLUSTER_DIR && -d $CLUSTER_DIR ]]; then
    # Ranks still running (a failed test): end them before their network disappears.
    for pidfile in "$CLUSTER_DIR"/pid.*; do
      [[ -e $pidfile ]] && kill -9 "$(cat "$pidfile")" 2>/dev/null
    done
  fi
  for ((i = 1; i <= CLUSTER_HOSTS; i++)); do
    ip netns pids "$(cluster_ns "$i")" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$(cluster_ns "$i")" 2>/dev/null
    ip link del "${CLUSTER_PREFIX}v$i" 2>/dev/null
  done
  ip link del "${CLUSTER_PREFIX}br" 2>/dev/null
  if grep -qF "$CLUSTER_TAG" /etc/hosts 2>/dev/null; then
    local keep; keep=$(grep -vF "$CLUSTER_TAG" /etc/hosts)
    printf '%s\n' "$keep" >/etc/hosts
  fi
  [[ -n $CLUSTER_DIR && ${CLUSTER_KEEP_LOGS:-0} != 1 ]] && rm -rf "$CLUSTER_DIR"
  CLUSTER_HOSTS=0
  return 0
}

# A /24 in 198.19.0.0/16 (the benchmarking range) that no route on this machine uses yet.
cluster_pick_subnet() {
  local x
  for ((try = 0; try < 250; try++)); do
    x=$(( ($$ + try) % 250 + 1 ))
    if ! ip route show | grep -q "^198\.19\.$x\."; then echo "198.19.$x"; return 0; fi
  done
  return 1
}

cluster_up() {
  local n=$1 rate=${2:-} i ns veth
  if [[ $(id -u) != 0 ]] || ! ip netns list >/dev/null 2>&1; then
    echo "SKIP: network namespaces need root (ip netns)"; return 77
  fi
  cluster_stale_cleanup
  trap 'cluster_down' EXIT
  trap 'cluster_down; exit 130' INT TERM
  CLUSTER_NET=$(cluster_pick_subnet) || { echo "no free 198.19.x.0/24 subnet"; return 1; }
  CLUSTER_DIR=$(mktemp -d "/tmp/${CLUSTER_PREFIX}.XXXX")
  CLUSTER_LOG="$CLUSTER_DIR/log"
  ip link add "${CLUSTER_PREFIX}br" type bridge || return 1
  ip addr add "$CLUSTER_NET.254/24" dev "${CLUSTER_PREFIX}br"
  ip link set "${CLUSTER_PREFIX}br" up
  for ((i = 1; i <= n; i++)); do
    ns=$(cluster_ns "$i"); veth="${CLUSTER_PREFIX}v$i"
    ip netns add "$ns" || return 1
    CLUSTER_HOSTS=$i
    ip link add "$veth" type veth peer name eth0 netns "$ns" || return 1
    ip link set "$veth" master "${CLUSTER_PREFIX}br"
    ip link set "$veth" up
    ip -n "$ns" addr add "$CLUSTER_NET.$i/24" dev eth0
    if [[ -n ${CLUSTER_MTU:-} ]]; then  # e.g. 9000: jumbo frames, as many cluster networks use
      ip link set "$veth" mtu "$CLUSTER_MTU"
      ip -n "$ns" link set eth0 mtu "$CLUSTER_MTU"
    fi
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$CLUSTER_NET.254"
    if [[ -n $rate ]]; then
      ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 50ms ||
        return 1
    fi
    # Named like the namespace, so concurrent clusters never share a name.
    printf '%s %s %s\n' "$CLUSTER_NET.$i" "$ns" "$CLUSTER_TAG" >>/etc/hosts
  done
  # The root namespace reaches the bridge too (mpirun's daemon connections).
  return 0
}

cluster_cut_host() { ip -n "$(cluster_ns "$1")" link set eth0 down; }
# Reconnects host hI after cluster_cut_host (link down dropped its default route).
cluster_restore_host() {
  ip -n "$(cluster_ns "$1")" link set eth0 up &&
    ip -n "$(cluster_ns "$1")" route replace default via "$CLUSTER_NET.254"
}

# Runs PROG on RPH ranks per host. Rank 0 (host h1) hosts the rendezvous root.
cluster_run() {
  local rph=$1; shift
  local world=$((CLUSTER_HOSTS * rph)) r host ns port secret status=0
  port=$(( 20000 + $$ % 20000 ))
  secret="cluster-$$-$RANDOM$RANDOM"
  : >"$CLUSTER_LOG"
  local pids=()
  for ((r = 0; r < world; r++)); do
    host=$((r / rph + 1)); ns=$(cluster_ns "$host")
    local cmd=(env BRAID_SECRET="$secret" BRAID_HOSTNAME=h$host)
    case ${CLUSTER_LAUNCH_ENV:-braid} in  # which launcher's variables the ranks see
      braid) cmd+=(BRAID_RANK=$r BRAID_WORLD_SIZE=$world BRAID_ROOT="$CLUSTER_NET.1:$port") ;;
      slurm) cmd+=(SLURM_PROCID=$r SLURM_NTASKS=$world SLURM_LOCALID=$((r % rph))
                   BRAID_ROOT="$CLUSTER_NET.1:$port") ;;
      torchrun) cmd+=(RANK=$r WORLD_SIZE=$world LOCAL_RANK=$((r % rph))
                      MASTER_ADDR=$(cluster_ns 1) MASTER_PORT=$port) ;;
    esac
    [[ -n ${CLUSTER_TRANSPORT:-} ]] && cmd+=(BRAID_TRANSPORT="$CLUSTER_TRANSPORT")
    if [[ ${CLUSTER_UTS:-0} == 1 ]]; then
      cmd=(unshare --uts sh -c 'hostname "$0"; exec "$@"' "h$host" "${cmd[@]}")
    fi
    ( exec timeout -s KILL "$CLUSTER_TIMEOUT" ip netns exec "$ns" "${cmd[@]}" "$@" \
        > >(sed -u "s/^/[r$r h$host] /" >>"$CLUSTER_LOG") 2>&1 ) &
    pids+=($!)
    echo "${pids[-1]}" >"$CLUSTER_DIR/pid.$r"
  done
  for ((r = 0; r < world; r++)); do
    local rc=0
    wait "${pids[$r]}" || rc=$?
    rm -f "$CLUSTER_DIR/pid.$r"
    if [[ $rc != 0 ]]; then
      echo "[r$r h$((r / rph + 1))] exited with status $rc" >>"$CLUSTER_LOG"
      status=1
    fi
  done
  sleep 0.2  # let the output pipes drain
  return $status
}

# mpirun across the namespaces: the rsh agent enters the namespace named like the host.
cluster_mpirun() {
  local rph=$1; shift
  local agent="$CLUSTER_DIR/rsh-agent" hosts="" i
  cat >"$agent" <<AGENT
#!/bin/sh
# mpirun's rsh agent: "agent HOST COMMAND..." runs COMMAND (one string, as ssh passes it) on
# HOST, i.e. in the namespace HOST (${CLUSTER_PREFIX}-hN) with BRAID_HOSTNAME=hN.
h=\$1; shift
exec ip netns exec "\$h" env BRAID_HOSTNAME="\${h#*-}" sh -c "\$*"
AGENT
  chmod +x "$agent"
  for ((i = 1; i <= CLUSTER_HOSTS; i++)); do hosts+="${hosts:+,}$(cluster_ns "$i"):$rph"; done
  local envs=()
  [[ -n ${CLUSTER_TRANSPORT:-} ]] && envs+=(-x BRAID_TRANSPORT="$CLUSTER_TRANSPORT")
  timeout -s KILL "$CLUSTER_TIMEOUT" mpirun --allow-run-as-root --oversubscribe \
    --mca plm_rsh_agent "$agent" --host "$hosts" -np $((CLUSTER_HOSTS * rph)) \
    --mca btl tcp,self --mca btl_tcp_if_include "$CLUSTER_NET.0/24" \
    --mca oob_tcp_if_include "$CLUSTER_NET.0/24" "${envs[@]}" "$@"
}

cluster_each_topology() {
  local name=$1 fn=$2 topo rc status=0
  shift 2
  for topo in "$@"; do
    "$fn" "${topo%x*}" "${topo#*x}"
    rc=$?
    [[ $rc == 77 ]] && exit 77
    [[ $rc != 0 ]] && status=1
  done
  [[ $status == 0 ]] && echo "$name: all passed"
  exit $status
}
