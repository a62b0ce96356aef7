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
  command -v python3 >/dev/null || missing+=(python3)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  if ((${#missing[@]})); then
    say "installing system packages: ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; install them (root needed)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
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
