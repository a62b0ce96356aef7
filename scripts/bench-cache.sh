#!/usr/bin/env bash
# The TTL cache benchmark (issues: foundation, 29). Runs the criterion
# benchmark (st-secrets Rust API and C ABI, mutex floor, quick_cache, moka),
# the C program (st_cache from C side by side with the floor and quick_cache
# behind the same kind of C ABI) and the Python peers (cachetools, the seed's
# RLock dict), then prints the README table with ratios. Takes about 4
# minutes.
#
#   scripts/bench-cache.sh [OTHER_LIB_DIR]
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
out="$ST_ROOT/target/bench-cache"
mkdir -p "$out"

say "criterion: cargo bench --bench cache"
cargo bench --bench cache -- --noplot 2>&1 | grep -E '^(hot_get|set|mixed_2t)/|time:' || true

say "C program: st_cache side by side with its peers behind a C ABI (benches/peers)"
cargo build --release --manifest-path benches/peers/Cargo.toml --target-dir "$ST_ROOT/target/peers"
build_c_bench benches/c/bench_cache.c "$out/bench_cache_c" \
  -L"$ST_ROOT/target/peers/release" -lcache_peers -Wl,-rpath,"$ST_ROOT/target/peers/release"
# OTHER_LIB_DIR (a directory holding another build's libst_secrets.so, e.g.
# an older checkout's) runs the same program on it too, for before/after.
"$out/bench_cache_c" | tee "$out/c.jsonl"
if [ -n "${1:-}" ]; then
  say "the same program on $1"
  LD_LIBRARY_PATH="$1" "$out/bench_cache_c" | tee "$out/c-other.jsonl"
fi

say "Python peers"
py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
"$py" benches/python/bench_cache.py | tee "$out/python.jsonl"

say "table"
python3 benches/report.py "$out/c.jsonl" "$out/python.jsonl" | tee "$out/table.md"
if [ -n "${1:-}" ]; then
  echo
  echo "The C program on $1:"
  python3 benches/report.py --side-only "$out/c-other.jsonl" | tee "$out/table-other.md"
  echo "The C program on this build:"
  python3 benches/report.py --side-only "$out/c.jsonl"
fi
