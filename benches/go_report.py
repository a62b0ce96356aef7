"""The Go binding's `go test -bench CacheGet` output as JSON lines, the
median of its runs per benchmark (scripts/bench.sh, `bindings`).

    python3 benches/go_report.py GO_TEST_OUTPUT
"""
import json
import re
import sys

runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"BenchmarkCacheGet(\w+)-\d+\s+\d+\s+([\d.]+) ns/op", line)
    if m:
        runs.setdefault(m.group(1), []).append(float(m.group(2)))
names = {"Binding": "go_st_secrets_binding", "SyncMapExpiry": "go_sync_map_expiry"}
for k, v in runs.items():
    v.sort()
    workload = "hot_get_all_cores" if k.startswith("Parallel") else "hot_get"
    name = names[k.removeprefix("Parallel")]
    print(json.dumps({"workload": workload, "name": name, "median_ns": v[len(v) // 2]}))
