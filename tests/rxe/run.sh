#!/bin/sh
# Runs a command on a real verbs stack: the kernel's soft-RoCE driver (rdma_rxe) inside a QEMU
# guest. The host kernel here has no RDMA support, so the guest boots Debian's stock kernel
# (fetched with apt-get download and unpacked, never installed), shares the host's root file
# system read-only over 9p, creates one rxe device on a veth, and runs COMMAND chrooted into the
# host root, so the project's build tree and the host's rdma-core run unchanged.
#
#   tests/rxe/run.sh [COMMAND...]     exit status and output are COMMAND's
#   tests/rxe/run.sh                  runs tests/rxe/suite.sh (the verbs suite)
#
# Exit 77 (with the reason printed) only when QEMU cannot run here at all.
# Environment: BRAID_RXE_CACHE (kernel + initramfs cache, default ~/.cache/braid-rxe),
# BRAID_RXE_TIMEOUT (seconds for the whole guest run, default 900), BRAID_RXE_SMP (2),
# BRAID_RXE_MEM (MiB, 2048).
set -eu

SKIP=77
here=$(cd "$(dirname "$0")" && pwd)
cache=${BRAID_RXE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/braid-rxe}
timeout_s=${BRAID_RXE_TIMEOUT:-900}

skip() { echo "rxe: SKIP: $*" >&2; exit $SKIP; }
die() { echo "rxe: ERROR: $*" >&2; exit 2; }

command -v qemu-system-x86_64 >/dev/null 2>&1 ||
  skip "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
command -v busybox >/dev/null 2>&1 || die "busybox not found (apt-get install busybox-static)"
busybox_bin=$(command -v busybox)
if ldd "$busybox_bin" >/dev/null 2>&1; then
  die "$busybox_bin is dynamically linked; the initramfs needs busybox-static"
fi
command -v cpio >/dev/null 2>&1 || die "cpio not found (apt-get install cpio)"
command -v depmod >/dev/null 2>&1 || die "depmod not found (apt-get install kmod)"

if [ $# -eq 0 ]; then
  set -- "$here/suite.sh"
fi

# --- the guest kernel: Debian's stock kernel package, unpacked into the cache ---------------
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
       sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update)"
kver=${kpkg#linux-image-}
kdir=$cache/$kpkg
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # concurrent runs share the cache; only one unpacks.
if [ ! -f "$kdir/.unpacked" ]; then
  echo "rxe: fetching $kpkg into $kdir" >&2
  rm -rf "$kdir" "$cache/dl"
  mkdir -p "$kdir" "$cache/dl"
  (cd "$cache/dl" && apt-get download "$kpkg" >&2) || die "apt-get download $kpkg failed"
  dpkg -x "$cache"/dl/"$kpkg"_*.deb "$kdir"
  rm -rf "$cache/dl"
  touch "$kdir/.unpacked"
fi
vmlinuz=$kdir/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "$vmlinuz missing from the kernel package"

# --- initramfs: busybox, the modules rxe and 9p need, and /init -------------------------------
modules="crypto/crc32_generic.ko net/9p/9pnet.ko fs/fscache/fscache.ko fs/netfs/netfs.ko
fs/9p/9p.ko drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko
drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci_legacy_dev.ko
drivers/virtio/virtio_pci.ko net/9p/9pnet_virtio.ko drivers/infiniband/core/ib_core.ko
drivers/infiniband/core/ib_uverbs.ko net/ipv6/ip6_udp_tunnel.ko net/ipv4/udp_tunnel.ko
drivers/infiniband/sw/rxe/rdma_rxe.ko drivers/net/veth.ko"
initrd=$cache/initrd-$kver-$(cksum < "$here/guest-init.sh" | cut -d' ' -f1).gz
if [ ! -f "$initrd" ]; then
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/lib/modules/$kver/kernel" "$root/proc" "$root/sys" "$root/dev" \
           "$root/host"
  cp "$busybox_bin" "$root/bin/busybox"
  for applet in sh mount umount modprobe insmod chroot poweroff mkdir cat echo sleep; do
    ln -s busybox "$root/bin/$applet"
  done
  for m in $modules; do
    src=$kdir/lib/modules/$kver/kernel/$m
    [ -f "$src" ] || src=$(ls "$src".* 2>/dev/null | head -n 1 || true)
    [ -n "$src" ] && [ -f "$src" ] || die "module $m missing from $kpkg"
    mkdir -p "$root/lib/modules/$kver/kernel/$(dirname "$m")"
    cp "$src" "$root/lib/modules/$kver/kernel/$(dirname "$m")/"
  done
  cp "$kdir/lib/modules/$kver/modules.order" "$kdir/lib/modules/$kver/modules.builtin"* \
     "$root/lib/modules/$kver/" 2>/dev/null || true
  depmod -b "$root" "$kver"
  cp "$here/guest-init.sh" "$root/init"
  chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  rm -rf "$root"
fi
flock -u 9

# --- the command travels through a scratch folder the guest can read (host /tmp is covered by
# the guest's tmpfs, so the folder lives under the cache) -------------------------------------
run=$(mktemp -d "$cache/run.XXXXXX")
qemu_pid=
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
{
  echo "cd '$(pwd)'"
  printf 'exec'
  for arg in "$@"; do printf " '%s'" "$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")"; done
  echo
} > "$run/command.sh"
# Variables the command may rely on (BRAID_*, build locations).
env | grep -E '^(BRAID_|GTEST_|PATH=|HOME=)' | grep -v '^BRAID_RXE_' |
  sed "s/'/'\\\\''/g; s/=\(.*\)/='\1'/; s/^/export /" > "$run/env.sh" || true

accel="-accel tcg,thread=multi"  # KVM hangs guests on this kind of machine (see docs).
log=$run/console.log
# shellcheck disable=SC2086
qemu-system-x86_64 $accel -cpu max -m "${BRAID_RXE_MEM:-2048}" -smp "${BRAID_RXE_SMP:-2}" \
  -nographic -no-reboot -monitor none -serial stdio -nodefaults \
  -kernel "$vmlinuz" -initrd "$initrd" \
  -append "console=ttyS0 quiet panic=-1 braid_run=$run" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
  < /dev/null > "$log" 2>&1 &
qemu_pid=$!

# Stream the console while waiting; stop QEMU if the deadline passes.
tail -n +1 -f "$log" --pid="$qemu_pid" 2>/dev/null | tr -d '\r' |
  sed -n '/^BRAID-RXE-BEGIN$/,/^BRAID-RXE-STATUS /{/^BRAID-RXE-/d;p}' &
tail_pid=$!
waited=0
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [ "$waited" -ge "$timeout_s" ]; then
    echo "rxe: ERROR: guest still running after ${timeout_s}s (BRAID_RXE_TIMEOUT); stopping it" >&2
    kill "$qemu_pid" 2>/dev/null || true
    break
  fi
  sleep 1
  waited=$((waited + 1))
done
wait "$qemu_pid" 2>/dev/null && qemu_status=0 || qemu_status=$?
qemu_pid=
wait "$tail_pid" 2>/dev/null || true

status=$(tr -d '\r' < "$log" | sed -n 's/^BRAID-RXE-STATUS \([0-9]*\)$/\1/p' | tail -n 1)
if [ -z "$status" ]; then
  if ! tr -d '\r' < "$log" | grep -q 'BRAID-RXE-BOOTED'; then
    echo "rxe: the guest never reached its init (qemu exit $qemu_status); console:" >&2
    tail -n 40 "$log" >&2
    if grep -qiE "could not (access|initialize)|failed to initialize|not supported" "$log"; then
      skip "QEMU cannot run on this machine"
    fi
    exit 2
  fi
  echo "rxe: the guest ended without reporting a status; console tail:" >&2
  tr -d '\r' < "$log" | tail -n 40 >&2
  exit 2
fi
exit "$status"
