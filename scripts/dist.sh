#!/usr/bin/env bash
# The release artifacts, for x86_64 and aarch64 Linux with glibc 2.28 as the
# floor (RHEL/Rocky 8, Ubuntu 20.04, Amazon Linux 2023 and later; the floor
# PyTorch's own wheels have), into one folder:
#
#   scripts/dist.sh [OUT_DIR]            (default: build/dist)
#
#   st-secrets-V-x86_64-linux-gnu.tar.gz    a prefix, as scripts/install.sh lays it out:
#   st-secrets-V-aarch64-linux-gnu.tar.gz   lib/ (.so with its SONAME links, .a exporting
#                                           only st_*), include/, pkg-config files, the
#                                           CMake package, bin/st-secrets, man pages,
#                                           bash/zsh/fish completions
#   st_secrets-V-cp310-abi3-manylinux_2_28_{x86_64,aarch64}.whl
#   st_secrets-V.tar.gz                     the Python sdist (pip compiles it: needs Rust)
#   st-secrets-V.tgz                        the npm package, prebuilds for linux-x64 and linux-arm64
#   SHA256SUMS                              `sha256sum -c SHA256SUMS` checks them all
#
# The cross tooling is maintained and comes from the registries: cargo-zigbuild
# (crates.io) and maturin --zig link with zig (PyPI's ziglang), whose bundled
# glibc stubs let one x86_64 host link against exactly glibc 2.28's symbol
# versions for both architectures, with no sysroot made by hand; rustup gives
# the aarch64 standard library; Debian's binutils-aarch64-linux-gnu strips
# and localizes the aarch64 files. Everything installed goes under
# ~/.cache/st-secrets (ST_TOOLS_DIR) or rustup's own folder.
#
# Builds live in target/<triple>/release (the wheels' in target/wheel-build):
# a second run rebuilds nothing that did not change. Prints sizes and time.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
started=$SECONDS
out="${1:-$ST_ROOT/build/dist}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
GLIBC_FLOOR=2.28
ARCHES=(x86_64 aarch64)

ensure_dist_tools
version="$(sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -1)"
rm -rf "$out" && mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

# Deterministic tarballs: sorted names, no owners, one timestamp (the last
# commit's when there is one).
epoch="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
tarball() { # tarball DIR NAME -> OUT/NAME.tar.gz
  tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -cf - "$2" | gzip -n -9 >"$out/$2.tar.gz"
}

prebuild_args=()
for arch in "${ARCHES[@]}"; do
  triple="$arch-unknown-linux-gnu"
  say "$triple (glibc $GLIBC_FLOOR): library and tool"
  cargo zigbuild --release --locked --target "$triple.$GLIBC_FLOOR" -p st-secrets -p st-secrets-cli
  name="st-secrets-$version-$arch-linux-gnu"
  scripts/install.sh --prefix "$stage/$name" --target "$triple" >&2
  tarball "$stage" "$name"
  case "$arch" in
    x86_64) node_arch=x64 ;;
    aarch64) node_arch=arm64 ;;
  esac
  prebuild_args+=(--prebuild "linux-$node_arch=$stage/$name/lib/libst_secrets.so.$version")

  say "$triple (manylinux_2_28): the Python wheel"
  # Its own target folder: maturin's zig set-up and cargo-zigbuild's differ
  # in the build scripts' environment, so in one folder each would rebuild
  # every crate the other built (about two minutes per architecture).
  CARGO_TARGET_DIR="$ST_ROOT/target/wheel-build" "$ST_VENV/bin/maturin" build --release --locked --zig --target "$triple" \
    --compatibility "manylinux_${GLIBC_FLOOR/./_}" \
    --manifest-path bindings/python/Cargo.toml --out "$out" >&2
done

CARGO_TARGET_DIR="$ST_ROOT/target/wheel-build" "$ST_VENV/bin/maturin" sdist --manifest-path bindings/python/Cargo.toml --out "$out" >&2
say "the npm package (linux-x64, linux-arm64)"
scripts/package.sh npm --out "$out" "${prebuild_args[@]}" >/dev/null

(cd "$out" && sha256sum -- * >SHA256SUMS)
say "artifacts in $out ($((SECONDS - started)) s)"
(cd "$out" && ls -l --time-style=+ -- * | awk '{printf "%12d  %s\n", $5, $NF}')
