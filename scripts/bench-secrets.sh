#!/usr/bin/env bash
# The secrets-manager benchmark (issue: secrets manager): st_secrets_get for an
# environment key and for a cached secrets-file key, from C, against Python's
# os.environ.get and a dict lookup after json.load. Prints the README table.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
out="$ST_ROOT/target/bench-secrets"
mkdir -p "$out"
printf '{"HF_TOKEN": "hf_%s", "OTHER": "x"}\n' "$(printf 'a%.0s' $(seq 37))" > "$out/secrets.json"
export ST_BENCH_ENV_TOKEN="r8_$(printf 'b%.0s' $(seq 37))"
build_c_bench benches/c/bench_secrets.c "$out/bench_secrets_c"
"$out/bench_secrets_c" "$out/secrets.json" | tee "$out/c.jsonl"
python3 benches/python/bench_secrets.py "$out/secrets.json" | tee "$out/python.jsonl"
say "table"
python3 benches/report_pairs.py "$out/c.jsonl" "$out/python.jsonl" | tee "$out/table.md"
