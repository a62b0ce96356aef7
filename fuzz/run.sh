#!/usr/bin/env bash
# Runs this directory's cargo-fuzz targets, each for SECONDS from its
# committed corpus (libFuzzer + ASan, nightly; what `scripts/test-all.sh fuzz`
# runs, with ST_FUZZ_SECONDS, default 15):
#
#   fuzz/run.sh SECONDS [TARGET...]      (default: every target)
#   fuzz/run.sh --prepare                the nightly toolchain and cargo-fuzz only
#   fuzz/run.sh --build                  those, and the targets' build (the test command's background)
#
# Fails on a crash, a hang (an input over 10 s) or over 2 GB; a crashing
# input stays in build/fuzz-artifacts/TARGET/. Ends with "fuzz: N passed, M failed".
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ST_ROOT"
seconds="${1:?usage: fuzz/run.sh SECONDS [TARGET...] | --prepare | --build}"
targets=("${@:2}")
artifacts="$ST_ROOT/build/fuzz-artifacts"
fuzz_bin="$ST_TOOLS_DIR/cargo-fuzz/bin"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
FUZZ_VERSION=0.13.2 # built unoptimised: it only drives cargo (44 s of CPU to build, 79 at -O1)
[ -x "$fuzz_bin/cargo-fuzz" ] && tool_current cargo-fuzz "$FUZZ_VERSION" || tool_install cargo-fuzz 0 cargo-fuzz "$FUZZ_VERSION"
[ "$seconds" != --prepare ] || exit 0
export PATH="$fuzz_bin:$PATH"
((${#targets[@]})) ||
  mapfile -t targets < <(sed -nE 's/^name = "([a-z_]+)"$/\1/p' fuzz/Cargo.toml | grep -v '^st-secrets-fuzz$')
say "building ${#targets[@]} fuzz targets (nightly, AddressSanitizer)"
# cargo-fuzz has no --locked: the lock file is checked current first, so the
# build has nothing to rewrite (and the checkout stays clean).
cargo +nightly metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null ||
  die "fuzz/Cargo.lock is not current: run cargo metadata --manifest-path fuzz/Cargo.toml and commit it"
cargo +nightly fuzz build -O || exit 1
[ "$seconds" != --build ] || exit 0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
CHECK_LOG="$work/log"
run_target() { # run_target TARGET: libFuzzer's own output in its log, shown on failure
  local t="$1" log="$work/$1.log" runs
  mkdir -p "$work/$t" "$artifacts/$t"
  cargo +nightly fuzz run -O "$t" "$work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 ||
    { grep -E 'ERROR|panicked|SUMMARY|Test unit written' "$log" | head -20; echo "input kept in $artifacts/$t/"; return 1; }
  runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)"
  echo "$t: ${runs:-?} executions in $seconds s" >>"$work/summary"
}
for t in "${targets[@]}"; do check "fuzz $t for $seconds s" run_target "$t"; done
[ ! -f "$work/summary" ] || cat "$work/summary"
checks_end fuzz
