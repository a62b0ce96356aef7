#!/usr/bin/env bash
# The release artifacts, for x86_64 and aarch64 Linux with glibc 2.28 as the
# floor (RHEL/Rocky 8, Ubuntu 20.04, Amazon Linux 2023 and later; PyTorch's
# own floor) and for Apple Silicon with macOS 11, into one folder:
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
#   st-secrets-V-{x86_64,aarch64}-linux-musl.tar.gz  the tool alone, static (musl)
#   st-secrets-V-aarch64-apple-darwin.tar.gz  macOS 11+: the .dylib, header, tool
#   st_secrets-V-cp310-abi3-macosx_11_0_arm64.whl
#   st-secrets-V.tgz                        the npm package: linux-x64, linux-arm64, darwin-arm64
#   st-secrets-go-V.tar.gz                  the Go module st-secrets/stsecrets (a replace target)
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
# One build per target: maturin builds each wheel through wheel_cargo (below),
# which first builds the library and the tool of that target in maturin's own
# zig environment, so the extension's crates and theirs are compiled once
# (five release builds: two glibc targets, macOS, two musl tools). Builds
# live in target/<triple>/release: a second run rebuilds nothing that did
# not change. Prints sizes and time.
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

# maturin --zig runs `$CARGO rustc ...` for the extension with its zig
# wrappers in the environment (glibc 2.28, or macOS 11's stubs); as that
# cargo, this builds the library and the tool of ST_DIST_TARGET first, in the
# same environment and folder (the same features as the extension's: they
# reuse each other's crates), then runs maturin's own call.
export ST_REAL_CARGO="$(command -v cargo)" ST_ROOT
cat >"$stage/wheel_cargo" <<'EOF'
#!/bin/sh
if [ "$1" = rustc ]; then
  "$ST_REAL_CARGO" build --release --locked --target "$ST_DIST_TARGET" --manifest-path "$ST_ROOT/Cargo.toml" \
    -p st-secrets -p st-secrets-cli >&2 || exit
fi
exec "$ST_REAL_CARGO" "$@"
EOF
chmod +x "$stage/wheel_cargo"
build_with_wheel() { # build_with_wheel TARGET MATURIN_ARGS...: the wheel, the library and the tool
  ST_DIST_TARGET="$1" CARGO="$stage/wheel_cargo" "$ST_VENV/bin/maturin" build --release --locked --zig \
    --target "$1" --manifest-path bindings/python/Cargo.toml --out "$out" "${@:2}" >&2
}

prebuild_args=()
for arch in "${ARCHES[@]}"; do
  triple="$arch-unknown-linux-gnu"
  say "$triple (glibc $GLIBC_FLOOR, manylinux_2_28): library, tool and Python wheel"
  build_with_wheel "$triple" --compatibility "manylinux_${GLIBC_FLOOR/./_}"
  name="st-secrets-$version-$arch-linux-gnu"
  scripts/install.sh --prefix "$stage/$name" --target "$triple" >&2
  tarball "$stage" "$name"
  case "$arch" in
    x86_64) node_arch=x64 ;;
    aarch64) node_arch=arm64 ;;
  esac
  prebuild_args+=(--prebuild "linux-$node_arch=$stage/$name/lib/libst_secrets.so.$version")
done

"$ST_VENV/bin/maturin" sdist --manifest-path bindings/python/Cargo.toml --out "$out" >&2
# The tool alone, static with musl: one binary for any Linux container.
for arch in "${ARCHES[@]}"; do
  say "$arch-unknown-linux-musl: the static tool"
  cargo zigbuild --release --locked --target "$arch-unknown-linux-musl" -p st-secrets-cli
  name="st-secrets-$version-$arch-linux-musl" && doc="$stage/$name/share/doc/st_secrets"
  mkdir -p "$stage/$name/bin" "$doc" && cp LICENSE THIRD-PARTY-NOTICES.txt "$doc/"
  "$LLVM_BIN/llvm-strip" -o "$stage/$name/bin/st-secrets" "target/$arch-unknown-linux-musl/release/st-secrets"
  tarball "$stage" "$name"
done

# Apple Silicon, macOS 11+: zig links against its own libSystem stubs (no
# SDK: rustc warns). No .a (zig ignores export lists); nothing here runs
# Mach-O files, tests/dist/run.sh reads them (docs/install-and-release.md).
export MACOSX_DEPLOYMENT_TARGET=11.0
mac="st-secrets-$version-aarch64-apple-darwin" rel=target/aarch64-apple-darwin/release
say "aarch64-apple-darwin (macOS $MACOSX_DEPLOYMENT_TARGET): library, tool, wheel"
build_with_wheel aarch64-apple-darwin
dylib="$(basename "$("$LLVM_BIN/llvm-objdump" --macho --dylib-id "$rel/libst_secrets.dylib" | tail -1)")"
mkdir -p "$stage/$mac"/{lib,include,bin,share/doc/st_secrets}
"$LLVM_BIN/llvm-strip" -x -o "$stage/$mac/lib/$dylib" "$rel/libst_secrets.dylib"
ln -s "$dylib" "$stage/$mac/lib/libst_secrets.dylib"
"$LLVM_BIN/llvm-strip" -x -o "$stage/$mac/bin/st-secrets" "$rel/st-secrets"
cp include/st_secrets.h "$stage/$mac/include/" && cp LICENSE THIRD-PARTY-NOTICES.txt "$stage/$mac/share/doc/st_secrets/"
tarball "$stage" "$mac"
prebuild_args+=(--prebuild "darwin-arm64=$stage/$mac/lib/$dylib")

say "the npm package (linux-x64, linux-arm64, darwin-arm64)"
scripts/package.sh npm --out "$out" "${prebuild_args[@]}" >/dev/null

# The Go module's sources (no tests, no generator), for a replace directive;
# cgo links whichever prefix pkg-config names.
go="st-secrets-go-$version" && mkdir -p "$stage/$go"
cp bindings/go/go.mod LICENSE THIRD-PARTY-NOTICES.txt "$stage/$go/"
find bindings/go -maxdepth 1 -name '*.go' ! -name '*_test.go' -exec cp {} "$stage/$go/" \;
tarball "$stage" "$go"

(cd "$out" && sha256sum -- * >SHA256SUMS)
say "artifacts in $out ($((SECONDS - started)) s)"
(cd "$out" && ls -l --time-style=+ -- * | awk '{printf "%12d  %s\n", $5, $NF}')
