# A job's start at scale, sourced by scripts/bench.sh (its $out, $other, $REL
# and the servers' functions): ST_FLEET_NODES processes (3000), one per
# simulated node, released together by tests/fleet/fleet_start.py against a
# 3-node OpenBao raft cluster with a login quota of ST_FLEET_RATE a second
# (100) and its audit devices on, then against moto behind the throttling
# proxy at the same rate, for each build: --other's (no fleet keys: it knows
# none), this build with the node count only (a random slot), this build
# with ranks (Slurm's variables) at each fleet_capacity of ST_FLEET_SHARES
# ("95 90": percents of the rate; the node count only at the first), on the
# stores of ST_FLEET_STORES ("vault aws"); ST_FLEET_JOBS jobs (3) of each,
# the jobs with ranks started ST_FLEET_RESTARTS times (20) each.
fleet_py="$(ensure_venv)"
fleet_nodes="${ST_FLEET_NODES:-3000}" fleet_rate="${ST_FLEET_RATE:-100}" fleet_restarts="${ST_FLEET_RESTARTS:-20}"
fleet_jobs="${ST_FLEET_JOBS:-3}"
read -ra fleet_shares <<<"${ST_FLEET_SHARES:-95 90}"
fleet_cap() { echo $((fleet_rate * $1 / 100)); }
ulimit -n 65536 2>/dev/null || true
cargo_build --release -q || return 1
start_moto "$fleet_py" "$out" && start_openbao_cluster "$fleet_py" "$out" || return 1
driver=(python3 tests/fleet/fleet_start.py)
"${driver[@]}" vault-setup "$VAULT_CLUSTER" "$fleet_rate" "$out/vault.json" || return 1
fleet_port="$(free_port)"
echo '{"passed": 0, "throttled": 0, "operations": {}}' >"$out/proxy-counts.json"
"$fleet_py" tests/fleet/fleet_start.py proxy "$fleet_port" "$MOTO_URL" "$fleet_rate" "$out/proxy-counts.json" \
  >"$out/proxy.log" 2>&1 &
ST_SERVER_PIDS+=($!)
wait_http proxy "http://127.0.0.1:$fleet_port/" "$out/proxy.log"
python3 - "$MOTO_SETUP" "http://127.0.0.1:$fleet_port" "$out/proxy-counts.json" "$out/aws.json" "$fleet_rate" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s.update({"proxy": sys.argv[2], "proxy_counts": sys.argv[3], "rate": float(sys.argv[5])})
json.dump(s, open(sys.argv[4], "w"))
PY
builds=()
[ -z "$other" ] || builds+=("today's build (--other)|$other/st-secrets|none|0")
builds+=("this build, node count only|$REL/st-secrets|count|$(fleet_cap "${fleet_shares[0]}")")
for share in "${fleet_shares[@]}"; do
  builds+=("this build, ranks, $share% of C|$REL/st-secrets|ranks|$(fleet_cap "$share")")
done
: >"$out/jobs.jsonl"
for backend in ${ST_FLEET_STORES:-vault aws}; do
  for build in "${builds[@]}"; do
    IFS='|' read -r label bin mode cap <<<"$build"
    jobs="$fleet_jobs" && [ "$mode" != ranks ] || jobs="$fleet_restarts"
    for ((i = 1; i <= jobs; i++)); do
      say "fleet-start: $backend, $label, job $i of $jobs"
      "${driver[@]}" job "$backend" "$out/$backend.json" "$bin" "$mode" "$fleet_nodes" "$cap" "$out/work" \
        "$label" | tee -a "$out/jobs.jsonl"
    done
  done
done
stop_servers
"${driver[@]}" report "$out/jobs.jsonl" >"$out/table.md"
