#!/bin/sh
# /init of the rxe test guest (see run.sh): loads soft-RoCE, mounts the host root read-only over
# 9p with writable tmpfs where programs write, puts ONE rxe device on a veth (two rxe devices in
# one namespace hang: their UDP packets are routed through lo), runs the command chrooted into
# the host root, prints its exit status and powers off.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# crc32_generic first: without it rxe cannot compute its ICRC and `rdma link add` fails.
for m in crc32_generic virtio_pci 9pnet_virtio 9p rdma_rxe veth; do
  modprobe "$m" || echo "init: modprobe $m failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro hostroot /host || {
  echo "init: cannot mount the host root over 9p"; poweroff -f; }
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/shm /host/dev/pts
mount -t tmpfs shm /host/dev/shm
mount -t devpts pts /host/dev/pts 2>/dev/null
mount -t tmpfs tmp /host/tmp
mount -t tmpfs run /host/run 2>/dev/null
echo BRAID-RXE-BOOTED

run=$(sed -n 's/.*braid_run=\([^ ]*\).*/\1/p' /proc/cmdline)
chroot /host /bin/sh -c '
  hostname rxe-guest
  ip link set lo up
  ip link add veth0 type veth peer name veth1
  ip addr add 198.18.0.1/24 dev veth0
  ip link set veth0 up
  ip link set veth1 up
  rdma link add rxe0 type rxe netdev veth0 || echo "init: rdma link add failed"
  # Let the port become ACTIVE and the IPv4-mapped GID appear before anything probes.
  for i in 1 2 3 4 5 6 7 8 9 10; do
    [ -e /sys/class/infiniband/rxe0/ports/1/gid_attrs/types/1 ] &&
      grep -q ACTIVE /sys/class/infiniband/rxe0/ports/1/state && break
    sleep 0.5
  done
'
ulimit -l unlimited
echo BRAID-RXE-BEGIN
chroot /host /bin/sh -c ". '$run/env.sh'; export TMPDIR=/tmp; . '$run/command.sh'" < /dev/null 2>&1
status=$?
echo "BRAID-RXE-STATUS $status"
poweroff -f
