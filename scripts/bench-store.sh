#!/usr/bin/env bash
# The provider-config store benchmark (issue: provider configuration store):
# cached get_provider_config against an uncached SQLite read, from C, and
# Python's sqlite3 doing SimpleTuner's uncached read.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
db="$ST_ROOT/target/bench-store/jobs.db"
rm -rf "$ST_ROOT/target/bench-store" && mkdir -p "$(dirname "$db")"
export SIMPLETUNER_AUDIT_KEY="bench-audit-key"
bench_pair store benches/c/bench_store.c benches/python/bench_store.py "$db"
