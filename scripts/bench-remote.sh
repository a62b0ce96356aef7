#!/usr/bin/env bash
# The remote providers' benchmark (issues: AWS Secrets Manager, Vault) against
# real servers on 127.0.0.1: st-secrets (benches/remote.rs) beside boto3 on
# moto and hvac on OpenBao, KV v2 (benches/python/bench_remote_peers.py). The
# Python cached-get rows are a dict lookup on the parsed secret (neither
# library caches). Results go to target/bench-remote/.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
trap stop_servers EXIT
ensure_system_tools
out="$ST_ROOT/target/bench-remote"
rm -rf "$out" && mkdir -p "$out"
py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
start_moto "$py" "$out"
start_openbao "$py" "$out"
export ST_TEST_MOTO_SETUP="$MOTO_SETUP" ST_TEST_VAULT_SETUP="$VAULT_SETUP"
say "st-secrets"
cargo bench --bench remote | tee "$out/rust.jsonl"
say "boto3, hvac"
"$py" benches/python/bench_remote_peers.py "$MOTO_SETUP" "$VAULT_SETUP" | tee "$out/python.jsonl"
say "table"
python3 benches/report_pairs.py "$out/rust.jsonl" "$out/python.jsonl" | tee "$out/table.md"
grep '"count_of"' "$out/rust.jsonl" | tee -a "$out/table.md"
