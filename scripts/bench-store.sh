#!/usr/bin/env bash
# The provider-config store benchmark (issue: provider configuration store):
# cached get_provider_config against an uncached SQLite read, from C, and
# Python's sqlite3 doing SimpleTuner's uncached read.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
out="$ST_ROOT/target/bench-store"
rm -rf "$out" && mkdir -p "$out"
export SIMPLETUNER_AUDIT_KEY="bench-audit-key"
build_c_bench benches/c/bench_store.c "$out/bench_store_c"
"$out/bench_store_c" "$out/jobs.db" | tee "$out/c.jsonl"
python3 benches/python/bench_store.py "$out/jobs.db" | tee "$out/python.jsonl"
say "table"
python3 benches/report_pairs.py "$out/c.jsonl" "$out/python.jsonl" | tee "$out/table.md"
