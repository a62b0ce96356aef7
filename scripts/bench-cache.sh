#!/usr/bin/env bash
# The TTL cache benchmark (issue: foundation). Runs the criterion benchmark
# (st-secrets Rust API and C ABI, mutex floor, quick_cache, moka), the C
# program (C ABI from C) and the Python peers (cachetools, the seed's RLock
# dict), then prints the README table with ratios. Takes about 3 minutes.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
out="$ST_ROOT/target/bench-cache"
mkdir -p "$out"

say "criterion: cargo bench --bench cache"
cargo bench --bench cache -- --noplot 2>&1 | grep -E '^(hot_get|set|mixed_2t)/|time:' || true

say "C program against the release library"
build_c_bench benches/c/bench_cache.c "$out/bench_cache_c"
"$out/bench_cache_c" | tee "$out/c.jsonl"

say "Python peers"
py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
"$py" benches/python/bench_cache.py | tee "$out/python.jsonl"

say "table"
python3 benches/report.py "$out/c.jsonl" "$out/python.jsonl" | tee "$out/table.md"
