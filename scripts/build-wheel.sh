#!/usr/bin/env bash
# Builds the Python package's wheel: the st_secrets package with its native
# extension (PyO3, stable ABI: one wheel for CPython 3.10 and later), tagged
# manylinux by maturin's audit of the symbols it links (glibc only: no
# libpython, no Rust runtime, no OpenSSL). Installs on a machine with no Rust
# toolchain and no checkout. Prints the wheel's path on the last line.
#
#   scripts/build-wheel.sh [OUT_DIR]     (default: target/wheels)
#
# The extension is a workspace member: it shares target/release with the C
# library's release build, so the core crate is compiled once per profile.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
out="${1:-$ST_ROOT/target/wheels}"
py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
maturin="$(dirname "$py")/maturin"
rm -f "$out"/st_secrets-*.whl
"$maturin" build --release --manifest-path bindings/python/Cargo.toml --out "$out" >&2
wheel="$(ls "$out"/st_secrets-*.whl)"
case "$wheel" in
  *manylinux*) ;;
  *) die "the wheel is not manylinux-tagged: $wheel" ;;
esac
echo "$wheel"
