#!/usr/bin/env bash
# The bindings benchmark (issue: bindings): a hot-key cache get through each
# binding, side by side with the language's usual choice (Go sync.Map with
# expiry, Node lru-cache; Python: scripts/bench-python.sh, against cachetools
# and SimpleTuner's designs).
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
out="$ST_ROOT/target/bench-bindings"
mkdir -p "$out"
cargo build --release --lib

say "Go"
(cd bindings/go && PKG_CONFIG_PATH="$ST_ROOT/target/release/pkgconfig" go test -run '^$' -bench 'CacheGet' -benchtime 500000x -count 9 .) | tee "$out/go.txt"
python3 - "$out/go.txt" > "$out/go.jsonl" <<'PY'
import json, re, sys
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
PY

say "Node"
(cd bindings/node && npm ci --no-audit --no-fund --loglevel=error && ST_SECRETS_LIB="$ST_ROOT/target/release/libst_secrets.so" node bench/cache.js) | tee "$out/node.jsonl"
say "Node: the Promise forms against a threadpool round trip (fs.promises.access)"
(cd bindings/node && ST_SECRETS_LIB="$ST_ROOT/target/release/libst_secrets.so" node bench/async.js) | tee "$out/node-async.jsonl"

say "Python (the installed wheel: scripts/bench-python.sh)"
scripts/bench-python.sh >/dev/null
cp "$ST_ROOT/target/bench-python/python.jsonl" "$out/python.jsonl"

say "table"
for lang in go node node-async python; do
  python3 benches/report_pairs.py "$out/$lang.jsonl"
  echo
done | tee "$out/table.md"
