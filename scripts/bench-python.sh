#!/usr/bin/env bash
# The Python package's benchmark (benches/python/bench_binding.py) against
# the installed wheel in a fresh venv outside the repository, side by side
# with SimpleTuner's designs and cachetools in the same run; prints the JSON
# lines and the table (target/bench-python/).
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
out="$ST_ROOT/target/bench-python"
mkdir -p "$out"
work="$(mktemp -d /tmp/st-bench-python.XXXXXX)"
trap 'rm -rf "$work"' EXIT
wheel="$(scripts/build-wheel.sh "$work/wheels" | tail -1)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel" \
  "$(grep -E '^cachetools==' tools/requirements-test.txt)"
mkdir -p "$work/scratch"
(cd "$work" && "$work/venv/bin/python" "$ST_ROOT/benches/python/bench_binding.py" "$work/scratch") |
  tee "$out/python.jsonl"
python3 benches/report_pairs.py "$out/python.jsonl" | tee "$out/table.md"
