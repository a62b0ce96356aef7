#!/usr/bin/env bash
# Instructions per C-ABI call under callgrind (repeatable whatever the load):
# benches/c/bench_boundary.c runs N calls of st_cache_get_into and of
# st_result_name, or N hot gets (st_cache_get + st_buf_free); this prints the
# library's instructions per call, for the
# release build and, when given, for another build of the library (a
# directory holding libst_secrets.so, e.g. an older checkout's
# target/release) side by side:
#
#   scripts/bench-boundary.sh [OTHER_LIB_DIR]
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
command -v valgrind >/dev/null || die "valgrind is required"
cargo build --release --lib
out="$ST_ROOT/target/bench-boundary"
mkdir -p "$out"
cc -O2 -std=c11 -Iinclude benches/c/bench_boundary.c -Ltarget/release -lst_secrets -o "$out/bench"
# Instructions of the whole run with N and 2N calls: the difference is N
# calls of each kind, free of start-up costs.
per_call() { # per_call LIB_DIR [get]
  local a b
  a=$(cd "$out" && LD_LIBRARY_PATH="$1" valgrind --tool=callgrind --callgrind-out-file=/dev/null ./bench 100000 ${2:-} 2>&1 |
    sed -nE 's/.*Collected : ([0-9]+).*/\1/p')
  b=$(cd "$out" && LD_LIBRARY_PATH="$1" valgrind --tool=callgrind --callgrind-out-file=/dev/null ./bench 200000 ${2:-} 2>&1 |
    sed -nE 's/.*Collected : ([0-9]+).*/\1/p')
  echo $(((b - a) / 100000))
}
echo "instructions per st_cache_get_into + st_result_name pair (hot key):"
echo "  this build ($ST_ROOT/target/release): $(per_call "$ST_ROOT/target/release")"
if [ -n "${1:-}" ]; then
  echo "  other build ($1): $(per_call "$1")"
fi
echo "instructions per hot get, st_cache_get + st_buf_free (32-byte key, 64-byte value):"
echo "  this build ($ST_ROOT/target/release): $(per_call "$ST_ROOT/target/release" get)"
if [ -n "${1:-}" ]; then
  echo "  other build ($1): $(per_call "$1" get)"
fi
