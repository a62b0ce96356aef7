#!/usr/bin/env bash
# Makes a static library that links beside anything: every global symbol of
# the Rust staticlib but the C ABI's own `st_*` functions becomes local.
#
#   scripts/localize-static.sh IN.a OUT.a [TOOL_PREFIX]
#
# A Rust staticlib is an archive of every crate it uses, each object exporting
# its symbols: the bundled SQLite's `sqlite3_*`, the Rust runtime's
# (`rust_eh_personality`, `__rust_alloc`, ...) and thousands of mangled ones.
# A program that also links the system's SQLite or a second Rust static
# library would get duplicate definitions, or bind one library's calls to the
# other's SQLite. So, with binutils (TOOL_PREFIX selects a cross set, such as
# `aarch64-linux-gnu-`):
#   1. `ld -r --whole-archive`: one relocatable object, so the references
#      between the crates are resolved inside it and can stay local;
#   2. `objcopy`: drop the LLVM bitcode the standard library's objects carry
#      (`.llvmbc`, `.llvmcmd`: only rustc's LTO reads it) and debug info, then
#      `--keep-global-symbols` with the defined `st_*` names: every other
#      defined global becomes local (undefined references to libc stay); and
#      each COMDAT group's signature gets the prefix `st_secrets.`. A group
#      (`DW.ref.rust_eh_personality`, which every Rust object has) is kept
#      once per program by its signature: under the shared name, the linker
#      would keep ours and drop the other library's copy, whose references
#      then point at a symbol that is now local ("undefined hidden symbol").
#   3. `ar`: that one object as OUT.a (deterministic: no timestamps).
# Checks the result: only `st_*` defined globals, the same ones as IN.a.
set -euo pipefail
[ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: scripts/localize-static.sh IN.a OUT.a [TOOL_PREFIX]" >&2; exit 2; }
in="$1" out="$2" tp="${3:-}"
fail() { echo "localize-static.sh: $*" >&2; exit 1; }
[ -f "$in" ] || fail "no such archive: $in"
for t in ld objcopy nm ar; do
  command -v "$tp$t" >/dev/null || fail "$tp$t is missing (binutils${tp:+ for ${tp%-}})"
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Defined globals (and weak definitions) by name, one per line.
exported() { "${tp}nm" -g --defined-only "$1" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u; }

exported "$in" | grep -E '^st_[a-z0-9_]+$' >"$tmp/keep" || fail "$in defines no st_* function"
"${tp}ld" -r --whole-archive "$in" -o "$tmp/all.o"
# readelf -g: "COMDAT group section [    1] `.group' [SIGNATURE] contains 2 sections:"
readelf -gW "$tmp/all.o" | sed -nE 's/^COMDAT group section .*\[([^]]+)\] contains .*/\1 st_secrets.\1/p' >"$tmp/groups"
"${tp}objcopy" --remove-section=.llvmbc --remove-section=.llvmcmd --strip-debug \
  --redefine-syms="$tmp/groups" --keep-global-symbols="$tmp/keep" "$tmp/all.o" "$tmp/st_secrets.o"
if readelf -gW "$tmp/st_secrets.o" | grep 'COMDAT group section' | grep -v '\[st_secrets\.'; then
  fail "a COMDAT group kept a shared signature (above)"
fi
rm -f "$tmp/out.a"
"${tp}ar" rcD "$tmp/out.a" "$tmp/st_secrets.o"
exported "$tmp/out.a" >"$tmp/left"
cmp -s "$tmp/left" "$tmp/keep" ||
  { diff "$tmp/keep" "$tmp/left" | head -20 >&2; fail "the result exports other symbols than the st_* functions (above)"; }
mv -f "$tmp/out.a" "$out"
echo "$(basename "$out"): $(wc -l <"$tmp/keep") global symbols (st_*), from $(exported "$in" | wc -l)" >&2
