#!/usr/bin/env bash
# The benchmarks, each side by side with the peers it is compared to, in one
# run. Each writes its table between its markers in docs/benchmarks.md
# (`<!-- bench:NAME -->` ... `<!-- /bench:NAME -->`; commands' are in
# docs/testing.md, the page about the test command), with one line saying
# when, on what machine and at which commit it was measured; raw results stay
# in target/bench-NAME/.
#
#   scripts/bench.sh [--other LIB_DIR] [NAME...]     (default: all of them)
#
# NAME: the ALL list; docs/benchmarks.md says what each measures against which peers. remote and fleet start
# moto and OpenBao, failover an OpenBao cluster (about 25 minutes), fleet-start both, slurm and job-token a Slurm
# cluster too (as root), cloud drongo and the clouds' fakes, exchange the vendors' fake (72 minutes), keycloak
# Keycloak (12 minutes); tool writes 1 GiB under /tmp; sizes runs scripts/dist.sh when build/dist is empty;
# commands runs the README's two commands in fresh clones (about 90 minutes). --other LIB_DIR (another build's
# target/release) adds that build to cache, boundary, matcher, fleet-start, failover.
source "$(dirname "$0")/lib.sh"
source "$ST_ROOT/tests/servers.sh"
cd "$ST_ROOT"
ALL=(cache boundary secrets crypto store remote bindings tool leak matcher fleet fleet-start leases rotation failover
  slurm job-token cloud exchange keycloak sizes commands)
other=""
names=()
while (($#)); do
  case "$1" in
    --other) other="$2"; shift 2 ;;
    -*) die "usage: scripts/bench.sh [--other LIB_DIR] [NAME...]" ;;
    *) [[ " ${ALL[*]} " == *" $1 "* ]] || die "no benchmark '$1' (${ALL[*]})"; names+=("$1"); shift ;;
  esac
done
((${#names[@]})) || names=("${ALL[@]}")
ensure_packages ctest servers
trap stop_servers EXIT

bench_cache() {
  cargo bench --bench cache -- --noplot 2>&1 | grep -E '^(hot_get|set|mixed_2t)/|time:' || true
  cargo build --locked --release --manifest-path benches/peers/Cargo.toml --target-dir "$ST_ROOT/target/peers"
  build_c_bench benches/c/bench_cache.c "$out/bench_cache_c" \
    -L"$ST_ROOT/target/peers/release" -lcache_peers -Wl,-rpath,"$ST_ROOT/target/peers/release"
  "$out/bench_cache_c" | tee "$out/c.jsonl"
  "$(ensure_venv)" benches/python/bench_cache.py | tee "$out/python.jsonl"
  python3 benches/report.py "$out/c.jsonl" "$out/python.jsonl" >"$out/table.md"
  [ -z "$other" ] || { LD_LIBRARY_PATH="$other" "$out/bench_cache_c" >"$out/c-other.jsonl"
    { echo; echo "The same C program on $other:"; python3 benches/report.py --side-only "$out/c-other.jsonl"; \
    } >>"$out/table.md"; }
}

bench_boundary() {
  command -v valgrind >/dev/null || die "valgrind is required"
  build_c_bench benches/c/bench_boundary.c "$out/bench"
  calls() { (cd "$out" && LD_LIBRARY_PATH="$1" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    ./bench $3 ${2:-} 2>&1 | sed -nE 's/.*Collected : ([0-9]+).*/\1/p'); } # calls LIB_DIR GET N: instructions
  per_call() { echo $((($(calls "$1" "${2:-}" 200000) - $(calls "$1" "${2:-}" 100000)) / 100000)); } # differenced
  {
    echo "| instructions per call (callgrind) | this build${other:+ | $other} |"
    echo "|---|---:|${other:+---:|}"
    echo "| hot get: st_cache_get + st_buf_free (32-byte key, 64-byte value) | $(per_call "$REL" get)${other:+ | $(
      per_call "$other" get)} |"
    echo "| st_cache_get_into + st_result_name | $(per_call "$REL")${other:+ | $(per_call "$other")} |"
  } >"$out/table.md"
  "$(ensure_venv)" benches/python/bench_node_cache.py "$out" "$out/bench" "$REL" "$other" >>"$out/table.md"
}

bench_pair() { # bench_pair C_SOURCE PYTHON_SCRIPT [ARGS...]
  build_c_bench "$1" "$out/bench_c"
  "$out/bench_c" "${@:3}" | tee "$out/c.jsonl"
  "$(ensure_venv)" "$2" "${@:3}" | tee "$out/python.jsonl"
  python3 benches/report_pairs.py "$out/c.jsonl" "$out/python.jsonl" >"$out/table.md"
}
bench_secrets() {
  printf '{"HF_TOKEN": "hf_%s", "OTHER": "x"}\n' "$(printf 'a%.0s' $(seq 37))" >"$out/secrets.json"
  ST_BENCH_ENV_TOKEN="r8_$(printf 'b%.0s' $(seq 37))" \
    bench_pair benches/c/bench_secrets.c benches/python/bench_secrets.py "$out/secrets.json"
  for b in first_get stall; do
    "$(ensure_venv)" "benches/python/bench_$b.py" "$out" "$out/bench_c" >>"$out/table.md"
  done
}
bench_crypto() {
  SIMPLETUNER_CREDENTIAL_KEY="bench-master-secret" bench_pair benches/c/bench_crypto.c benches/python/bench_crypto.py
}
bench_store() {
  rm -f "$out"/jobs.db*
  SIMPLETUNER_AUDIT_KEY="bench-audit-key" \
    bench_pair benches/c/bench_store.c benches/python/bench_store.py "$out/jobs.db"
}
both_servers() { py="$(ensure_venv)" && start_moto "$py" "$out" && start_openbao "$py" "$out"; } # moto, OpenBao
bench_remote() {
  local py
  both_servers
  ST_TEST_MOTO_SETUP="$MOTO_SETUP" ST_TEST_VAULT_SETUP="$VAULT_SETUP" cargo bench --bench remote | tee "$out/rust.jsonl"
  "$py" benches/python/bench_remote_peers.py "$MOTO_SETUP" "$VAULT_SETUP" | tee "$out/python.jsonl"
  stop_servers
  python3 benches/report_pairs.py "$out/rust.jsonl" "$out/python.jsonl" >"$out/table.md"
  python3 benches/remote_counts.py "$out/rust.jsonl" >>"$out/table.md"
}
bench_bindings() { source benches/bindings/run.sh; } # Go, Node and the Python wheel: see the file
bench_tool() {
  local work
  cargo_build --release --quiet
  work="$(mktemp -d /tmp/st-bench-tool.XXXXXX)"
  python3 benches/tool/bench_tool.py "$REL/st-secrets" "$work" | tee "$out/tool.out"
  grep -v '^{' "$out/tool.out" | sed '/./,$!d' >"$out/table.md"
  rm -rf "$work"
}

bench_leak() {
  cargo_build --release -q && "$(ensure_venv)" benches/leak/bench_leak.py "$ST_ROOT" "$out" | tee "$out/table.md"
}
bench_commands() { bash benches/commands/run.sh "$out" | tee "$out/table.md"; }
bench_fleet-start() { source benches/fleet_start/run.sh; } # about an hour: see the file
bench_slurm() { cargo_build --release -q && bash tests/slurm/run.sh --bench "$out/table.md"; }
bench_job-token() { cargo_build --release -q && bash tests/slurm/run.sh --bench "$out/table.md" principal; }
bench_cloud() { # about 20 minutes (ST_CLOUD_SECONDS: the federated run's length, 600): see the file
  ulimit -n 65536 2>/dev/null || true
  cargo_build --release -q || return 1
  "$(ensure_venv)" benches/cloud/bench.py "$out" "$REL/st-secrets" "$REL/libst_secrets.so" | tee "$out/table.md"
}
bench_exchange() { # ST_EXCHANGE_SECONDS (4320): the compressed job's length; see the file
  cargo_build --release -q && "$(ensure_venv)" benches/exchange/bench.py "$out" "$REL/st-secrets" \
    "$REL/libst_secrets.so" | tee "$out/table.md"; }
bench_keycloak() { # ST_KEYCLOAK_SECONDS (600); Keycloak from Maven, Java 21+ where there is one: see the file
  cargo_build --release -q &&
    "$(ensure_venv)" benches/exchange/keycloak.py "$out" "$REL/libst_secrets.so" | tee "$out/table.md"; }
bench_matcher() { cargo_build --release -q &&
  python3 benches/leak/bench_matcher.py "$REL/st-secrets" "$out/work" "${other:+$other/st-secrets}" >"$out/table.md"; }
bench_fleet() {
  local py
  ensure_aws_agent && both_servers
  ST_TEST_MOTO_SETUP="$MOTO_SETUP" ST_TEST_VAULT_SETUP="$VAULT_SETUP" ST_TEST_AWS_AGENT="$AWS_AGENT_BIN" \
    ST_TEST_BAO="$(dirname "$py")/bao" \
    cargo test -p st-secrets-cli --test fleet -- --include-ignored --test-threads=1 --nocapture | tee "$out/fleet.txt"
  # Logins from the workload's identity: ST_IDENTITY_SECONDS per method
  # (1000: 100 rotations of 10 s).
  ST_TEST_VAULT_SETUP="$VAULT_SETUP" ST_IDENTITY_SECONDS="${ST_IDENTITY_SECONDS:-1000}" \
    cargo test -p st-secrets-cli --test fleet_identity -- --include-ignored --skip identity_rank \
    --test-threads=1 --nocapture | tee -a "$out/fleet.txt"
  stop_servers
  { echo "| arrangement (4 nodes x 8 ranks) | library processes | reached the server |"; echo "|---|---:|---|"
    awk '/: [0-9]+ nodes x [0-9]+ ranks/ {service = $0; sub(/: [0-9]+ nodes x.*/, "", service)}
      /^\| .* library processes \|/ {sub(/ library processes/, ""); sub(/^\| /, "| " service ": "); print}' \
      "$out/fleet.txt"; } >"$out/table.md"
}

bench_leases() { # ST_LEASE_SECONDS: the generations' length (600: 50 generations)
  local py secs="${ST_LEASE_SECONDS:-600}"
  both_servers && start_postgres "$out"
  "$py" tests/vault/leases_setup.py "$VAULT_SETUP" "$PG_PORT" "$PG_SUPERPASS" "$out/leases-setup.json"
  cargo_build && : >"$out/leases.txt"
  leases() { # leases ENV... TEST: one test of cli/tests/leases.rs
    env ST_TEST_LEASES_SETUP="$out/leases-setup.json" ST_TEST_MOTO_SETUP="$MOTO_SETUP" \
      ST_TEST_BAO="$(dirname "$py")/bao" "$@" --include-ignored --exact --nocapture --test-threads=1 |
      tee -a "$out/leases.txt" || true # a failure is in the table (its BENCH line comes first)
  }
  local t="cargo test -p st-secrets-cli --test leases --"
  local ranks=ranks_connect_across_lease_generations_and_the_job_leaves_nothing
  leases ST_LEASE_SECONDS="$secs" ST_LEASE_NODES=1 ST_LEASE_RANKS=8 $t $ranks
  leases ST_LEASE_SECONDS="$secs" $t peer_vault_agent_renders_the_same_credential
  leases ST_LEASE_SECONDS=36 ST_LEASE_NODES=4 ST_LEASE_RANKS=8 $t $ranks
  leases $t run_revokes_the_jobs_leases_however_the_command_ends
  leases $t after_sigkill_of_run_the_leases_end_with_their_ttl
  leases ST_SERVED_ROTATIONS=50 $t aws_credentials_are_served_fresh_to_the_command
  stop_servers
  python3 benches/leases_report.py "$out/leases.txt" >"$out/table.md"
}

bench_rotation() { # ST_ROTATION_WINDOW: seconds from setSecret to finishSecret (60)
  local py window="${ST_ROTATION_WINDOW:-60}"
  both_servers && start_postgres "$out"
  (umask 077 && printf '{"pg_port": %s, "pg_superpass": "%s"}' "$PG_PORT" "$PG_SUPERPASS" >"$out/pg.json") &&
    cargo_build && : >"$out/rotation.txt"
  rotation() { # rotation ENV... TEST: one test, its BENCH line kept
    env ST_TEST_LEASES_SETUP="$out/pg.json" ST_TEST_MOTO_SETUP="$MOTO_SETUP" \
      "$@" --include-ignored --exact --nocapture --test-threads=1 | tee -a "$out/rotation.txt" || true
  }
  local t="cargo test -p st-secrets-cli --test rotation --" one=(ST_ROTATION_NODES=1 ST_ROTATION_RANKS=8)
  rotation ST_ROTATION_WINDOW="$window" "${one[@]}" $t a_rotation_window_refuses_each_rank_at_most_once
  rotation ST_ROTATION_WINDOW="$window" "${one[@]}" $t peer_a_plain_refresh_is_refused_until_the_stage_moves
  rotation ST_ROTATION_WINDOW=10 ST_ROTATION_NODES=4 ST_ROTATION_RANKS=8 \
    $t a_rotation_window_refuses_each_rank_at_most_once
  rotation cargo test -p st-secrets --test aws_moto -- an_unchanged_secret_costs_no_value_over_a_hundred_ttls
  rotation ST_TEST_VAULT_SETUP="$VAULT_SETUP" cargo test -p st-secrets-cli --test provenance --
  stop_servers
  python3 benches/rotation_report.py "$out/rotation.txt" >"$out/table.md"
}

bench_failover() { # ST_FAILOVER_SECONDS: each soak's length (600)
  local py secs="${ST_FAILOVER_SECONDS:-600}"
  py="$(ensure_venv)"
  build_c_bench benches/c/bench_failover.c "$out/bench"
  : >"$out/soak.jsonl"
  soak() { # soak LABEL LIB_DIR ADDRESSES FAULTS SECONDS: on a fresh cluster
    start_openbao_cluster "$py" "$out"
    "$py" benches/failover/soak.py "$(dirname "$VAULT_CLUSTER")" "$out/bench" "$2" "$1" "$5" 64 4 "$3" "$4" \
      "$out/runs" |
      tee -a "$out/soak.jsonl"
    stop_servers
  }
  soak "this build, 3 addresses" "$REL" all kill "$secs"
  [ -z "$other" ] || soak "--other build, 1 address" "$other" one kill "$secs"
  soak "this build, no faults" "$REL" all calm "$((secs / 5))"
  "$py" benches/failover/soak.py report "$out/soak.jsonl" >"$out/table.md"
}

bench_sizes() {
  local dist="$ST_ROOT/build/dist" f
  [ -f "$dist/SHA256SUMS" ] || bash scripts/dist.sh "$dist"
  {
    echo "| artifact | bytes | inside (bytes) |"
    echo "|---|---:|---|"
    for f in "$dist"/*; do
      [ "$(basename "$f")" != SHA256SUMS ] || continue
      printf '| `%s` | %s | %s |\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(case "$f" in *.tar.gz)
        tar -tvzf "$f" |
          awk '$1 !~ /^l/ && $6 ~ /(lib\/libst_secrets\.(so\.[0-9.]+|a|[0-9.]+\.dylib)|bin\/st-secrets)$/ {
          n = $6; sub(/^.*\//, "", n); out = out (out ? ", " : "") "`" n "` " $3 } END { print out }' ;; esac)"
    done
  } >"$out/table.md"
}

# Replaces the block between NAME's markers in the page under docs/ that has
# them with the provenance line and target/bench-NAME/table.md.
write_table() {
  local name="$1" commit page cpu
  page="$(grep -l -- "<!-- bench:$name -->" "$ST_ROOT"/docs/*.md | head -1)"
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  git diff --quiet HEAD -- src cli benches bindings 2>/dev/null || commit="$commit with local changes"
  cpu="$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  python3 benches/write_table.py "${page:-$ST_ROOT/docs/benchmarks.md}" "$name" "$out/table.md" \
    "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($cpu), commit $commit; medians."
}

for name in "${names[@]}"; do
  out="$ST_ROOT/target/bench-$name"
  mkdir -p "$out"
  say "$name"
  "bench_$name"
  write_table "$name"
  cat "$out/table.md"
done
say "tables written to docs/"
