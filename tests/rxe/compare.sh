#!/bin/sh
# Braid's verbs point-to-point latency and bandwidth against perftest in the same soft-RoCE
# guest, as ratios (medians of RUNS runs each). Run it through the guest:
#   tests/rxe/run.sh tests/rxe/compare.sh [BUILD_DIR [RUNS]]
# Latency: ib_send_lat -s 2 t_typical vs Braid's typical one-way 2-byte ping-pong time.
# Bandwidth: ib_write_bw -s 1 MiB BW average vs Braid streaming 1 MiB sends from registered
# memory (rendezvous RDMA writes), both in MB/s (2^20 bytes).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
runs=${2:-3}  # (run.sh passes no BRAID_RXE_* variable into the guest)
lat_iters=${BRAID_RXE_LAT_ITERS:-1000}
bw_iters=${BRAID_RXE_BW_ITERS:-50}
dev=rxe0
addr=198.18.0.1
# perftest needs the GID index: the RoCE v2 entry holding ::ffff:198.18.0.1 (what Braid finds
# by itself).
# (The table has hundreds of entries: one grep over all of them, not a process per entry.)
ports=/sys/class/infiniband/$dev/ports/1
gid=$(for f in $(grep -l "ffff:c612:0001" $ports/gids/* 2>/dev/null); do
        i=${f##*/}
        grep -q "v2" $ports/gid_attrs/types/$i 2>/dev/null && echo "$i"
      done | head -n 1)
echo "rxe compare: $dev GID index $gid, $runs runs, load: $(cat /proc/loadavg)"
[ -n "$gid" ] || { echo "no RoCE v2 GID for $addr" >&2; exit 1; }

# Both sides use the same ACK timeout (4.096 us * 2^N): Braid's default, 18, unless
# BRAID_RXE_QP_TIMEOUT says otherwise; perftest's default is 14. Under TCG on a loaded host
# rxe's acknowledgements often come later than 67 ms (14), and every such spurious timeout
# retransmits the unacknowledged part of a 1 MiB write (hw_counters/completer_retry_err, printed
# per run), which makes either side's figure swing by 2-3x.
qp_timeout=${BRAID_RXE_QP_TIMEOUT:-18}
retries() { cat /sys/class/infiniband/$dev/ports/1/hw_counters/completer_retry_err 2>/dev/null || echo 0; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
perftest() {  # perftest TOOL ARGS...: server in the background, client against it.
  tool=$1
  shift
  timeout 300 taskset -c 1 "$tool" -d $dev -x "$gid" -u "$qp_timeout" -F "$@" > /tmp/perftest_server.txt 2>&1 &
  server=$!
  # Under TCG the server may take seconds to listen: the client retries until it connects.
  for try in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    sleep 2
    if out=$(timeout 240 taskset -c 0 "$tool" -d $dev -x "$gid" -u "$qp_timeout" -F "$@" $addr 2>&1); then
      echo "$out"
      break
    fi
  done
  wait $server || true
}

: > /tmp/lat_ref; : > /tmp/bw_ref; : > /tmp/lat_braid; : > /tmp/bw_braid
for run in $(seq "$runs"); do
  perftest ib_send_lat -s 2 -n "$lat_iters" | awk '$1 == 2 && NF >= 5 {print $5}' >> /tmp/lat_ref
  before=$(retries)
  perftest ib_write_bw -s 1048576 -n "$bw_iters" | awk '$1 == 1048576 {print $4}' >> /tmp/bw_ref
  echo "run $run: ib_write_bw retransmission episodes $(($(retries) - before))"
  # Like for like: the latency ranks and the bandwidth sender busy-poll like perftest (spin
  # 1 s before sleeping); the bandwidth receiver spins 50 us then sleeps, as the progress engine
  # does (ib_write_bw's receiver does not poll at all). Both tools run their two sides pinned
  # to the guest's two CPUs (taskset; BRAID_BENCH_PIN): two busy-polling sides that share a
  # CPU measure the scheduler's time slices (milliseconds), not the transport.
  before=$(retries)
  out=$(BRAID_SOCKET_IFNAME=veth0 BRAID_IB_TIMEOUT=$qp_timeout BRAID_BENCH_PIN=1 \
        "$build/tests/rxe/verbs_bench" \
        verbs 2 "$lat_iters" 1048576 "$bw_iters" 8 1000000 50)
  echo "run $run: braid retransmission episodes $(($(retries) - before))"
  echo "$out" | awk '/braid_lat_typical_us/ {print $2}' >> /tmp/lat_braid
  echo "$out" | awk '/braid_bw_MBps/ {print $2}' >> /tmp/bw_braid
  echo "run $run: ib_send_lat $(tail -n 1 /tmp/lat_ref) us, braid $(tail -n 1 /tmp/lat_braid) us;" \
       "ib_write_bw $(tail -n 1 /tmp/bw_ref) MB/s, braid $(tail -n 1 /tmp/bw_braid) MB/s"
done
lat_ref=$(median < /tmp/lat_ref); lat_braid=$(median < /tmp/lat_braid)
bw_ref=$(median < /tmp/bw_ref); bw_braid=$(median < /tmp/bw_braid)
echo "median 2 B latency: ib_send_lat $lat_ref us, braid verbs $lat_braid us," \
     "ratio $(awk "BEGIN {printf \"%.2f\", $lat_braid / $lat_ref}") (target <= 1.5)"
echo "median 1 MiB bandwidth: ib_write_bw $bw_ref MB/s, braid verbs $bw_braid MB/s," \
     "ratio $(awk "BEGIN {printf \"%.2f\", $bw_braid / $bw_ref}") (target >= 0.90)"
# Each run measures both tools back to back, so a load spike on the host tends to hit one pair:
# the median of the per-run ratios is the steadier figure on a shared machine.
ratios() { paste "$1" "$2" | awk '$1 > 0 && $2 > 0 {printf "%.2f\n", $2 / $1}'; }
echo "per-run latency ratios: $(ratios /tmp/lat_ref /tmp/lat_braid | tr '\n' ' ')-> median" \
     "$(ratios /tmp/lat_ref /tmp/lat_braid | median)"
echo "per-run bandwidth ratios: $(ratios /tmp/bw_ref /tmp/bw_braid | tr '\n' ' ')-> median" \
     "$(ratios /tmp/bw_ref /tmp/bw_braid | median)"
