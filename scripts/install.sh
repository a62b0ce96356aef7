#!/usr/bin/env bash
# Installs st-secrets into a prefix, the way C/C++, Go and shell users expect:
#
#   scripts/install.sh --prefix DIR [--libdir DIR] [--includedir DIR]
#                      [--target TRIPLE] [--no-build] [--no-rpath]
#   scripts/install.sh --prefix DIR --uninstall
#
# lays out the prefix docs/install-and-release.md describes: the shared
# library with its SONAME links, the static one exporting only st_*
# (localize_static below), the header, both .pc files and the CMake package
# (relocatable), bin/st-secrets with its man pages and completions, the Slurm
# plugin where spank.h is, the licence and third-party notices in
# share/doc/st_secrets, and share/st_secrets/install-manifest.txt.
#
# --libdir and --includedir (default `lib` and `include`) are relative to the prefix, or absolute inside
# it: `lib64` (Fedora, RHEL), `lib/x86_64-linux-gnu` (Debian multiarch); the .pc files and the CMake
# package follow them, and stay relocatable. The man pages and completions are rendered at build time
# from the tool's own command definitions (cli/build.rs).
#
# It builds the release library and tool first (cargo; skip with --no-build) and installs stripped copies
# (no debug info, no local symbols). --target installs a build for that target triple from
# target/TRIPLE/release, made beforehand (scripts/dist.sh makes them; implies --no-build), with that
# architecture's binutils (`aarch64-linux-gnu-strip`, ...). DESTDIR is honoured as packagers expect:
# files go to $DESTDIR$PREFIX, and the files themselves name nothing absolute, so the prefix can be
# moved or copied. --no-rpath leaves `-Wl,-rpath,${libdir}` out of st_secrets.pc (for a prefix the
# system loader searches anyway, such as /usr).
#
# --uninstall removes the files the prefix's manifest lists (the manifest too)
# and the directories that leaves empty; nothing else.
#
# Everything is staged in a temporary directory first; a failure while copying
# into the prefix removes what this run installed and says so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="" libdir=lib includedir=include target="" build=1 rpath=1 uninstall=0
usage() {
  echo "usage: scripts/install.sh --prefix DIR [--libdir DIR] [--includedir DIR] [--target TRIPLE] [--no-build]
       [--no-rpath]   (DESTDIR is honoured);  scripts/install.sh --prefix DIR --uninstall" >&2
  exit 2
}
while (($#)); do
  case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac # --opt=value
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; prefix="$2"; shift 2 ;;
    --libdir) [ $# -ge 2 ] || usage; libdir="$2"; shift 2 ;;
    --includedir) [ $# -ge 2 ] || usage; includedir="$2"; shift 2 ;;
    --target) [ $# -ge 2 ] || usage; target="$2"; build=0; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-rpath) rpath=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h | --help) usage ;;
    *) echo "install.sh: unknown argument: $1" >&2; usage ;;
  esac
done
[ -n "$prefix" ] || usage
[[ "$prefix" == /* ]] || prefix="$PWD/$prefix"; prefix="${prefix%/}"
dest="${DESTDIR:-}$prefix"
fail() { echo "install.sh: $*" >&2; exit 1; }

if [ "$uninstall" = 1 ]; then
  manifest="$dest/share/st_secrets/install-manifest.txt"
  [ -f "$manifest" ] || fail "no st-secrets installed in '$dest' (no $manifest)"
  ! grep -qE '^/|(^|/)\.\.(/|$)|^$' "$manifest" || fail "$manifest names a path outside the prefix: nothing removed"
  mapfile -t files <"$manifest"
  for f in "${files[@]}"; do # each file, then its directories once they are empty
    rm -f -- "$dest/$f" && (cd "$dest" && rmdir -p --ignore-fail-on-non-empty -- "${f%/*}" 2>/dev/null) || true
  done
  echo "removed st-secrets from $dest (${#files[@]} files)" && exit 0
fi

# --libdir/--includedir: a clean path below the prefix, kept relative to it.
below_prefix() { # below_prefix OPTION VALUE -> the relative path
  local v="${2%/}"
  case "$v" in
    "$prefix"/*) v="${v#"$prefix"/}" ;;
    /*) fail "$1 '$2' is not inside the prefix '$prefix' (give it relative to the prefix)" ;;
  esac
  case "/$v/" in
    //* | */./* | */../*) fail "$1 '$2' must be a plain directory below the prefix (no '.', '..' or empty parts)" ;;
  esac
  printf '%s' "$v"
}
libdir="$(below_prefix --libdir "$libdir")"
includedir="$(below_prefix --includedir "$includedir")"
# How far the .pc directory (libdir/pkgconfig) and the CMake package's
# (libdir/cmake/st_secrets) are below the prefix, as "../" steps.
ups() { # ups EXTRA_LEVELS
  local n=$(($(tr -cd / <<<"$libdir/" | wc -c) + $1)) out="" i
  for ((i = 0; i < n; i++)); do out="$out/.."; done
  printf '%s' "${out#/}"
}

# The destination must exist or be creatable, and be writable, before anything
# is built or copied.
mkdir -p -- "$dest" 2>/dev/null || fail "cannot create the prefix '$dest' (permission denied or not a directory)"
[ -d "$dest" ] && [ -w "$dest" ] || fail "the prefix '$dest' is not a writable directory"

version="$(sed -nE 's/^version = "([^"]+)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
realname="libst_secrets.so.$version"

if [ "$build" = 1 ]; then
  command -v cargo >/dev/null || fail "cargo is required to build (or pass --no-build after a release build)"
  (cd "$ROOT" && cargo build --locked --release -p st-secrets -p st-secrets-cli) >&2 # lib.sh's cargo_build
fi
rel="$ROOT/target/release"
# binutils for the artifacts' architecture: the host's own, or the cross set
# (Debian's binutils-aarch64-linux-gnu) for another.
tools=""
if [ -n "$target" ]; then
  rel="$ROOT/target/$target/release"
  arch="${target%%-*}"
  if [ "$arch" != "$(uname -m)" ]; then
    tools="$arch-linux-gnu-"
    command -v "${tools}strip" >/dev/null ||
      fail "${tools}strip is missing: install binutils for $arch (apt-get install binutils-$arch-linux-gnu)"
  fi
fi
for f in libst_secrets.so libst_secrets.a st-secrets native-static-libs.txt \
  pkgconfig-install/st_secrets.pc pkgconfig-install/st_secrets_static.pc \
  cmake-install/st_secretsConfig.cmake cmake-install/st_secretsConfigVersion.cmake; do
  [ -e "$rel/$f" ] || fail "missing $rel/$f: run cargo build --release -p st-secrets -p st-secrets-cli" \
    "(or drop --no-build; for --target, scripts/dist.sh)"
done
[ -f "$rel/share-install/man/man1/st-secrets.1" ] ||
  fail "missing $rel/share-install (the tool's man pages and completions): rebuild st-secrets-cli"
# The SONAME is build.rs's (the ABI policy): read it from the library.
soname="$(readelf -d "$rel/libst_secrets.so" | sed -nE 's/.*Library soname: \[(.*)\].*/\1/p')"
case "$soname" in
  libst_secrets.so.*) ;;
  *) fail "the built library has no SONAME of the form libst_secrets.so.N (got '$soname'): rebuild it" ;;
esac

# Makes the static library link beside anything: every global symbol of the
# Rust staticlib but the C ABI's `st_*` becomes local (a program that also
# links the system's SQLite or another Rust static library would otherwise
# get duplicate definitions, or bind its SQLite calls to ours). With binutils
# ($3: a cross prefix such as `aarch64-linux-gnu-`): `ld -r --whole-archive`
# makes one relocatable object, so references between the crates resolve
# inside it; `objcopy` drops the standard library's LLVM bitcode (read only
# by rustc's LTO) and debug info, keeps the defined `st_*` globals only, and
# renames each COMDAT group's signature with the prefix `st_secrets.` (under
# the shared name, `DW.ref.rust_eh_personality`, a linker would keep one
# library's group and drop the other's); `ar` archives the one object.
# Checks that exactly the `st_*` functions of $1 are exported.
localize_static() { # localize_static IN.a OUT.a [TOOL_PREFIX]
  local in="$1" out="$2" tp="${3:-}" tmp t
  for t in ld objcopy nm ar; do
    command -v "$tp$t" >/dev/null || fail "$tp$t is missing (binutils${tp:+ for ${tp%-}})"
  done
  tmp="$stage/localize"
  mkdir -p "$tmp"
  exported() { "${tp}nm" -g --defined-only "$1" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u; }
  exported "$in" | grep -E '^st_[a-z0-9_]+$' >"$tmp/keep" || fail "$in defines no st_* function"
  "${tp}ld" -r --whole-archive "$in" -o "$tmp/all.o"
  readelf -gW "$tmp/all.o" |
    sed -nE 's/^COMDAT group section .*\[([^]]+)\] contains .*/\1 st_secrets.\1/p' >"$tmp/groups"
  "${tp}objcopy" --remove-section=.llvmbc --remove-section=.llvmcmd --strip-debug \
    --redefine-syms="$tmp/groups" --keep-global-symbols="$tmp/keep" "$tmp/all.o" "$tmp/st_secrets.o"
  if readelf -gW "$tmp/st_secrets.o" | grep 'COMDAT group section' | grep -v '\[st_secrets\.'; then
    fail "a COMDAT group kept a shared signature (above)"
  fi
  "${tp}ar" rcD "$out" "$tmp/st_secrets.o"
  exported "$out" >"$tmp/left"
  cmp -s "$tmp/left" "$tmp/keep" ||
    { diff "$tmp/keep" "$tmp/left" | head -20 >&2; fail "the static library exports other symbols than st_* (above)"; }
  rm -rf "$tmp"
}
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
L="$stage/$libdir"
mkdir -p "$L/pkgconfig" "$L/cmake/st_secrets" "$stage/$includedir" "$stage/bin" "$stage/share/st_secrets"

"${tools}strip" --strip-unneeded -o "$L/$realname" "$rel/libst_secrets.so"
chmod 0755 "$L/$realname"
ln -s "$realname" "$L/$soname"
ln -s "$soname" "$L/libst_secrets.so"
localize_static "$rel/libst_secrets.a" "$L/libst_secrets.a" "$tools"
chmod 0644 "$L/libst_secrets.a"
install -m 0644 "$ROOT/include/st_secrets.h" "$stage/$includedir/st_secrets.h"
"${tools}strip" --strip-unneeded -o "$stage/bin/st-secrets" "$rel/st-secrets"
chmod 0755 "$stage/bin/st-secrets"
# The Slurm plugin (slurm/) in libdir/slurm, where Slurm's spank.h is (Debian's libslurm-dev).
if [ -z "$target" ] && [ -f "${SLURM_INCLUDE:-/usr/include}/slurm/spank.h" ]; then
  mkdir -p "$L/slurm" && make -s -C "$ROOT/slurm" OUT="$L/slurm/st_secrets_spank.so" LIBDIR="$L" >&2
fi

# The man pages and completions (cli/build.rs), where man and each shell
# look under a prefix.
cp -R "$rel/share-install/." "$stage/share/"
mkdir -p "$stage/share/doc/st_secrets" &&
  cp "$ROOT/LICENSE" "$ROOT/THIRD-PARTY-NOTICES.txt" "$stage/share/doc/st_secrets/"
find "$stage/share" -type f -exec chmod 0644 {} +

# Rewrites the lines of FILE that place the files, each of which must match,
# for --libdir/--includedir: sed expressions as "FROM=>TO" pairs.
relocate_paths() { # relocate_paths FILE OUT PAIR...
  local file="$1" out="$2" pair from to text
  shift 2
  text="$(cat "$file")"
  for pair in "$@"; do
    from="${pair%%=>*}" to="${pair#*=>}"
    [[ "$text" == *"$from"* ]] || fail "$file no longer holds '$from' (build.rs and install.sh disagree)"
    text="${text//"$from"/"$to"}"
  done
  printf '%s\n' "$text" >"$out"
  chmod 0644 "$out"
}

# The .pc files are build.rs's relocatable ones, placed for --libdir and
# --includedir; --no-rpath drops the rpath.
for pc in st_secrets.pc st_secrets_static.pc; do
  relocate_paths "$rel/pkgconfig-install/$pc" "$L/pkgconfig/$pc" \
    'prefix=${pcfiledir}/../..=>prefix=${pcfiledir}/'"$(ups 1)" \
    'libdir=${prefix}/lib=>libdir=${prefix}/'"$libdir" \
    'includedir=${prefix}/include=>includedir=${prefix}/'"$includedir"
  if [ "$rpath" = 0 ]; then
    sed -i 's/ -Wl,-rpath,\${libdir}//' "$L/pkgconfig/$pc"
  fi
done

# The CMake package is build.rs's too (relocatable; its version check
# follows the SONAME rule), placed the same way.
relocate_paths "$rel/cmake-install/st_secretsConfig.cmake" "$L/cmake/st_secrets/st_secretsConfig.cmake" \
  '${CMAKE_CURRENT_LIST_DIR}/../../..=>${CMAKE_CURRENT_LIST_DIR}/'"$(ups 2)" \
  '${_st_secrets_prefix}/lib/=>${_st_secrets_prefix}/'"$libdir/" \
  '${_st_secrets_prefix}/include"=>${_st_secrets_prefix}/'"$includedir\""
install -m 0644 "$rel/cmake-install/st_secretsConfigVersion.cmake" "$L/cmake/st_secrets/st_secretsConfigVersion.cmake"

(cd "$stage" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) >"$stage/share/st_secrets/install-manifest.txt"
echo "share/st_secrets/install-manifest.txt" >>"$stage/share/st_secrets/install-manifest.txt"

# Copy into the prefix, remembering what was written; undo on failure.
installed=()
undo() {
  local f
  for f in "${installed[@]}"; do rm -f -- "$dest/$f"; done
  echo "install.sh: FAILED while copying into '$dest'; removed the ${#installed[@]} file(s) it installed there" >&2
}
while IFS= read -r f; do
  dir="$(dirname -- "$f")"
  if ! mkdir -p -- "$dest/$dir" || ! cp -P -f -- "$stage/$f" "$dest/$f"; then
    undo
    exit 1
  fi
  installed+=("$f")
done <"$stage/share/st_secrets/install-manifest.txt"

echo "installed st-secrets $version into $dest (${#installed[@]} files: $dest/share/st_secrets/install-manifest.txt)"
