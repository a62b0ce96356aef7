"""The request counts the `remote` benchmark's providers reported, as the
list under its table (scripts/bench.sh, `remote`).

    python3 benches/remote_counts.py RUST_JSONL
"""
import json
import re
import sys

for line in open(sys.argv[1]):
    if '"count_of"' in line:
        r = json.loads(line)
        n = re.search(r"(\d+) requests?", r["provider_detail"]).group(0)
        print("\n- %s: %s (%.1f ms of wall time)" % (r["count_of"], n, r["wall_ms"]))
