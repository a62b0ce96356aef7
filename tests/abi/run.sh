#!/usr/bin/env bash
# The library's ABI against the baseline of the last release:
#
#   tests/abi/run.sh             compare (what the test command runs)
#   tests/abi/run.sh --update    write the baseline (at a release, or with a
#                                new SONAME; say so in CHANGELOG.md)
#
# The baseline, tests/abi/<SONAME>.abi.gz, is abidw's description (libabigail,
# Debian's abigail-tools) of the st_* functions of the debug build, whose DWARF
# carries the types. abidiff compares it with the library built now, with the
# opaque handles' insides suppressed (tests/abi/suppressions): a removed
# function or a changed signature or struct fails; an added function passes.
# A library whose SONAME has no baseline is a deliberate break: it passes,
# saying so. The check is shown live on each run: the baseline with one
# function removed, compared with itself, must fail.
# Prints one line per check and ends with "abi: N passed, M failed".
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ST_ROOT"
here="$ST_ROOT/tests/abi"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
CHECK_LOG="$work/log"

cargo_build >&2 || die "the library does not build"
lib="$ST_ROOT/target/debug/libst_secrets.so"
soname="$(readelf -d "$lib" | sed -nE 's/.*Library soname: \[(.*)\]/\1/p')"
[ -n "$soname" ] || die "$lib has no SONAME"
baseline="$here/$soname.abi.gz"

describe() { # describe OUT: the built library's ABI, its st_* functions only
  { echo "[abi_whitelist]"; nm -D --defined-only "$lib" | awk '$3 ~ /^st_/ {print "  " $3}'; } >"$work/symbols"
  abidw --no-show-locs --no-comp-dir-path --no-corpus-path --type-id-style hash \
    --kmi-whitelist "$work/symbols" --out-file "$1" "$lib"
}

if [ "${1:-}" = --update ]; then
  describe "$work/new.abi" && gzip -9n <"$work/new.abi" >"$baseline" || die "abidw failed"
  echo "wrote ${baseline#"$ST_ROOT/"} ($(grep -c '<elf-symbol' "$work/new.abi") functions)"
  exit 0
fi

if [ ! -f "$baseline" ]; then
  echo "no baseline for $soname: a new SONAME is an announced break (CHANGELOG.md);"
  echo "write its baseline with tests/abi/run.sh --update at the release"
  exit 0
fi
gunzip -c "$baseline" >"$work/baseline.abi"

abi_diff() { # abi_diff OLD NEW: nonzero on a removed or changed function
  abidiff --suppressions "$here/suppressions" --no-added-syms "$1" "$2"
}
compatible() {
  describe "$work/now.abi" || return 1
  abi_diff "$work/baseline.abi" "$work/now.abi"
}
check "the library's ABI is compatible with the $soname baseline" compatible

# Live: the same comparison must fail on a function removed, and on a
# struct that grew (st_cache_stats with its last field gone in the baseline).
without() { # without WHAT OUT: the baseline with one thing taken away
  python3 - "$work/baseline.abi" "$1" "$2" <<'PY'
import sys, xml.etree.ElementTree as ET
tree = ET.parse(sys.argv[1])
what = sys.argv[2]
for parent in tree.getroot().iter():
    for child in list(parent):
        if what == "function" and "st_cache_cleanup" in (child.get("name"), child.get("elf-symbol-id")):
            parent.remove(child)
        if what == "field" and child.tag == "class-decl" and child.get("name") == "st_cache_stats" \
                and child.get("size-in-bits"):
            child.remove([m for m in child if m.tag == "data-member"][-1])
            child.set("size-in-bits", str(int(child.get("size-in-bits")) - 64))
tree.write(sys.argv[3])
PY
}
fails_on() { without "$1" "$work/$1.abi" && ! abi_diff "$work/baseline.abi" "$work/$1.abi" >/dev/null; }
check "abidiff fails on a removed function (the check is live)" fails_on function
grows() { without field "$work/field.abi" && ! abi_diff "$work/field.abi" "$work/baseline.abi" >/dev/null; }
check "abidiff fails on a struct whose size changed (the check is live)" grows
checks_end abi
