#!/usr/bin/env bash
# The AWS provider's benchmark (issue: AWS Secrets Manager) against moto's
# server on 127.0.0.1: st-secrets (benches/aws.rs) beside boto3
# (benches/python/bench_aws_boto3.py). For the Python cached-get rows the
# peer is a dict lookup on the secret boto3 fetched and parsed (boto3 itself
# does not cache). Results go to target/bench-aws/.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
trap stop_servers EXIT
ensure_system_tools
out="$ST_ROOT/target/bench-aws"
rm -rf "$out" && mkdir -p "$out"
py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
start_moto "$py" "$out"
say "st-secrets"
ST_TEST_MOTO_SETUP="$MOTO_SETUP" cargo bench --bench aws | tee "$out/rust.jsonl"
say "boto3"
"$py" benches/python/bench_aws_boto3.py "$MOTO_SETUP" | tee "$out/python.jsonl"
say "table"
python3 benches/report_pairs.py "$out/rust.jsonl" "$out/python.jsonl" | tee "$out/table.md"
grep '"count_of"' "$out/rust.jsonl" | tee -a "$out/table.md"
