#!/usr/bin/env bash
# The credential-encryption benchmark (issue: credential encryption): encrypt
# and decrypt of a 64-byte token with the key cached, and the one-time key
# derivation, from C, against Python's cryptography on the same data.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
out="$ST_ROOT/target/bench-crypto"
mkdir -p "$out"
export SIMPLETUNER_CREDENTIAL_KEY="bench-master-secret"
build_c_bench benches/c/bench_crypto.c "$out/bench_crypto_c"
"$out/bench_crypto_c" | tee "$out/c.jsonl"
py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
"$py" benches/python/bench_crypto.py | tee "$out/python.jsonl"
say "table"
python3 benches/report_pairs.py "$out/c.jsonl" "$out/python.jsonl" | tee "$out/table.md"
