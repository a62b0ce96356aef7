#!/usr/bin/env bash
# Command 2 of the README: the test suites, each one step whose runner's exit status decides it. Installs
# what it needs (missing system packages, the venv and tools under ~/.cache/st-secrets; nothing inside the
# repository) and starts and stops its servers on 127.0.0.1.
#   scripts/test-all.sh                  every suite, in order (what CI runs)
#   scripts/test-all.sh SUITE...         those suites alone, each with its servers
#   scripts/test-all.sh SUITE -- ARGS    ARGS to the suite's runner (a test name)
#   scripts/test-all.sh --list           the suites and what each runs
# Ends with a table of the suites (count, minutes), the total time and "suites: N passed, M failed";
# docs/testing.md describes each suite.
source "$(dirname "$0")/lib.sh"
source "$ST_ROOT/tests/servers.sh" && source "$ST_ROOT/tests/leftovers.sh"
cd "$ST_ROOT"

# name|what it runs: the suites in order; `tsan` runs only when named.
SUITES=(
  "header|the committed header equals what build.rs generates"
  "lint|cargo fmt --check, clippy -D warnings, rustdoc -D warnings"
  "licences|shipped crates' licences on the allow-list, THIRD-PARTY-NOTICES.txt current (tests/licences)"
  "abi|the library's ABI against the last release's baseline with abidiff (tests/abi)"
  "docs|docs/ and README: sizes, relative links, generated tables (tests/docs.rs)"
  "cargo|cargo test --workspace: the library's and the tool's unit and integration tests"
  "ctest|the C tests plain, under ASan+UBSan and valgrind; header as C11/C++17; README link lines"
  "interop|pytest: the C library with Python's cryptography, SimpleTuner's database, GCP and Azure with their SDKs"
  "python|the wheel in a fresh venv outside the repository: pytest, stubtest, mypy; pip install from source"
  "go|go test -race of the Go binding"
  "node|node --test of the Node binding"
  "consumers|CMake, Make + pkg-config, Go and Node projects against an installed prefix (tests/consumers)"
  "moto|the AWS provider against moto and the AWS Secrets Manager Agent"
  "openbao|the Vault provider against OpenBao: server, agent, proxy; jwt, kubernetes and cert logins"
  "openbao-ha|a 3-node OpenBao raft cluster: roles, current reads, the leader killed; a fleet's start (and moto's)"
  "tool-servers|the tool against both servers; the fleet measurements (requests per TTL, identity logins)"
  "leases|OpenBao's leased PostgreSQL credentials revoked however run ends; AWS credentials served; rotation windows"
  "slurm|the Slurm plugin in Debian's Slurm (two slurmd, slurmdbd on MariaDB), OpenBao, moto"
  "fuzz|every cargo-fuzz target for ST_FUZZ_SECONDS (15) seconds"
  "msrv|rust-version is the locked dependencies' floor, and that toolchain checks the workspace (in the background)"
  "dist|the release artifacts for x86_64 and aarch64 (scripts/dist.sh)"
  "dist-checks|the artifacts' checks: glibc floor, auditwheel, aarch64 under qemu (tests/dist)"
  "tsan|the cache's and the locks' unit tests under ThreadSanitizer (not in the default run)"
)
suite_names() { for s in "${SUITES[@]}"; do echo "${s%%|*}"; done; }

selected=()
extra=()
while (($#)); do
  case "$1" in
    --list) for s in "${SUITES[@]}"; do printf '%-13s %s\n' "${s%%|*}" "${s#*|}"; done; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) die "usage: scripts/test-all.sh [--list] [SUITE...] [-- ARGS]" ;;
    *) # Not `suite_names | grep -q`: grep leaving early fails the pipe (pipefail).
       [[ " $(suite_names | tr '\n' ' ') " == *" $1 "* ]] || die "no suite '$1' (scripts/test-all.sh --list)"
       selected+=("$1"); shift ;;
  esac
done
if ((${#selected[@]} == 0)); then
  mapfile -t selected < <(suite_names | grep -vxE 'tsan')
fi
((${#extra[@]} == 0 || ${#selected[@]} == 1)) || die "-- ARGS goes with one suite"

# Debian packages and tools for the selected suites only (the server suites
# share one set).
ensure_packages "${selected[@]}"
check_prerequisites "${selected[@]}"
logs="$ST_ROOT/build/test-logs"
mkdir -p "$logs"
# Every temporary file of the run (the tests' secrets files, keys, databases,
# the servers' data) goes under build/tmp, removed at the end whatever happens.
export TMPDIR="$ST_ROOT/build/tmp"
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
bg_pid="" tools_pid=""
trap 'stop_servers; for p in $bg_pid $tools_pid; do kill -- -"$p" 2>/dev/null || true; done; rm -rf "$TMPDIR"' EXIT
# What the run may not change: HOME outside the tool caches, its /dev/shm files, git status.
leftovers_snapshot >"$logs/leftovers.before"
# The later suites' tools (cargo-about, the AWS agent, nightly and cargo-fuzz, the rust-version toolchain),
# then the fuzz build and the floor's check (reported by msrv; beside dist, it would delay the run's end), are
# prepared in the background on one core, beside the first suites; each suite waits for its own (tools.log).
later=" ${selected[*]} "
servers_re="moto|openbao|openbao-ha|tool-servers|leases" # the suites that need the servers
tooled_re="$servers_re|licences|fuzz|msrv"        # and those that need the prepared tools
prep() { # prep MARK SUITES_RE COMMAND...: COMMAND when such a suite comes later, then the mark (even if it failed)
  [[ ! "$later" =~ \ ($2)\  || "$later" =~ ^\ ($2)\  ]] || "${@:3}" || echo "(no $1: its suite tries again)"
  touch "$logs/tools.$1"
}
prepare_tools() {
  export CARGO_BUILD_JOBS=1
  prep licences licences bash tests/licences/run.sh --prepare
  prep servers "$servers_re" ensure_aws_agent
  prep fuzz fuzz bash fuzz/run.sh --prepare
  prep msrv msrv bash tests/msrv/run.sh --prepare # rustup's last install: dist's may start
  prep fuzz-build fuzz bash fuzz/run.sh --build
  prep msrv-check msrv eval 'bash tests/msrv/run.sh &>"$logs/msrv.early.log"; echo $? >"$logs/msrv.early.rc"'
}
rm -f "$logs"/tools.* "$logs"/msrv.early.* && [[ ! "$later" =~ \ ($tooled_re)\  ]] ||
  { set -m && { prepare_tools >"$logs/tools.log" 2>&1 & tools_pid=$!; } && set +m; }
wait_tool() { # wait_tool MARK: until the background has prepared it (or ended)
  [ -n "$tools_pid" ] && [ ! -e "$logs/tools.$1" ] && say "waiting for the background's $1 tools" || return 0
  while [ ! -e "$logs/tools.$1" ] && kill -0 "$tools_pid" 2>/dev/null; do sleep 1; done
}
py=""
venv() { [ -n "$py" ] || py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"; }
servers_up=""
servers() { # the venv, moto and OpenBao (once), and the AWS agent
  venv && [ -z "$servers_up" ] || return 0
  ensure_aws_agent; start_moto "$py" "$logs"; start_openbao "$py" "$logs"; servers_up=1
  export ST_TEST_MOTO_SETUP="$MOTO_SETUP" ST_TEST_VAULT_SETUP="$VAULT_SETUP" \
    ST_TEST_AWS_AGENT="$AWS_AGENT_BIN" ST_TEST_BAO="$(dirname "$py")/bao"
}

# Counts of the runners' own closing lines, for the report (never the verdict).
count_cargo() { awk '/^test result:/ {p += $4} END {print p + 0 " tests"}' "$1"; }
count_ctest() { sed -nE 's/.* tests passed, ([0-9]+) tests failed out of ([0-9]+).*/\2 tests/p' "$1" | tail -1; }
count_pytest() { grep -oE '[0-9]+ passed' "$1" | tail -1 | sed 's/passed/tests/'; }
count_go() { echo "$(grep -cE '^\s*--- PASS' "$1") tests"; }
count_node() { sed -nE 's/^# tests ([0-9]+)$/\1 tests/p' "$1" | tail -1; }
count_plain() { sed -nE 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed$/\1 checks/p' "$1" | tail -1; }
count_none() { echo "1 check"; }

suite_header() {
  cp include/st_secrets.h "$logs/st_secrets.h.before"
  cargo_build || return 1
  if ! cmp -s "$logs/st_secrets.h.before" include/st_secrets.h; then
    diff -u "$logs/st_secrets.h.before" include/st_secrets.h || true
    echo "include/st_secrets.h was stale; it has been regenerated: commit it."
    return 1
  fi
  if git ls-files --error-unmatch include/st_secrets.h >/dev/null 2>&1 &&
    ! git diff --quiet HEAD -- include/st_secrets.h; then
    [ "${CI:-}" != true ] || { echo "include/st_secrets.h differs from the committed header."; return 1; }
    echo "warning: include/st_secrets.h differs from HEAD: commit it with the API change."
  fi
  echo "header up to date"
}
suite_lint() {
  cargo fmt --all -- --check && cargo clippy --locked --workspace --all-targets -- -D warnings &&
    RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -q --workspace
}
suite_licences() { bash tests/licences/run.sh; }
suite_abi() { bash tests/abi/run.sh; }
cargo_test() { cargo test --locked --workspace "$@"; }
suite_docs() { cargo_test --test docs -- "${extra[@]}"; }
suite_cargo() { cargo_test -- "${extra[@]}"; }
suite_ctest() {
  cargo_build && cargo_build --release || return 1
  cmake -S tests/c -B build/ctest -G Ninja -DST_LIB_DIR="$ST_ROOT/target/debug" \
    -DST_REPO_ROOT="$ST_ROOT" >"$logs/cmake.log" || { cat "$logs/cmake.log"; return 1; }
  cmake --build build/ctest && (cd build/ctest && ctest --output-on-failure -j2 "${extra[@]}")
}
suite_interop() {
  venv
  cargo_build &&
    ST_SECRETS_BIN="$ST_ROOT/target/debug/st-secrets" ST_SECRETS_LIB="$ST_ROOT/target/debug/libst_secrets.so" \
      "$py" -m pytest -q -p no:cacheprovider tests/interop "${extra[@]}"
}
suite_python() { bash bindings/python/tests/run.sh "${extra[@]}"; }
suite_go() {
  # The binding links the release build through the uninstalled pkg-config
  # files the build writes (target/release/pkgconfig).
  cargo_build --release &&
    (cd bindings/go && PKG_CONFIG_PATH="$REL/pkgconfig" go test -race -count=1 -v ./... "${extra[@]}")
}
suite_node() {
  cargo_build --release && (cd bindings/node && npm ci --no-audit --no-fund --loglevel=error) &&
    (cd bindings/node && ST_SECRETS_LIB="$ST_ROOT/target/release/libst_secrets.so" node --test test/ "${extra[@]}")
}
suite_consumers() { bash tests/consumers/run.sh; }
suite_moto() { servers && cargo_test --test aws_moto -- --include-ignored --test-threads=1 "${extra[@]}"; }
suite_openbao() {
  servers
  cargo_test --test vault_openbao --test vault_identity --test vault_exchange -- --include-ignored --test-threads=1 \
    "${extra[@]}"
}
suite_openbao-ha() { cargo_test --test vault_ha --test fleet_start -- --include-ignored --test-threads=1 --nocapture \
  "${extra[@]}"; }
suite_tool-servers() { # promlint: promtool's exposition check, with no Prometheus installed
  servers && export ST_TEST_PROMLINT="$ST_TOOLS_DIR/promlint/promlint"
  (cd tests/promlint && go build -o "$ST_TEST_PROMLINT" .) || return 1
  cargo_build && cargo_test --test servers -- --include-ignored --test-threads=1 "${extra[@]}" &&
    cargo_test --test fleet --test fleet_identity --test provenance -- --include-ignored \
      --skip identity_rank --test-threads=1 --nocapture "${extra[@]}"
}
suite_leases() {
  servers
  cargo_build && cargo_test --test leases --test rotation -- --include-ignored --test-threads=1 \
    --nocapture "${extra[@]}"
}
suite_slurm() { bash tests/slurm/run.sh "${extra[@]}"; }
suite_fuzz() { bash fuzz/run.sh "${ST_FUZZ_SECONDS:-15}" "${extra[@]}"; }
suite_msrv() { [ -f "$logs/msrv.early.rc" ] || { bash tests/msrv/run.sh; return; } # else the background's:
  echo "(checked in the background)"; cat "$logs/msrv.early.log"; return "$(cat "$logs/msrv.early.rc")"; }
suite_dist() { bash scripts/dist.sh "$ST_ROOT/build/dist"; }
suite_dist-checks() {
  [ -f build/dist/SHA256SUMS ] || bash scripts/dist.sh "$ST_ROOT/build/dist" || return 1
  bash tests/dist/run.sh "$ST_ROOT/build/dist"
}
suite_tsan() { bash tests/tsan/run.sh; }
counter_for() {
  case "$1" in
    cargo | moto | openbao | openbao-ha | tool-servers | leases | docs | tsan) echo count_cargo ;;
    ctest | go | node) echo "count_$1" ;;
    interop | slurm) echo count_pytest ;;
    header | lint | msrv | dist | leftovers) echo count_none ;;
    *) echo count_plain ;;
  esac
}

results=()
record() { # record NAME RC START [END]: a line of the closing table
  local count e="${4:-$SECONDS}" status=passed took
  took="$(((e - $3) / 60)) min $(((e - $3) % 60)) s"
  count="$("$(counter_for "$1")" "$logs/$1.log" || true)"
  [ "$2" = 0 ] || { status="FAILED (exit $2)"; echo "FAILED: $1 exited $2"; }
  results+=("$1|$status|${count:-?}|$took")
}
# The release build (dist) compiles while the server suites mostly wait: with
# both selected, it starts in the background with the first server suite (its
# log apart), is waited for where it stands, and its time is until it ended.
bg_start=0
for name in "${selected[@]}"; do
  log="$logs/$name.log" start=$SECONDS
  if [ "$name" = dist ] && [ -n "$bg_pid" ]; then
    say "dist (started in the background $(((SECONDS - bg_start) / 60)) min ago): waiting for it"
    rc=0 && wait "$bg_pid" || rc=$?
    bg_pid="" && tail -n 15 "$log" && record dist "$rc" "$bg_start" "$(cat "$logs/dist.end" 2>/dev/null)" && continue
  fi
  if [[ "$name" =~ ^($servers_re)$ ]] && [ -z "$bg_pid" ] && [ "$bg_start" = 0 ] &&
    [[ " ${selected[*]} " == *" dist "* ]]; then
    # Its tools first, here: the venv and rustup are not for two installers at once.
    wait_tool msrv && venv && (ensure_dist_tools) || die "the release build's tools did not install"
    say "dist: started in the background (output: $logs/dist.log)"
    bg_start=$SECONDS
    set -m && { (suite_dist; r=$?; echo $SECONDS >"$logs/dist.end"; exit $r) &>"$logs/dist.log" & bg_pid=$!; } && set +m
  fi
  [[ ! "$name" =~ ^($tooled_re)$ ]] || wait_tool "$(case $name in licences) echo "$name" ;; msrv) echo msrv-check ;;
    fuzz) echo msrv ;;
    *) echo servers ;; esac)"
  if [ "$name" = fuzz ] && [ -n "$tools_pid" ] && [ ! -e "$logs/tools.fuzz-build" ]; then # its build stops
    kill -- -"$tools_pid" 2>/dev/null || true; wait "$tools_pid" || true; tools_pid=""
  fi
  say "$name"
  # Servers start in this shell (a suite runs in the pipe's subshell): shared, and stopped on exit.
  [[ ! "$name" =~ ^($servers_re)$ ]] || servers > >(tee "$logs/servers.log") 2>&1
  if [ "$name" = leases ]; then # PostgreSQL, and OpenBao's database and pki engines on it
    start_postgres "$logs" && export ST_TEST_LEASES_SETUP="$logs/leases-setup.json" &&
      "$py" tests/vault/leases_setup.py "$VAULT_SETUP" "$PG_PORT" "$PG_SUPERPASS" "$ST_TEST_LEASES_SETUP" ||
      die "the leases suite's servers did not start"
  fi
  if [ "$name" = openbao-ha ]; then
    venv && start_openbao_cluster "$py" "$logs" && export ST_TEST_VAULT_CLUSTER="$VAULT_CLUSTER"
  fi
  set +e
  "suite_$name" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  record "$name" "$rc" "$start"
done
stop_servers
start=$SECONDS
say "leftovers: HOME outside the tool caches, /dev/shm (ours), git status: as before the run"
leftovers_snapshot >"$logs/leftovers.after"
rc=0 && diff "$logs/leftovers.before" "$logs/leftovers.after" >"$logs/leftovers.log" || rc=$?
[ "$rc" = 0 ] && echo "unchanged" || { echo "the run changed these (< before, > after):" && cat "$logs/leftovers.log"; }
record leftovers "$rc" "$start"

echo
printf '%-14s %-18s %-14s %s\n' suite result count time
passed=0 failed=0
for r in "${results[@]}"; do
  IFS='|' read -r name status count took <<<"$r"
  printf '%-14s %-18s %-14s %s\n' "$name" "$status" "$count" "$took"
  if [ "$status" = passed ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo
echo "total time: $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
