#!/usr/bin/env bash
# Packs the Node binding as an npm tarball with the release library bundled
# for this platform (prebuilds/<platform>-<arch>/libst_secrets.so, stripped):
#
#   scripts/pack-node.sh [--out DIR] [--no-build] [--prebuild PLATFORM=FILE]...
#
# --prebuild bundles FILE (a stripped libst_secrets.so, as scripts/dist.sh
# installs it per architecture) for PLATFORM (`linux-x64`, `linux-arm64`: Node's
# process.platform-process.arch) instead of this host's build; repeatable.
#
# Prints the tarball's path. The tarball holds only the package's files (the
# `files` list of package.json): no tests, benchmarks or scripts.
source "$(dirname "$0")/lib.sh"
out="$ST_ROOT/build/npm"
build=1
prebuilds=()
usage() { die "usage: scripts/pack-node.sh [--out DIR] [--no-build] [--prebuild PLATFORM=FILE]..."; }
while (($#)); do
  case "$1" in
    --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --prebuild) [ $# -ge 2 ] || usage; prebuilds+=("$2"); shift 2 ;;
    *) usage ;;
  esac
done
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required"
pkg="$ST_ROOT/bindings/node"
rm -rf "$pkg/prebuilds"
mkdir -p "$out"
if ((${#prebuilds[@]})); then
  for p in "${prebuilds[@]}"; do
    platform="${p%%=*}" file="${p#*=}"
    [[ "$platform" =~ ^linux-(x64|arm64)$ ]] || die "--prebuild: unknown platform '$platform' (linux-x64 or linux-arm64)"
    [ -f "$file" ] || die "--prebuild: no such file: $file"
    mkdir -p "$pkg/prebuilds/$platform"
    cp "$file" "$pkg/prebuilds/$platform/libst_secrets.so"
  done
else
  if [ "$build" = 1 ]; then (cd "$ST_ROOT" && cargo build --release --lib) >&2; fi
  platform="$(node -p 'process.platform + "-" + process.arch')"
  mkdir -p "$pkg/prebuilds/$platform"
  strip --strip-unneeded -o "$pkg/prebuilds/$platform/libst_secrets.so" "$ST_ROOT/target/release/libst_secrets.so"
fi
tarball="$(cd "$pkg" && npm pack --silent --pack-destination "$out")"
rm -rf "$pkg/prebuilds"
echo "$out/$tarball"
