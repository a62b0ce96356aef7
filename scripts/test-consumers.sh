#!/usr/bin/env bash
# The consumer projects of tests/consumers/, built and run as a user's would
# be: st-secrets is installed into a temporary prefix (scripts/install.sh), each
# project is copied to a temporary directory outside the repository and built
# against the prefix only (nothing points into target/), then:
#   - CMake: find_package(st_secrets CONFIG REQUIRED), shared and static;
#   - Make: pkg-config --cflags --libs st_secrets, and --static st_secrets_static;
#   - the prefix copied elsewhere (and the original removed), both rebuilt
#     against the copy (relocatability);
#   - readelf: the installed SONAME, and each binary resolves libst_secrets
#     from the prefix (static ones not at all);
#   - Go: a module outside the binding using it through a replace directive
#     and PKG_CONFIG_PATH; the program runs after the release build directory
#     is out of reach;
#   - Node: a fresh project installs the packed tarball (scripts/pack-node.sh)
#     and calls Manager.get and a cache; then, without the bundled copy, the
#     library is found through the loader's path, and a clear error names the
#     three places when it is nowhere;
#   - install.sh refuses an unwritable prefix, works with spaces in it, and
#     honours DESTDIR.
# Prints one line per check and ends with "consumers: N passed, M failed".
#
#   scripts/test-consumers.sh [--no-build]
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
build_flag=()
[ "${1:-}" = "--no-build" ] && build_flag=(--no-build)

# Outside the repository (whatever TMPDIR says: the test command points it
# into build/), and removed at the end.
work="$(mktemp -d /tmp/st-consumers.XXXXXX)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
log="$work/log"
check() { # check NAME COMMAND...: runs COMMAND, output to the log on failure
  local name="$1"
  shift
  if "$@" >"$log" 2>&1; then
    echo "ok     $name"
    passed=$((passed + 1))
  else
    echo "FAILED $name"
    sed 's/^/    | /' "$log" | tail -40
    failed=$((failed + 1))
  fi
}

secrets="$work/secrets.json"
printf '{"HF_TOKEN": "hf_consumer_demo_value"}\n' >"$secrets"
chmod 600 "$secrets"

prefix="$work/prefix with space"
check "install.sh --prefix (with a space in it)" scripts/install.sh --prefix "$prefix" "${build_flag[@]}"
[ -f "$prefix/lib/libst_secrets.a" ] || { echo "consumers: $passed passed, $((failed + 1)) failed"; exit 1; }

soname_is() {
  readelf -d "$prefix/lib/libst_secrets.so" | grep -q "Library soname: \[libst_secrets.so.0.1\]" &&
    [ "$(readlink "$prefix/lib/libst_secrets.so")" = libst_secrets.so.0.1 ] &&
    [ -f "$prefix/lib/$(readlink "$prefix/lib/libst_secrets.so.0.1")" ]
}
check "installed SONAME libst_secrets.so.0.1 and its symlinks" soname_is

no_debug_info() {
  ! readelf -S "$prefix/lib/libst_secrets.so" | grep -q '\.debug_' &&
    ! readelf -S "$prefix/bin/st-secrets" | grep -q '\.debug_'
}
check "installed library and tool carry no debug info" no_debug_info
check "installed tool runs (st-secrets providers)" env HOME="$work" "$prefix/bin/st-secrets" providers

# Resolves libst_secrets from $2/lib and never from the repository.
resolves_from() { # resolves_from BINARY PREFIX
  local line path
  line="$(ldd "$1" | grep libst_secrets)" || return 1
  echo "$line"
  path="${line#*=> }"
  path="${path% (0x*}"
  [ "$(realpath "$path")" = "$(realpath "$2/lib/libst_secrets.so.0.1")" ] || return 1
  case "$(realpath "$path")" in "$ST_ROOT"/*) echo "resolved inside the repository"; return 1 ;; esac
}
static_binary() { ! readelf -d "$1" | grep -q 'NEEDED.*libst_secrets'; }

build_cmake() { # build_cmake PREFIX DIR
  mkdir -p "$2" && cp tests/consumers/cmake/CMakeLists.txt tests/consumers/c/consumer.c "$2/"
  cmake -S "$2" -B "$2/build" -G Ninja -DCMAKE_PREFIX_PATH="$1" &&
    cmake --build "$2/build" &&
    "$2/build/consumer_shared" "$secrets" && "$2/build/consumer_static" "$secrets" &&
    resolves_from "$2/build/consumer_shared" "$1" && static_binary "$2/build/consumer_static"
}
build_make() { # build_make PREFIX DIR
  mkdir -p "$2" && cp tests/consumers/make/Makefile tests/consumers/c/consumer.c "$2/"
  PKG_CONFIG_PATH="$1/lib/pkgconfig" make -C "$2" &&
    "$2/consumer_shared" "$secrets" && "$2/consumer_static" "$secrets" &&
    resolves_from "$2/consumer_shared" "$1" && static_binary "$2/consumer_static"
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
go_consumer() {
  command -v go >/dev/null || { echo "go is required"; return 1; }
  local dir="$work/go"
  mkdir -p "$dir" && cp tests/consumers/go/go.mod tests/consumers/go/main.go "$dir/"
  (cd "$dir" && go mod edit -replace "example.com/st-secrets/stsecrets=$ST_ROOT/bindings/go" &&
    PKG_CONFIG_PATH="$moved/lib/pkgconfig" go build -o consumer .) || return 1
  resolves_from "$dir/consumer" "$moved" || return 1
  # The program does not reach into the build tree: hide it while it runs.
  env -u LD_LIBRARY_PATH "$dir/consumer" "$secrets"
}
check "Go module via replace + PKG_CONFIG_PATH, linked from the prefix" go_consumer
go_static_consumer() {
  local dir="$work/go"
  (cd "$dir" && PKG_CONFIG_PATH="$moved/lib/pkgconfig" go build -tags st_static -o consumer_static .) &&
    static_binary "$dir/consumer_static" && "$dir/consumer_static" "$secrets"
}
check "Go module, -tags st_static, needs no libst_secrets.so" go_static_consumer

# Node: the packed tarball in a fresh project.
node_consumer() {
  command -v npm >/dev/null || { echo "npm is required"; return 1; }
  local tarball dir="$work/node"
  tarball="$(scripts/pack-node.sh --out "$work/npm" "${build_flag[@]}")" || return 1
  if tar tzf "$tarball" | grep -Ev '^package/(index\.js|index\.d\.ts|signatures\.js|package\.json|README\.md|prebuilds/[^/]+/libst_secrets\.so)$'; then
    echo "the tarball holds files beyond the package's own (above)"
    return 1
  fi
  mkdir -p "$dir" && cp tests/consumers/node/package.json tests/consumers/node/main.js "$dir/"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$tarball") || return 1
  (cd "$dir" && env -u ST_SECRETS_LIB node main.js "$secrets")
}
check "Node project installs the packed tarball (bundled library)" node_consumer
node_system_loader() {
  local dir="$work/node"
  rm -rf "$dir/node_modules/st-secrets/prebuilds"
  (cd "$dir" && env -u ST_SECRETS_LIB LD_LIBRARY_PATH="$moved/lib" node main.js "$secrets")
}
check "Node package without its bundled copy: the loader's path (installed prefix)" node_system_loader
node_missing_library() {
  local out
  out="$(cd "$work/node" && env -u ST_SECRETS_LIB -u LD_LIBRARY_PATH node main.js "$secrets" 2>&1)" && return 1
  echo "$out"
  grep -q 'ST_SECRETS_LIB' <<<"$out" && grep -q 'bundled' <<<"$out" && grep -q 'libst_secrets.so.0.1' <<<"$out"
}
check "Node: a missing library is an error naming the three places" node_missing_library

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

echo
echo "consumers: $passed passed, $failed failed"
[ "$failed" = 0 ]
