#!/usr/bin/env bash
# The tool's benchmark for shell launchers (benches/tool/bench_tool.py): the
# start-up cost of `st-secrets run -- true` against `true`, and the masked
# throughput of `st-secrets run -- cat` on a 1 GiB stream against plain `cat`.
# Builds the release tool; prints JSON lines and tables (target/bench-tool/).
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
out="$ST_ROOT/target/bench-tool"
mkdir -p "$out"
cargo build --release --quiet -p st-secrets-cli
work="$(mktemp -d /tmp/st-bench-tool.XXXXXX)"
trap 'rm -rf "$work"' EXIT
python3 benches/tool/bench_tool.py "$ST_ROOT/target/release/st-secrets" "$work" | tee "$out/tool.md"
