#!/usr/bin/env bash
# Fault injection across namespace hosts (issue 7). One rank per host, over tcp, each running
# fault_rank (random collectives, every result checked). At a random moment after every rank
# is in its loop, one random rank is hit by one of:
#   kill  kill -9 of its process          (seen by its peers as a reset connection)
#   stop  SIGSTOP of its process          (seen only through the heartbeats)
#   cut   its host's link goes down       (seen only through the heartbeats)
# Checked for every trial: each survivor returns an error naming the failed rank AND its host
# within BRAID_HEARTBEAT_TIMEOUT + 2 s of the fault (times measured on the wall clock, which
# every namespace shares); no survivor hangs; braidCommShrink gives each survivor its expected
# rank in a communicator of the others, on which the loop finishes with correct results; no
# process is left behind, in the namespaces or anywhere else.
#
# Usage: fault_injection_test.sh FAULT_RANK HOSTS:KILLS:STOPS:CUTS...
#   e.g. ... 4:4:3:3 8:1:1:1   (4 hosts: 4 kill, 3 stop, 3 cut trials; then 8 hosts: 1 each)
# FAULT_SEED=N replays a run's random choices (printed at the start); FAULT_MAX_COUNT sets the
# largest element count per rank (a quarter of the collectives draw up to it; the rest are
# small, down to 0 and 1).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
prog=$1; shift
heartbeat_s=${FAULT_HEARTBEAT:-4}
# Large enough that many faults hit a transfer bigger than the socket buffers.
max_count=${FAULT_MAX_COUNT:-300000}
grace_s=2
# Enough for a survivor to detect, shrink (on a coordinator that may itself wait for stragglers)
# and finish on a loaded 2-core machine: past it, a survivor counts as hung.
finish_s=60
# SIGSTOP and cut links are found by heartbeats, which only tcp sends so far (docs/tuning.md).
export CLUSTER_TRANSPORT=tcp
CLUSTER_TIMEOUT=240
seed=${FAULT_SEED:-$(( (RANDOM << 15) | RANDOM ))}
RANDOM=$seed
echo "fault injection: seed $seed (FAULT_SEED=$seed replays the choices), heartbeat ${heartbeat_s}s"

status=0 trials=0 failed_trials=0
declare -A detect_max=([kill]=0 [stop]=0 [cut]=0) counts=([kill]=0 [stop]=0 [cut]=0)

ns_pids() { ip netns pids "$(cluster_ns "$1")" 2>/dev/null; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }

# Reports one failed check and marks the trial (and the run) failed.
trial_failed() {
  echo "FAILED: $1"
  failed_trials=$((failed_trials + 1))
  status=1
}

# One trial: HOSTS KIND. The cluster is up.
trial() {
  local hosts=$1 kind=$2 ok=1
  local victim=$((RANDOM % hosts)) delay_ms=$((200 + RANDOM % 1300))
  local vhost=$((victim + 1)) rank_seed=$(( (RANDOM << 15) | RANDOM ))
  local label="$kind of rank $victim (h$vhost) of $hosts after ${delay_ms} ms"
  trials=$((trials + 1))
  : >"$CLUSTER_LOG"  # now, not in the background: the wait below must not read the last trial's
  # (stderr: the shell's "Killed" notices for the victim's launcher)
  cluster_run 1 env BRAID_HEARTBEAT_TIMEOUT="$heartbeat_s" BRAID_TIMEOUT=60 \
    "$prog" "$rank_seed" "$max_count" 2>/dev/null &
  local runner=$! i r
  for ((i = 0; i < 900; i++)); do  # creation: up to 90 s on a loaded machine
    (( $(grep -c "FAULTRANK READY" "$CLUSTER_LOG" 2>/dev/null) == hosts )) && break
    kill -0 "$runner" 2>/dev/null || break
    sleep 0.1
  done
  local pid
  pid=$(grep "^\[r$victim h$vhost\] FAULTRANK READY" "$CLUSTER_LOG" | awk '{print $NF}')
  if [[ -z $pid ]] || (( $(grep -c "FAULTRANK READY" "$CLUSTER_LOG") != hosts )); then
    trial_failed "$label: the ranks did not all start"
    for ((r = 1; r <= hosts; r++)); do ns_pids "$r" | xargs -r kill -KILL 2>/dev/null; done
    wait "$runner"; cut -c1-500 "$CLUSTER_LOG" | tail -n 40; return
  fi
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"

  local t0; t0=$(date +%s%N)  # before the fault: the measured times are upper bounds.
  case $kind in
    kill) kill -KILL "$pid" ;;
    stop) kill -STOP "$pid" ;;
    cut) cluster_cut_host "$vhost" ;;
  esac
  # Every survivor's process must end by itself (error, shrink, finish) in time.
  local live
  for ((i = 0; i < finish_s * 10; i++)); do
    live=0
    for ((r = 0; r < hosts; r++)); do
      [[ $r == "$victim" ]] && continue
      [[ -n $(ns_pids $((r + 1))) ]] && live=1
    done
    [[ $live == 0 ]] && break
    sleep 0.1
  done
  local finished_s; finished_s=$(awk -v a="$(date +%s%N)" -v b="$t0" 'BEGIN{printf "%.1f", (a-b)/1e9}')
  if [[ $live == 1 ]]; then
    ok=0; trial_failed "$label: survivors still running ${finish_s}s after the fault (hung)"
  fi
  # The victim: a stopped one is killed now. One on a cut host is on its own: it finds peers
  # silent, fails, and shrinks; as the lowest rank it can reach it coordinates, and waits for
  # the peers it did not see fail (some were heard from later than others) for at most
  # (its rank + 2) x the heartbeat timeout before it goes on alone. Past that it counts as hung.
  local victim_note=""
  case $kind in
    stop) kill -KILL "$pid" 2>/dev/null ;;
    cut)
      local alone_s=$(( (victim + 2) * heartbeat_s + 10 ))
      for ((i = 0; i < alone_s * 10; i++)); do [[ -z $(ns_pids "$vhost") ]] && break; sleep 0.1; done
      if [[ -n $(ns_pids "$vhost") ]]; then
        ok=0; trial_failed "$label: the rank on the cut host still runs ${alone_s}s after the cut (hung)"
      fi
      victim_note=$(grep "^\[r$victim h$vhost\] FAULTRANK SHRUNK" "$CLUSTER_LOG" | awk -v t0="$t0" \
        '{printf "; the cut rank went on alone (rank %s of %s) after %.1f s", $8, $10, ($6 - t0) / 1e9}')
      ;;
  esac
  # Leftovers would be killed by the cleanup below; the check is that there are none.
  for ((r = 1; r <= hosts; r++)); do ns_pids "$r" | xargs -r kill -KILL 2>/dev/null; done
  wait "$runner"
  [[ $kind == cut ]] && cluster_restore_host "$vhost"
  sleep 0.3
  local leftovers; leftovers=$(pgrep -f "^$prog " || true)
  for ((r = 1; r <= hosts; r++)); do leftovers+=$(ns_pids "$r"); done
  if [[ -n $leftovers ]]; then
    ok=0; trial_failed "$label: processes left behind: $leftovers"
    pgrep -f "^$prog " | xargs -r kill -KILL
  fi

  # Each survivor's report.
  local times="" bound=$((heartbeat_s + grace_s)) line t detect want
  for ((r = 0; r < hosts; r++)); do
    [[ $r == "$victim" ]] && continue
    local tag="[r$r h$((r + 1))]"
    if grep -qF "$tag FAULTRANK BAD" "$CLUSTER_LOG"; then
      ok=0; trial_failed "$label: rank $r: $(grep -F "$tag FAULTRANK BAD" "$CLUSTER_LOG" | cut -c1-600)"
      continue
    fi
    line=$(grep -F "$tag FAULTRANK ERROR" "$CLUSTER_LOG" | head -n 1)
    if [[ -z $line ]]; then ok=0; trial_failed "$label: rank $r reported no error"; continue; fi
    t=$(awk '{print $6}' <<<"$line")
    detect=$(awk -v a="$t" -v b="$t0" 'BEGIN{printf "%.2f", (a-b)/1e9}')
    times+="${times:+ }$detect"
    detect_max[$kind]=$(max "${detect_max[$kind]}" "$detect")
    if awk -v d="$detect" -v b="$bound" 'BEGIN{exit !(d > b || d < 0)}'; then
      ok=0; trial_failed "$label: rank $r noticed after ${detect}s (bound ${bound}s)"
    fi
    if ! grep -qF "rank $victim (host h$vhost)" <<<"$line"; then
      ok=0; trial_failed "$label: rank $r's error does not name rank $victim (host h$vhost): ${line:0:600}"
    fi
    want=$((r < victim ? r : r - 1))
    if ! grep -qF "$tag FAULTRANK SHRUNK" "$CLUSTER_LOG" ||
       ! grep -F "$tag FAULTRANK SHRUNK" "$CLUSTER_LOG" | grep -q "rank $want of $((hosts - 1))$"; then
      ok=0; trial_failed "$label: rank $r did not shrink to rank $want of $((hosts - 1)): $(grep -F "$tag FAULTRANK SHRUNK" "$CLUSTER_LOG")"
    fi
    if ! grep -qF "$tag FAULTRANK FINISHED" "$CLUSTER_LOG" ||
       grep -qF "$tag exited with status" "$CLUSTER_LOG"; then
      ok=0; trial_failed "$label: rank $r did not finish the loop after shrinking"
    fi
  done
  counts[$kind]=$((counts[$kind] + 1))
  printf 'trial %2d: %-40s detected in %s s; all done %s s after the fault%s: %s\n' \
    "$trials" "$label" "$times" "$finished_s" "$victim_note" "$([[ $ok == 1 ]] && echo ok || echo FAILED)"
  if [[ $ok == 0 || ${FAULT_VERBOSE:-0} == 1 ]]; then
    echo "--- log of trial $trials:"; cut -c1-500 "$CLUSTER_LOG" | grep -v "^\s*$" | tail -n 60
  fi
}

start=$(date +%s)
for spec in "$@"; do
  IFS=: read -r hosts kills stops cuts <<<"$spec"
  cluster_up "$hosts" || exit $?
  for ((k = 0; k < kills; k++)); do trial "$hosts" kill; done
  for ((k = 0; k < stops; k++)); do trial "$hosts" stop; done
  for ((k = 0; k < cuts; k++)); do trial "$hosts" cut; done
  cluster_down
done
echo "fault injection: $trials trials (kill ${counts[kill]}, stop ${counts[stop]}," \
  "cut ${counts[cut]}), $failed_trials failed, in $(( $(date +%s) - start )) s;" \
  "slowest detection: kill ${detect_max[kill]} s, stop ${detect_max[stop]} s," \
  "cut ${detect_max[cut]} s (bound $((heartbeat_s + grace_s)) s)"
[[ $status == 0 ]] && echo "cluster fault injection: passed"
exit $status
