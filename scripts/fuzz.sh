#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo fuzz, libFuzzer with AddressSanitizer)
# for a bounded time, from the committed seed corpus, and fails on any crash,
# hang (a run over 10 s) or out-of-memory (over 2 GB):
#
#   scripts/fuzz.sh [--seconds N] [TARGET...]     (default 20 s a target, all targets)
#
# Installs what it needs once (the nightly toolchain is expected from rustup;
# cargo-fuzz is built into ~/.cache/st-secrets/cargo-fuzz). New inputs found
# go to a temporary corpus, not the committed one; a crashing input is kept
# in build/fuzz-artifacts/TARGET/ and printed as a regression-test candidate.
# Prints one line per target with its executions, then
# "fuzz: N passed, M failed".
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
seconds=20
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    -*) die "usage: scripts/fuzz.sh [--seconds N] [TARGET...]" ;;
    *) targets+=("$1"); shift ;;
  esac
done

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
fuzz_bin="$ST_TOOLS_DIR/cargo-fuzz/bin"
if [ ! -x "$fuzz_bin/cargo-fuzz" ]; then
  say "installing cargo-fuzz into $ST_TOOLS_DIR/cargo-fuzz (once)"
  cargo install cargo-fuzz --locked --root "$ST_TOOLS_DIR/cargo-fuzz"
fi
export PATH="$fuzz_bin:$PATH"

if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(sed -nE 's/^name = "([a-z_]+)"$/\1/p' fuzz/Cargo.toml | grep -v '^st-secrets-fuzz$')
fi
say "building ${#targets[@]} fuzz targets (nightly, AddressSanitizer)"
cargo +nightly fuzz build -O

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
artifacts="$ST_ROOT/build/fuzz-artifacts"
passed=0
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "$artifacts/$t"
  log="$work/$t.log"
  # The first corpus directory receives new inputs; the committed seeds are
  # read only. -timeout: a single input running over 10 s is a hang.
  if cargo +nightly fuzz run -O "$t" "$work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)"
    echo "ok     fuzz $t: ${runs:-?} executions in ${seconds} s, corpus $(find "$work/$t" "fuzz/corpus/$t" -type f | wc -l) inputs"
    passed=$((passed + 1))
  else
    echo "FAILED fuzz $t (input kept in $artifacts/$t/):"
    grep -E 'ERROR|panicked|SUMMARY|Test unit written' "$log" | head -20 | sed 's/^/    | /'
    failed=$((failed + 1))
  fi
done
echo
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
