#!/usr/bin/env bash
# The secrets-manager benchmark (issue: secrets manager): st_secrets_get for an
# environment key and for a cached secrets-file key, from C, against Python's
# os.environ.get and a dict lookup after json.load.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
file="$ST_ROOT/target/bench-secrets/secrets.json"
mkdir -p "$(dirname "$file")"
printf '{"HF_TOKEN": "hf_%s", "OTHER": "x"}\n' "$(printf 'a%.0s' $(seq 37))" > "$file"
export ST_BENCH_ENV_TOKEN="r8_$(printf 'b%.0s' $(seq 37))"
bench_pair secrets benches/c/bench_secrets.c benches/python/bench_secrets.py "$file"
