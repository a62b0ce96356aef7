# The bindings' hot paths, sourced by scripts/bench.sh (its $out and $REL):
# Go's benchmark, Node's (synchronous and async calls) and Python's from the
# wheel installed in a fresh venv outside the repository, each beside the
# binding's own language's peers; one table per binding into $out/table.md.
local work wheel
cargo_build --release
(cd bindings/go && PKG_CONFIG_PATH="$REL/pkgconfig" go test -run '^$' -bench CacheGet -benchtime 500000x \
  -count 9 .) | tee "$out/go.txt"
python3 benches/go_report.py "$out/go.txt" >"$out/go.jsonl"
(cd bindings/node && npm ci --no-audit --no-fund --loglevel=error &&
  ST_SECRETS_LIB="$REL/libst_secrets.so" node bench/cache.js &&
  ST_SECRETS_LIB="$REL/libst_secrets.so" node bench/async.js >"$out/node-async.jsonl") | tee "$out/node.jsonl"
# Python: the wheel installed in a fresh venv outside the repository.
work="$(mktemp -d /tmp/st-bench-python.XXXXXX)"
wheel="$(scripts/package.sh wheel "$work/wheels" | tail -1)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel" \
  "$(grep -E '^cachetools==' tools/requirements-test.txt)"
mkdir -p "$work/scratch"
(cd "$work" && "$work/venv/bin/python" "$ST_ROOT/benches/python/bench_binding.py" "$work/scratch") |
  tee "$out/python.jsonl"
rm -rf "$work"
for lang in go node node-async python; do
  python3 benches/report_pairs.py "$out/$lang.jsonl"
  echo
done >"$out/table.md"
