#!/usr/bin/env bash
# The packages of the bindings, each printing its path on the last line:
#
#   scripts/package.sh wheel [OUT_DIR]           the Python wheel (default target/wheels)
#   scripts/package.sh npm [--out DIR] [--no-build] [--prebuild PLATFORM=FILE]...
#
# wheel: the st_secrets package with its native extension (PyO3, stable ABI:
# one wheel for CPython 3.10 and later), tagged manylinux by maturin's audit
# of what it links (glibc only). It shares target/release with the library.
# npm: the Node binding with the release library bundled for this platform
# (prebuilds/<platform>-<arch>/libst_secrets.so, stripped), or, with
# --prebuild, FILE for PLATFORM (linux-x64, linux-arm64, darwin-arm64: a
# .dylib; repeatable, as scripts/dist.sh does); only the files package.json lists, with the
# licence and the third-party notices.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
usage() { die "usage: scripts/package.sh wheel [OUT_DIR] | npm [--out DIR] [--no-build] [--prebuild OS-ARCH=FILE]..."; }

wheel() {
  local out="${1:-$ST_ROOT/target/wheels}" py wheel
  py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
  rm -f "$out"/st_secrets-*.whl
  "$(dirname "$py")/maturin" build --release --locked --manifest-path bindings/python/Cargo.toml --out "$out" >&2
  wheel="$(ls "$out"/st_secrets-*.whl)"
  [[ "$wheel" == *manylinux* ]] || die "the wheel is not manylinux-tagged: $wheel"
  echo "$wheel"
}

npm_pack() {
  local out="$ST_ROOT/build/npm" build=1 prebuilds=() pkg="$ST_ROOT/bindings/node" p platform file tarball
  while (($#)); do
    case "$1" in
      --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
      --no-build) build=0; shift ;;
      --prebuild) [ $# -ge 2 ] || usage; prebuilds+=("$2"); shift 2 ;;
      *) usage ;;
    esac
  done
  command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required"
  rm -rf "$pkg/prebuilds"
  mkdir -p "$out"
  if ((${#prebuilds[@]})); then
    for p in "${prebuilds[@]}"; do
      platform="${p%%=*}" file="${p#*=}"
      [[ "$platform" =~ ^(linux-(x64|arm64)|darwin-arm64)$ ]] ||
        die "--prebuild: unknown platform '$platform' (linux-x64, linux-arm64, darwin-arm64)"
      [ -f "$file" ] || die "--prebuild: no such file: $file"
      mkdir -p "$pkg/prebuilds/$platform"
      cp "$file" "$pkg/prebuilds/$platform/libst_secrets.$([[ $platform == darwin-* ]] && echo dylib || echo so)"
    done
  else
    [ "$build" = 0 ] || cargo_build --release >&2
    platform="$(node -p 'process.platform + "-" + process.arch')"
    mkdir -p "$pkg/prebuilds/$platform"
    strip --strip-unneeded -o "$pkg/prebuilds/$platform/libst_secrets.so" "$ST_ROOT/target/release/libst_secrets.so"
  fi
  cp LICENSE THIRD-PARTY-NOTICES.txt "$pkg/"
  tarball="$(cd "$pkg" && npm pack --silent --pack-destination "$out")"
  rm -rf "$pkg/prebuilds" "$pkg/LICENSE" "$pkg/THIRD-PARTY-NOTICES.txt"
  echo "$out/$tarball"
}

case "${1:-}" in
  wheel) shift; wheel "$@" ;;
  npm) shift; npm_pack "$@" ;;
  *) usage ;;
esac
