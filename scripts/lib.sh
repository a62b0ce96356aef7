# Shared helpers for the scripts in this directory. Source it; do not run it.
# Everything the scripts install goes outside the repository, under
# ST_TOOLS_DIR (default ~/.cache/st-secrets), so later runs reuse it.

set -euo pipefail

ST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ST_TOOLS_DIR="${ST_TOOLS_DIR:-$HOME/.cache/st-secrets}" REL="$ST_ROOT/target/release"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}" PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# What each suite (and the example, command 1) needs from Debian's packages,
# as CHECK:PACKAGE pairs: CHECK is a command on PATH or an absolute path.
# Suites not named need none. The cross tools belong to dist and dist-checks.
declare -A ST_PACKAGES=(
  [example]="cc:gcc"
  [abi]="cc:gcc abidiff:abigail-tools"
  [ctest]="cc:gcc c++:g++ cmake:cmake ninja:ninja-build valgrind:valgrind pkg-config:pkg-config gcore:gdb"
  [interop]="cc:gcc gcore:gdb python3:python3 venv:python3-venv"
  [python]="cc:gcc python3:python3 venv:python3-venv"
  [go]="cc:gcc pkg-config:pkg-config"
  [consumers]="cc:gcc c++:g++ cmake:cmake ninja:ninja-build pkg-config:pkg-config man:man-db zsh:zsh fish:fish
    /usr/share/bash-completion/bash_completion:bash-completion"
  [cargo]="openssl:openssl"
  [servers]="python3:python3 venv:python3-venv openssl:openssl"
  [dist]="python3:python3 venv:python3-venv aarch64-linux-gnu-objcopy:binutils-aarch64-linux-gnu"
  [dist-checks]="qemu-aarch64:qemu-user aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu
    aarch64-linux-gnu-g++:g++-aarch64-linux-gnu
    /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1:libc6-arm64-cross /usr/include/sqlite3.h:libsqlite3-dev"
)
for s in moto openbao openbao-ha tool-servers; do ST_PACKAGES[$s]="${ST_PACKAGES[servers]}"; done
ST_PACKAGES[leases]="${ST_PACKAGES[servers]} /usr/lib/postgresql/15/bin/postgres:postgresql psql:postgresql-client"
ST_PACKAGES[slurm]="${ST_PACKAGES[leases]} cc:gcc make:make slurmctld:slurmctld slurmd:slurmd munged:munge
  sbatch:slurm-client slurmdbd:slurmdbd /usr/include/slurm/spank.h:libslurm-dev mariadbd:mariadb-server"
ST_PACKAGES[dist-checks]+=" ${ST_PACKAGES[ctest]} ${ST_PACKAGES[consumers]} ${ST_PACKAGES[dist]}"

# Installs the Debian packages the named suites need and lack: as root with
# apt-get, without recommended packages (none of these starts a service);
# otherwise it stops, naming them and the command that installs them.
ensure_packages() { # ensure_packages SUITE...
  local missing=() pair check s apt="-y --no-install-recommends"
  command -v cargo >/dev/null || die "cargo is required: install Rust with rustup (https://rustup.rs)"
  for s in "$@"; do
    for pair in ${ST_PACKAGES[$s]:-}; do
      check="${pair%%:*}"
      case "$check" in
        /*) [ -e "$check" ] ;;
        venv) python3 -c 'import venv, ensurepip' 2>/dev/null ;;
        *) command -v "$check" >/dev/null ;;
      esac || missing+=("${pair#*:}")
    done
  done
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep . | sort -u)
  (("${#missing[@]}")) || return 0
  [ "$(id -u)" = 0 ] ||
    die "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install $apt ${missing[*]}"
  say "installing system packages: ${missing[*]}"
  # Another installer (unattended-upgrades, a second run) may hold apt's and
  # dpkg's locks: waited for, 10 minutes at most, never a failure at once.
  # (apt-get update does not wait for its lists' lock itself.)
  local wait="-o DPkg::Lock::Timeout=600" tries=0 out
  until out="$(apt-get $wait update -qq 2>&1)"; do
    printf '%s\n' "$out" >&2
    grep -q "Could not get lock" <<<"$out" || die "apt-get update failed"
    ((++tries < 20)) || die "apt-get update: its lock was held for 10 minutes"
    say "apt-get update: another installer holds its lock: again in 30 s"
    sleep 30
  done
  DEBIAN_FRONTEND=noninteractive apt-get $wait install $apt -qq "${missing[@]}" >&2
}

# The one build of each profile every suite shares: the library and the tool
# together, so dependencies' features are the same whoever builds (the
# library alone unifies fewer of them, and cargo would build it again).
cargo_build() { cargo build --locked "$@" -p st-secrets -p st-secrets-cli; }

# The version of tool $1 (first x.y[.z] in `$1 $2`), or nothing.
tool_version() {
  command -v "$1" >/dev/null || return 0
  "$1" $2 2>/dev/null | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -1
}

# Whether version $1 is at least $2 (both x.y[.z]).
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}

# Checks, in the first seconds, the tools the named suites need and their
# versions (docs/install-and-release.md "Prerequisites"), so a missing one
# fails now rather than twenty minutes in. Debian's own Go and Node are older
# than needed.
check_prerequisites() { # check_prerequisites SUITE...
  local problems=() seen=() v suites=" $* "
  check_one() { # NAME COMMAND VERSION_ARG MINIMUM HINT SUITES
    local s needed=""
    for s in $6; do [[ "$suites" != *" $s "* ]] || needed=1; done
    [ -n "$needed" ] || return 0
    v="$(tool_version "$2" "$3")"
    if [ -z "$v" ]; then
      problems+=("$1 is missing (need >= $4; $5)")
    elif ! version_at_least "$v" "$4"; then
      problems+=("$1 $v is too old (need >= $4; $5)")
    else
      seen+=("$2 $v")
    fi
  }
  check_one Rust rustc --version 1.94.1 "rustup update stable" "$*"
  check_one Go go version 1.22 "from go.dev or a newer distro package" "go consumers tool-servers dist-checks"
  check_one Node.js node --version 20 "from nodejs.org or a newer distro package" "node consumers dist dist-checks"
  check_one npm npm --version 9 "comes with Node.js" "node consumers dist dist-checks"
  check_one CMake cmake --version 3.16 "apt-get install cmake" "ctest consumers dist-checks"
  check_one pkg-config pkg-config --version 0.29 "apt-get install pkg-config" "go consumers dist-checks"
  check_one Python python3 --version 3.10 "apt-get install python3" \
    "interop python moto openbao tool-servers dist dist-checks"
  if ((${#problems[@]})); then
    printf 'prerequisite: %s\n' "${problems[@]}" >&2
    die "prerequisites missing or too old (docs/install-and-release.md \"Prerequisites\")"
  fi
  say "prerequisites: ${seen[*]}"
}

# Creates (once) the Python virtual environment and installs the pinned
# requirements file given as $1 (tools/requirements-test.txt); prints the venv's python path.
ensure_venv() {
  local req="${1:-$ST_ROOT/tools/requirements-test.txt}" venv="$ST_TOOLS_DIR/venv"
  [ -x "$venv/bin/python" ] || { mkdir -p "$ST_TOOLS_DIR" && python3 -m venv "$venv" >&2; }
  local stamp="$venv/.installed-$(basename "$req")-$(sha256sum "$req" | cut -c1-16)"
  [ -f "$stamp" ] || { "$venv/bin/python" -m pip install -q -r "$req" >&2 && touch "$stamp"; }
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
  local py
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
  ensure_packages dist
}


# Compiles a C benchmark ($1) against the release library into $2; further
# arguments go to the compiler (other libraries to link).
build_c_bench() {
  local source="$1" output="$2"
  shift 2
  cargo_build --release
  cc -O2 -std=c11 -Wall -Wextra -Werror -I"$ST_ROOT/include" "$source" \
    -L"$ST_ROOT/target/release" -lst_secrets -Wl,-rpath,"$ST_ROOT/target/release" "$@" -lpthread \
    -o "$output"
}

# Builds a test tool from crates.io into ST_TOOLS_DIR/DIR once (no registry
# this machine reaches ships these prebuilt): without the crate's link-time
# optimisation and at opt-level OPT, since nothing here is shipped or timed.
tool_install() { # tool_install DIR OPT CRATE VERSION [CARGO_INSTALL_ARGS...]
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL="$2" \
    cargo install --locked "$3" --version "$4" --root "$ST_TOOLS_DIR/$1" "${@:5}" >&2 &&
    echo "$4" >"$ST_TOOLS_DIR/$1/version"
}
tool_current() { [ "$(cat "$ST_TOOLS_DIR/$1/version" 2>/dev/null)" = "$2" ]; } # tool_current DIR VERSION
