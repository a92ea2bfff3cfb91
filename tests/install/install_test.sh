#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds and runs a downstream project that
# finds Braid with find_package(Braid) and with pkg-config.
set -euo pipefail
build=$1 source=$2
prefix=$(mktemp -d) work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'libbraid.so' | head -n 1)")
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cmake -S "$source/consumer" -B "$work" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/consumer_cmake"
LD_LIBRARY_PATH="$libdir" "$work/consumer_pkgconfig"
