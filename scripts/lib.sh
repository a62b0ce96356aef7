# Shared helpers for the scripts in this directory. Source it; do not run it.
# Everything the scripts install goes outside the repository, under
# ST_TOOLS_DIR (default ~/.cache/st-secrets), so later runs reuse it.

set -euo pipefail

ST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ST_TOOLS_DIR="${ST_TOOLS_DIR:-$HOME/.cache/st-secrets}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the system tools a fresh machine of this kind may lack, with the
# distribution's package manager (needs root, as on this project's machines).
ensure_system_tools() {
  local missing=()
  command -v cargo >/dev/null || die "cargo is required (install Rust with rustup)"
  command -v cc >/dev/null || missing+=(gcc)
  command -v c++ >/dev/null || missing+=(g++)
  command -v cmake >/dev/null || missing+=(cmake)
  command -v ninja >/dev/null || missing+=(ninja-build)
  command -v valgrind >/dev/null || missing+=(valgrind)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v python3 >/dev/null || missing+=(python3)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  if ((${#missing[@]})); then
    say "installing system packages: ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; install them (root needed)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

# The version of tool $1 (first x.y[.z] in `$1 $2`), or nothing.
tool_version() {
  command -v "$1" >/dev/null || return 0
  "$1" $2 2>/dev/null | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -1
}

# Whether version $1 is at least $2 (both x.y[.z]).
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}

# Checks, in the first seconds, every tool the test command needs and its
# version (README "Prerequisites"), so a missing one fails now rather than
# twenty minutes in. Debian's own Go and Node are older than needed.
check_prerequisites() {
  local problems=() v
  check_one() { # NAME COMMAND VERSION_ARG MINIMUM HINT
    v="$(tool_version "$2" "$3")"
    if [ -z "$v" ]; then
      problems+=("$1 is missing (need >= $4; $5)")
    elif ! version_at_least "$v" "$4"; then
      problems+=("$1 $v is too old (need >= $4; $5)")
    fi
  }
  check_one Rust rustc --version 1.89 "rustup update stable"
  check_one Go go version 1.22 "from go.dev or a newer distribution package"
  check_one Node.js node --version 20 "from nodejs.org or a newer distribution package"
  check_one npm npm --version 9 "comes with Node.js"
  check_one CMake cmake --version 3.16 "apt-get install cmake"
  check_one pkg-config pkg-config --version 0.29 "apt-get install pkg-config"
  check_one Python python3 --version 3.10 "apt-get install python3"
  if ((${#problems[@]})); then
    printf 'prerequisite: %s\n' "${problems[@]}" >&2
    die "prerequisites missing or too old (see README \"Prerequisites\")"
  fi
  say "prerequisites: rustc $(tool_version rustc --version), go $(tool_version go version), node $(tool_version node --version), cmake $(tool_version cmake --version), pkg-config $(tool_version pkg-config --version)"
}

# Creates (once) the Python virtual environment and installs the pinned
# requirements file given as $1; prints the venv's python path.
ensure_venv() {
  local req="$1" venv="$ST_TOOLS_DIR/venv"
  if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$ST_TOOLS_DIR"
    python3 -m venv "$venv" >&2
  fi
  local stamp="$venv/.installed-$(basename "$req")-$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
    touch "$stamp"
  fi
  echo "$venv/bin/python"
}

# Compiles a C benchmark ($1) against the release library into $2.
build_c_bench() {
  cargo build --release --lib
  cc -O2 -std=c11 -Wall -Wextra -Werror -I"$ST_ROOT/include" "$1" \
    -L"$ST_ROOT/target/release" -lst_secrets -Wl,-rpath,"$ST_ROOT/target/release" -lpthread \
    -o "$2"
}

# Runs a C benchmark and its Python peer and prints their table:
#   bench_pair NAME C_SOURCE PYTHON_SCRIPT [ARGS...]
# Both programs get ARGS; results and the table go to target/bench-NAME/.
bench_pair() {
  local name="$1" c_source="$2" python_script="$3"
  shift 3
  local out="$ST_ROOT/target/bench-$name"
  mkdir -p "$out"
  build_c_bench "$c_source" "$out/bench_c"
  "$out/bench_c" "$@" | tee "$out/c.jsonl"
  local py
  py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
  "$py" "$python_script" "$@" | tee "$out/python.jsonl"
  say "table"
  python3 "$ST_ROOT/benches/report_pairs.py" "$out/c.jsonl" "$out/python.jsonl" | tee "$out/table.md"
}

# Servers started for the integration tests; stop_servers ends them (the
# test command calls it on exit, whatever happens).
# Their data directories (ST_SERVER_DIRS) are removed with them.
ST_SERVER_PIDS=()
ST_SERVER_DIRS=()
stop_servers() {
  local pid dir
  for pid in "${ST_SERVER_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
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
    if python3 -c "import sys, urllib.request, urllib.error
try: urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError: pass" "$url" 2>/dev/null; then
      return 0
    fi
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
  INITIAL_NO_AUTH_ACTION_COUNT=4 "$(dirname "$py")/moto_server" -H 127.0.0.1 -p "$port" \
    >"$logdir/moto.log" 2>&1 &
  ST_SERVER_PIDS+=($!)
  MOTO_URL="http://127.0.0.1:$port"
  wait_http moto "$MOTO_URL/moto-api/" "$logdir/moto.log"
  MOTO_SETUP="$logdir/moto-setup.json"
  "$py" "$ST_ROOT/tests/aws/moto_setup.py" "$MOTO_URL" "$MOTO_SETUP"
}

# RustyVault (cargo install rusty_vault, pinned), built once into
# $ST_TOOLS_DIR/rusty_vault; prints the binary's path.
RUSTY_VAULT_VERSION=0.2.1
ensure_rusty_vault() {
  local root="$ST_TOOLS_DIR/rusty_vault"
  if [ ! -x "$root/bin/rvault" ] || [ "$(cat "$root/.version" 2>/dev/null)" != "$RUSTY_VAULT_VERSION" ]; then
    say "installing RustyVault $RUSTY_VAULT_VERSION into $root (once; several minutes)" >&2
    if ! pkg-config --exists openssl 2>/dev/null; then
      [ "$(id -u)" = 0 ] || die "RustyVault needs OpenSSL headers: install libssl-dev and pkg-config"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config >&2
    fi
    cargo install --locked rusty_vault --version "$RUSTY_VAULT_VERSION" --root "$root" >&2 ||
      cargo install rusty_vault --version "$RUSTY_VAULT_VERSION" --root "$root" >&2
    echo "$RUSTY_VAULT_VERSION" >"$root/.version"
  fi
  echo "$root/bin/rvault"
}

# Starts RustyVault on 127.0.0.1 with file storage in a new temporary
# directory, initialises, unseals and fills it (tests/vault/rusty_setup.py).
# Sets VAULT_TEST_URL and VAULT_SETUP. $1: python; $2: a log directory.
start_rusty_vault() {
  local py="$1" logdir="$2" port rvault dir
  rvault="$(ensure_rusty_vault)"
  port="$(free_port)"
  dir="$(mktemp -d)"
  ST_SERVER_DIRS+=("$dir")
  cat >"$dir/config.hcl" <<HCL
storage "file" {
  path = "$dir/data"
}
listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}
api_addr = "http://127.0.0.1:$port"
log_level = "warn"
pid_file = "$dir/rvault.pid"
HCL
  "$rvault" server --config "$dir/config.hcl" >"$logdir/rustyvault.log" 2>&1 &
  ST_SERVER_PIDS+=($!)
  VAULT_TEST_URL="http://127.0.0.1:$port"
  wait_http RustyVault "$VAULT_TEST_URL/v1/sys/seal-status" "$logdir/rustyvault.log"
  VAULT_SETUP="$logdir/vault-setup.json"
  "$py" "$ST_ROOT/tests/vault/rusty_setup.py" "$VAULT_TEST_URL" "$VAULT_SETUP"
}
