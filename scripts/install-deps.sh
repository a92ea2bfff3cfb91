#!/usr/bin/env bash
# Installs what Braid needs from Debian 12's packages. Safe to run again: when everything is
# already installed it returns at once without touching apt.
#   scripts/install-deps.sh           build and test dependencies
#   scripts/install-deps.sh --peers   also Open MPI, to measure Braid against it
set -euo pipefail

packages=(build-essential cmake pkg-config git liburing-dev libabsl-dev libgtest-dev libgmock-dev
          iproute2 procps python3 chromium)
# cluster: braidCommInitFromMPI tests and mpirun launches (mpi, cluster labels), unshare.
packages+=(openmpi-bin libopenmpi-dev util-linux)
# libFuzzer targets (fuzz/) are built with clang and its runtime.
packages+=(clang libclang-rt-14-dev)
packages+=(libfabric-dev libfabric-bin)  # the ofi transport (AWS EFA) and its tests; fi_info.
# The Python package and the PyTorch backend (python/): pybind11 for /usr/bin/python3, numpy,
# libtorch 1.13 (CPU) and torchrun.
packages+=(python3-dev python3-numpy python3-pybind11 pybind11-dev python3-torch libtorch-dev)
# verbs transport, and its soft-RoCE QEMU test (tests/rxe/run.sh)
packages+=(libibverbs-dev librdmacm-dev rdma-core ibverbs-providers ibverbs-utils perftest
           qemu-system-x86 busybox-static cpio kmod)
if [[ "${1:-}" == "--peers" ]]; then
  packages+=(openmpi-bin libopenmpi-dev python3)
fi

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
