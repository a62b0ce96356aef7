#!/usr/bin/env bash
# Packs the Node binding as an npm tarball with the release library bundled
# for this platform (prebuilds/<platform>-<arch>/libst_secrets.so, stripped):
#
#   scripts/pack-node.sh [--out DIR] [--no-build]
#
# Prints the tarball's path. The tarball holds only the package's files (the
# `files` list of package.json): no tests, benchmarks or scripts.
source "$(dirname "$0")/lib.sh"
out="$ST_ROOT/build/npm"
build=1
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) die "usage: scripts/pack-node.sh [--out DIR] [--no-build]" ;;
  esac
done
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required"
if [ "$build" = 1 ]; then (cd "$ST_ROOT" && cargo build --release --lib) >&2; fi
platform="$(node -p 'process.platform + "-" + process.arch')"
pkg="$ST_ROOT/bindings/node"
rm -rf "$pkg/prebuilds"
mkdir -p "$pkg/prebuilds/$platform" "$out"
strip --strip-unneeded -o "$pkg/prebuilds/$platform/libst_secrets.so" "$ST_ROOT/target/release/libst_secrets.so"
tarball="$(cd "$pkg" && npm pack --silent --pack-destination "$out")"
rm -rf "$pkg/prebuilds"
echo "$out/$tarball"
