#!/usr/bin/env bash
# Checks the release artifacts of scripts/dist.sh as the machines training
# runs on would meet them:
#
#   tests/dist/run.sh [DIST_DIR]      (default: build/dist)
#
#   - SHA256SUMS checks every artifact, and lists each;
#   - each carries the licence and the third-party notices;
#   - the static musl tools: no interpreter, no NEEDED, they run (qemu);
#   - macOS arm64: the Mach-O files read with llvm-objdump (arm64, macOS
#     11.0, system libraries only, install name, exports), the wheel's tag;
#   - every ELF file shipped (tarballs, wheels, npm prebuilds) is for its
#     architecture and needs no glibc symbol version above 2.28 (read from
#     its version-needs section); the same reading of this host's own build
#     (glibc 2.36) must exceed it, so the check is live;
#   - `auditwheel show` finds each wheel consistent with manylinux_2_28;
#   - each static library exports exactly the header's st_* functions;
#   - aarch64: the C test programs (tests/c, cross-compiled by Debian's
#     gcc-aarch64-linux-gnu) against the aarch64 .so and .a, and the tool, run
#     under qemu-aarch64 with libc6-arm64-cross as its root;
#   - a trainer-shaped program links the x86_64 libst_secrets.a beside the
#     system's libsqlite3 and a second Rust static library, and each answers
#     its own calls; with the unlocalized staticlib cargo builds, the same
#     program's SQLite calls reach the bundled SQLite (the check is live);
#   - the Go module tarball: the module st-secrets/stsecrets, its sources
#     and nothing else (no tests, no generator);
#   - each prefix tarball, unpacked somewhere new, passes the consumer
#     projects (tests/consumers/run.sh --tarball, with the Go module
#     tarball as the replace target; aarch64 under qemu).
# Prints one line per check and ends with "dist: N passed, M failed".
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ST_ROOT"
dist="${1:-$ST_ROOT/build/dist}"
case "$dist" in /*) ;; *) dist="$PWD/$dist" ;; esac
[ -f "$dist/SHA256SUMS" ] || die "no artifacts in $dist: run scripts/dist.sh first"
ensure_dist_tools
FLOOR=2.28
version="$(sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -1)"

work="$(mktemp -d /tmp/st-dist.XXXXXX)"
trap 'rm -rf "$work"' EXIT
CHECK_LOG="$work/log"

sums() {
  (cd "$dist" && sha256sum -c --strict SHA256SUMS) || return 1
  local f
  for f in "$dist"/*; do
    [ "$(basename "$f")" = SHA256SUMS ] && continue
    grep -q " $(basename "$f")\$" "$dist/SHA256SUMS" || { echo "not in SHA256SUMS: $f"; return 1; }
  done
}
check "SHA256SUMS checks every artifact" sums

# Each architecture's files, unpacked: its tarball, its wheel, its prebuild.
declare -A node_arch=([x86_64]=x64 [aarch64]=arm64)
declare -A elf_machine=([x86_64]="Advanced Micro Devices X86-64" [aarch64]=AArch64)
unpack_all() {
  local arch
  mkdir -p "$work/npm" && tar -xzf "$dist/st-secrets-$version.tgz" -C "$work/npm" || return 1
  for arch in x86_64 aarch64; do
    mkdir -p "$work/$arch/prefix" "$work/$arch/wheel" || return 1
    tar -xzf "$dist/st-secrets-$version-$arch-linux-gnu.tar.gz" -C "$work/$arch/prefix" --strip-components=1 || return 1
    python3 -m zipfile -e "$dist/st_secrets-$version-cp310-abi3-manylinux_2_28_$arch.whl" "$work/$arch/wheel" || return 1
    [ -f "$work/npm/package/prebuilds/linux-${node_arch[$arch]}/libst_secrets.so" ] ||
      { echo "the npm package has no linux-${node_arch[$arch]} prebuild"; return 1; }
  done
}
check "artifacts: two prefix tarballs, two wheels, the npm package (linux-x64, linux-arm64)" unpack_all

# Each artifact carries the licence and the third-party notices, as committed.
licensed() { cmp LICENSE "$1/LICENSE" && cmp THIRD-PARTY-NOTICES.txt "$1/THIRD-PARTY-NOTICES.txt"; }
notices() {
  local d
  mkdir -p "$work/sdist" && tar -xzf "$dist/st_secrets-$version.tar.gz" -C "$work/sdist" || return 1
  for d in "$work/sdist/st_secrets-$version" "$work/npm/package" "$work"/{x86_64,aarch64}/prefix/share/doc/st_secrets \
    "$work"/{x86_64,aarch64}/wheel/st_secrets-"$version".dist-info/licenses; do
    licensed "$d" || return 1
    echo "${d#"$work/"}: LICENSE, THIRD-PARTY-NOTICES.txt"
  done
}
check "every artifact (the sdist too) carries LICENSE and THIRD-PARTY-NOTICES.txt" notices

# The highest GLIBC_x.y an ELF file needs (empty when none).
glibc_needed() {
  readelf -W --version-info "$1" | grep -oE 'Name: GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' |
    sed 's/Name: GLIBC_//' | sort -V | tail -1
}
# Every ELF file under $2 is an $1 file needing at most glibc $FLOOR.
elf_floor() { # elf_floor ARCH DIR...
  local arch="$1" f need n=0
  shift
  while IFS= read -r -d '' f; do
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    readelf -h "$f" | grep -q "Machine: *${elf_machine[$arch]}" || { echo "$f: not an $arch file"; return 1; }
    need="$(glibc_needed "$f")"
    echo "$f: GLIBC ${need:-none}"
    if [ -n "$need" ] && ! version_at_least "$FLOOR" "$need"; then
      echo "$f needs GLIBC_$need, above the $FLOOR floor"
      return 1
    fi
    n=$((n + 1))
  done < <(find "$@" -type f -print0)
  [ "$n" -ge 3 ] || { echo "only $n ELF files found"; return 1; }
}
for arch in x86_64 aarch64; do
  check "$arch: every shipped ELF file needs glibc <= $FLOOR (tarball, wheel, npm prebuild)" \
    elf_floor "$arch" "$work/$arch/prefix/lib" "$work/$arch/prefix/bin" "$work/$arch/wheel" \
    "$work/npm/package/prebuilds/linux-${node_arch[$arch]}"
done
host_exceeds() {
  local need host
  host="$(ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+$')"
  version_at_least "$host" 2.29 || { echo "this host's glibc $host is not above $FLOOR: nothing to show"; return 0; }
  cargo_build --release -q || return 1
  need="$(glibc_needed target/release/libst_secrets.so)"
  echo "host build (glibc $host): needs GLIBC_$need"
  ! version_at_least "$FLOOR" "$need"
}
check "the same reading of this host's own build finds a version above $FLOOR" host_exceeds

auditwheel_show() { # auditwheel_show ARCH
  local out
  out="$("$ST_VENV/bin/auditwheel" show "$dist/st_secrets-$version-cp310-abi3-manylinux_2_28_$1.whl" 2>&1)"
  echo "$out"
  # auditwheel wraps its lines: compare with the whitespace joined.
  tr -s ' \n' '  ' <<<"$out" | grep -q "consistent with the following platform tag: \"manylinux_2_28_$1\""
}
for arch in x86_64 aarch64; do
  check "auditwheel show: the $arch wheel is manylinux_2_28_$arch" auditwheel_show "$arch"
done

# The functions the header declares.
# (a declaration's first line names it, followed by its parenthesis; comment
# lines, which start with "*" or "/", are skipped).
grep -vE '^\s*(\*|/)' include/st_secrets.h | grep -oE '\bst_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$work/header-functions"
static_exports() { # static_exports ARCH
  local tp=""
  [ "$1" = "$(uname -m)" ] || tp="$1-linux-gnu-"
  "${tp}nm" -g --defined-only "$work/$1/prefix/lib/libst_secrets.a" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u >"$work/exports-$1"
  echo "$(wc -l <"$work/exports-$1") global symbols; the header declares $(wc -l <"$work/header-functions") functions"
  diff "$work/header-functions" "$work/exports-$1"
}
for arch in x86_64 aarch64; do
  check "$arch: libst_secrets.a exports exactly the header's st_* functions" static_exports "$arch"
done

# aarch64 under qemu-user.
qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
arm_ctest() {
  local p="$work/aarch64/prefix" libs
  libs="$(sed -n 's/^Libs.private: //p' "$p/lib/pkgconfig/st_secrets.pc")"
  cmake -S tests/c -B "$work/ctest-aarch64" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$ST_ROOT/tests/dist/aarch64-linux-gnu.cmake" \
    -DST_LIB_DIR="$p/lib" -DST_INCLUDE_DIR="$p/include" -DST_NATIVE_STATIC_LIBS="$libs" &&
    cmake --build "$work/ctest-aarch64" &&
    (cd "$work/ctest-aarch64" && HOME="$work" ctest --output-on-failure -j2) &&
    readelf -h "$work/ctest-aarch64/test_core" | grep -q 'Machine: *AArch64'
}
check "aarch64: the C test programs (tests/c, shared and static) under qemu-aarch64" arm_ctest
arm_tool() ( # a subshell: it sets HOME and the key for the tool alone
  local st=("${qemu[@]}" "$work/aarch64/prefix/bin/st-secrets") home="$work/arm-home" out ct
  mkdir -p "$home/.simpletuner" && chmod 700 "$home/.simpletuner"
  printf '{"HF_TOKEN": "hf_arm_demo_value"}\n' >"$home/.simpletuner/secrets.json"
  chmod 600 "$home/.simpletuner/secrets.json"
  export HOME="$home" SIMPLETUNER_CREDENTIAL_KEY="arm-test-key"
  arm_failed() { echo "arm_tool: $1 failed"; exit 1; } # exits the subshell
  [ "$("${st[@]}" --version)" = "st-secrets $version" ] || arm_failed "--version"
  "${st[@]}" providers | grep -q '^file *available' || arm_failed providers
  [ "$("${st[@]}" get HF_TOKEN)" = hf_arm_demo_value ] || arm_failed get
  ct="$(printf 'r8_secret' | "${st[@]}" encrypt)" && [ "$(printf '%s' "$ct" | "${st[@]}" decrypt)" = r8_secret ] ||
    arm_failed "encrypt/decrypt"
  out="$("${st[@]}" run -- sh -c 'printf "%s" "$HF_TOKEN"')" || arm_failed "run (exit $?)"
  [ "$out" = "<concealed by st-secrets>" ] || arm_failed "run printed '$out':"
  "${st[@]}" --db "$home/jobs.db" config set replicate <<<'{"region": "us-east-1"}' &&
    "${st[@]}" --db "$home/jobs.db" config get replicate | grep -q us-east-1 || arm_failed "config set/get"
)
check "aarch64: the tool under qemu-aarch64 (version, providers, get, encrypt/decrypt, run, store)" arm_tool

# Beside the system's SQLite and a second Rust static library.
static_beside() { # static_beside LIBST_A EXPECT(pass|sqlite-mixup)
  local dir="$work/static-beside" out rc=0
  rm -rf "$dir" && mkdir -p "$dir" && cp -R tests/consumers/static-beside/. "$dir/"
  (cd "$dir/wordcount" && CARGO_TARGET_DIR="$dir/target" cargo build --release --quiet) || return 1
  printf '{"HF_TOKEN": "hf_beside_demo_value"}\n' >"$dir/secrets.json" && chmod 600 "$dir/secrets.json"
  cc -std=c11 -O2 -Wall -Wextra -Werror -I"$work/x86_64/prefix/include" "$dir/main.c" -o "$dir/app" \
    "$1" "$dir/target/release/libwordcount.a" -lsqlite3 \
    $(sed -n 's/^Libs.private: //p' "$work/x86_64/prefix/lib/pkgconfig/st_secrets.pc") || return 1
  out="$(HOME="$dir" "$dir/app" "$dir/secrets.json" "$dir/store.db" 2>&1)" || rc=$?
  echo "$out"
  case "$2" in
    pass) [ "$rc" = 0 ] ;;
    sqlite-mixup) [ "$rc" != 0 ] && grep -q 'reach another SQLite' <<<"$out" ;;
  esac
}
check "x86_64 libst_secrets.a beside -lsqlite3 and a second Rust staticlib: each answers its own calls" \
  static_beside "$work/x86_64/prefix/lib/libst_secrets.a" pass
unlocalized() {
  cargo_build --release -q && static_beside "$ST_ROOT/target/release/libst_secrets.a" sqlite-mixup
}
check "the same program with cargo's unlocalized staticlib: its SQLite calls reach the bundled SQLite" unlocalized

# The static musl tool: of its architecture, no interpreter and no shared
# library at all, and it runs (aarch64 under qemu-aarch64, with no root).
musl_tool() { # musl_tool ARCH
  local d="$work/musl-$1" f run=()
  [ "$1" = x86_64 ] || run=(qemu-aarch64)
  mkdir -p "$d" && tar -xzf "$dist/st-secrets-$version-$1-linux-musl.tar.gz" -C "$d" --strip-components=1 || return 1
  f="$d/bin/st-secrets"
  readelf -h "$f" | grep -q "Machine: *${elf_machine[$1]}" || { echo "$f: not an $1 file"; return 1; }
  if readelf -lW "$f" | grep -q INTERP || readelf -d "$f" | grep -q NEEDED; then echo "$f is not static"; return 1; fi
  licensed "$d/share/doc/st_secrets" && env -i HOME="$d" "${run[@]}" "$f" version && env -i HOME="$d" "${run[@]}" "$f" providers
}
for arch in x86_64 aarch64; do
  check "$arch-linux-musl: the tool is static and runs (version, providers)" musl_tool "$arch"
done

# Apple Silicon: nothing here runs a Mach-O file. What can be read is checked
# with rustup's llvm-tools: each file is arm64 with macOS 11.0 as its minimum,
# loads only the system's libraries (the extension also the interpreter's
# symbols, looked up at load time), the .dylib is named as the SONAME rule
# says and exports every function of the header, the wheel is tagged for
# macOS 11 arm64 and abi3, and the npm package carries the same .dylib.
mac="$work/macos"
macho() { # macho FILE KIND: arm64, KIND (DYLIB, EXECUTE, BUNDLE), minos 11.0, system libraries
  local headers
  headers="$("$LLVM_BIN/llvm-objdump" --macho --private-headers "$1")" || return 1
  grep -qE "^ *MH_MAGIC_64 +ARM64 .* $2 .*TWOLEVEL" <<<"$headers" || { echo "$1: not an arm64 $2"; return 1; }
  grep -A4 LC_BUILD_VERSION <<<"$headers" | grep -qE 'minos 11\.0$' || { echo "$1: minimum macOS is not 11.0"; return 1; }
  "$LLVM_BIN/llvm-objdump" --macho --dylibs-used "$1" | tail -n +2 | grep -vE '^\s+(/usr/lib/|@rpath/(libst_secrets|_native))' &&
    { echo "$1 loads a library macOS does not have"; return 1; }
  echo "$1: arm64 $2, macOS 11.0+, system libraries only"
}
macos() {
  mkdir -p "$mac/prefix" "$mac/wheel" &&
    tar -xzf "$dist/st-secrets-$version-aarch64-apple-darwin.tar.gz" -C "$mac/prefix" --strip-components=1 &&
    python3 -m zipfile -e "$dist/st_secrets-$version-cp310-abi3-macosx_11_0_arm64.whl" "$mac/wheel" || return 1
  local dylib="$mac/prefix/lib/libst_secrets.dylib" id abi
  # The ABI version the Linux SONAME carries (build.rs's rule): libst_secrets.so.<abi>.
  abi="$(readelf -d "$work/x86_64/prefix/lib/libst_secrets.so" | sed -nE 's/.*soname: \[libst_secrets\.so\.(.*)\]/\1/p')"
  macho "$dylib" DYLIB && macho "$mac/prefix/bin/st-secrets" EXECUTE && macho "$mac/wheel/st_secrets/_native.abi3.so" DYLIB || return 1
  id="$("$LLVM_BIN/llvm-objdump" --macho --dylib-id "$dylib" | tail -1)"
  [ "$id" = "@rpath/libst_secrets.$abi.dylib" ] || { echo "install name $id"; return 1; }
  "$LLVM_BIN/llvm-nm" -gU "$dylib" | awk '$3 ~ /^_st_/ {print substr($3, 2)}' | sort -u >"$mac/exports"
  diff "$work/header-functions" "$mac/exports" || return 1
  grep -qx 'Tag: cp310-abi3-macosx_11_0_arm64' "$mac"/wheel/*.dist-info/WHEEL || { echo "wheel tag"; return 1; }
  cmp "$work/npm/package/prebuilds/darwin-arm64/libst_secrets.dylib" "$(realpath "$dylib")" || return 1
  licensed "$mac/prefix/share/doc/st_secrets" && licensed "$mac/wheel/st_secrets-$version.dist-info/licenses" || return 1
  echo "install name $id; exports the header's $(wc -l <"$mac/exports") functions; wheel cp310-abi3-macosx_11_0_arm64; npm darwin-arm64"
}
check "macOS arm64: .dylib, tool, wheel and npm prebuild read with llvm-objdump; licence and notices (nothing here runs them)" macos

# The Go module: what a replace directive points at.
go_module() {
  local d="$work/go" listed
  mkdir -p "$d" && tar -xzf "$dist/st-secrets-go-$version.tar.gz" -C "$d" --strip-components=1 || return 1
  grep -qx 'module st-secrets/stsecrets' "$d/go.mod" || { echo "go.mod names another module"; return 1; }
  listed="$(cd "$d" && find . -type f | sort | tr '\n' ' ')"
  echo "$listed"
  [ -z "$(cd "$d" && find . -name '*_test.go' -o -path ./internal -prune)" ] || { echo "tests or the generator shipped"; return 1; }
  cmp -s "$d/stsecrets.go" bindings/go/stsecrets.go && licensed "$d"
}
check "the Go module tarball: st-secrets/stsecrets, its sources, licence and notices" go_module

# Each tarball as a prefix for the consumer projects (their own lines shown).
for arch in x86_64 aarch64; do
  rc=0
  tests/consumers/run.sh --tarball "$dist/st-secrets-$version-$arch-linux-gnu.tar.gz" \
    --npm "$dist/st-secrets-$version.tgz" --go "$dist/st-secrets-go-$version.tar.gz" --arch "$arch" 2>&1 | sed 's/^/       /' || rc=$?
  counted "$arch tarball: the consumer projects (CMake, pkg-config, the Go module tarball, Node)" "$rc"
done

checks_end dist
