#!/usr/bin/env bash
# Installs st-secrets into a prefix, the way C/C++, Go and shell users expect:
#
#   scripts/install.sh --prefix DIR [--no-build] [--no-rpath]
#
#   lib/libst_secrets.so.X.Y.Z, .so.<soname version>, .so   the shared library (SONAME per the README's ABI policy)
#   lib/libst_secrets.a                                       the static library
#   include/st_secrets.h
#   lib/pkgconfig/st_secrets.pc, st_secrets_static.pc          relocatable (${pcfiledir})
#   lib/cmake/st_secrets/st_secretsConfig.cmake, ...Version   targets st_secrets::st_secrets, ::st_secrets_static
#   bin/st-secrets                                            the command-line tool
#   share/st_secrets/install-manifest.txt                     what was installed (for removal)
#
# It builds the release library and tool first (cargo; skip with --no-build)
# and installs stripped copies (no debug info, no local symbols). DESTDIR is
# honoured as packagers expect: files go to $DESTDIR$PREFIX, and the files
# themselves name nothing absolute, so the prefix can be moved or copied.
# --no-rpath leaves `-Wl,-rpath,${libdir}` out of st_secrets.pc (for a prefix
# the system loader searches anyway, such as /usr).
#
# Everything is staged in a temporary directory first; a failure while copying
# into the prefix removes what this run installed and says so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix=""
build=1
rpath=1
usage() {
  echo "usage: scripts/install.sh --prefix DIR [--no-build] [--no-rpath]   (DESTDIR is honoured)" >&2
  exit 2
}
while (($#)); do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --no-build) build=0; shift ;;
    --no-rpath) rpath=0; shift ;;
    -h | --help) usage ;;
    *) echo "install.sh: unknown argument: $1" >&2; usage ;;
  esac
done
[ -n "$prefix" ] || usage
case "$prefix" in
  /*) ;;
  *) prefix="$PWD/$prefix" ;;
esac
prefix="${prefix%/}"
dest="${DESTDIR:-}$prefix"
fail() { echo "install.sh: $*" >&2; exit 1; }

# The destination must exist or be creatable, and be writable, before anything
# is built or copied.
mkdir -p -- "$dest" 2>/dev/null || fail "cannot create the prefix '$dest' (permission denied or not a directory)"
[ -d "$dest" ] && [ -w "$dest" ] || fail "the prefix '$dest' is not a writable directory"

version="$(sed -nE 's/^version = "([^"]+)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
realname="libst_secrets.so.$version"

if [ "$build" = 1 ]; then
  command -v cargo >/dev/null || fail "cargo is required to build (or pass --no-build after a release build)"
  (cd "$ROOT" && cargo build --release -p st-secrets -p st-secrets-cli) >&2
fi
rel="$ROOT/target/release"
for f in libst_secrets.so libst_secrets.a st-secrets native-static-libs.txt \
  pkgconfig-install/st_secrets.pc pkgconfig-install/st_secrets_static.pc \
  cmake-install/st_secretsConfig.cmake cmake-install/st_secretsConfigVersion.cmake; do
  [ -e "$rel/$f" ] || fail "missing $rel/$f: run cargo build --release -p st-secrets -p st-secrets-cli (or drop --no-build)"
done
# The SONAME is build.rs's (the README's ABI policy): read it from the library.
soname="$(readelf -d "$rel/libst_secrets.so" | sed -nE 's/.*Library soname: \[(.*)\].*/\1/p')"
case "$soname" in
  libst_secrets.so.*) ;;
  *) fail "the built library has no SONAME of the form libst_secrets.so.N (got '$soname'): rebuild it" ;;
esac
native_libs="$(cat "$rel/native-static-libs.txt")"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib/pkgconfig" "$stage/lib/cmake/st_secrets" "$stage/include" "$stage/bin" "$stage/share/st_secrets"

strip --strip-unneeded -o "$stage/lib/$realname" "$rel/libst_secrets.so"
chmod 0755 "$stage/lib/$realname"
ln -s "$realname" "$stage/lib/$soname"
ln -s "$soname" "$stage/lib/libst_secrets.so"
strip --strip-debug -o "$stage/lib/libst_secrets.a" "$rel/libst_secrets.a"
chmod 0644 "$stage/lib/libst_secrets.a"
install -m 0644 "$ROOT/include/st_secrets.h" "$stage/include/st_secrets.h"
strip --strip-unneeded -o "$stage/bin/st-secrets" "$rel/st-secrets"
chmod 0755 "$stage/bin/st-secrets"

# The .pc files are build.rs's relocatable ones; --no-rpath drops the rpath.
for pc in st_secrets.pc st_secrets_static.pc; do
  if [ "$rpath" = 1 ]; then
    install -m 0644 "$rel/pkgconfig-install/$pc" "$stage/lib/pkgconfig/$pc"
  else
    sed 's/ -Wl,-rpath,\${libdir}//' "$rel/pkgconfig-install/$pc" >"$stage/lib/pkgconfig/$pc"
    chmod 0644 "$stage/lib/pkgconfig/$pc"
  fi
done

# The CMake package is build.rs's too (relocatable; its version check
# follows the SONAME rule).
for f in st_secretsConfig.cmake st_secretsConfigVersion.cmake; do
  install -m 0644 "$rel/cmake-install/$f" "$stage/lib/cmake/st_secrets/$f"
done

(cd "$stage" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) >"$stage/share/st_secrets/install-manifest.txt"
echo "share/st_secrets/install-manifest.txt" >>"$stage/share/st_secrets/install-manifest.txt"

# Copy into the prefix, remembering what was written; undo on failure.
installed=()
undo() {
  local f
  for f in "${installed[@]}"; do rm -f -- "$dest/$f"; done
  echo "install.sh: FAILED while copying into '$dest'; removed the ${#installed[@]} file(s) this run had installed there" >&2
}
while IFS= read -r f; do
  dir="$(dirname -- "$f")"
  if ! mkdir -p -- "$dest/$dir" || ! cp -P -f -- "$stage/$f" "$dest/$f"; then
    undo
    exit 1
  fi
  installed+=("$f")
done <"$stage/share/st_secrets/install-manifest.txt"

echo "installed st-secrets $version into $dest (${#installed[@]} files; list: $dest/share/st_secrets/install-manifest.txt)"
