#!/usr/bin/env bash
# The two commands of the README, timed as a newcomer meets them (what
# `scripts/bench.sh commands` runs; about 90 minutes on 2 cores):
#
#   benches/commands/run.sh OUT_DIR [PHASE...]
#
# PHASE (default all, in this order):
#   example-fresh   command 1 in a fresh clone with an empty cargo registry
#   example-warm    command 1 in another fresh clone, the registry warm
#   example-again   command 1 again in that clone
#   tests-fresh     command 2 in a fresh clone with a fresh HOME: no tools, no
#                   caches, an empty cargo registry, rustup with the stable and
#                   nightly toolchains as this kind of machine comes (stable's
#                   extra targets and components removed); the machine's own
#                   settings (.npmrc, Go's env) copied in
#   tests-again     command 2 again in that clone and HOME
#
# Debian packages already installed stay installed (root's, not HOME's).
# Prints a markdown table (minutes; the disk each phase added to the clone
# and to HOME), then command 2's suites side by side, fresh and again; each
# run's suite logs are kept in OUT_DIR/PHASE-logs.
set -euo pipefail
# The docs test of the cost table skips itself in these runs: they replace it.
export ST_BENCH_COMMANDS=1
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?usage: benches/commands/run.sh OUT_DIR [PHASE...]}"
shift
phases=("$@")
((${#phases[@]})) || phases=(example-fresh example-warm example-again tests-fresh tests-again)
work="$(mktemp -d /tmp/st-bench-commands.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
rows=()
size() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {printf "%.1f GB", s / 1e9}'; }
added() { du -sb "$1" | awk -v b="$2" '{printf "%.1f GB", ($1 - b) / 1e9}'; } # added DIR BYTES_BEFORE
clone() { git clone -q "$ROOT" "$1" && git -C "$1" checkout -q "$(git -C "$ROOT" rev-parse HEAD)"; }
timed() { # timed NAME LOG COMMAND...: runs it, keeps its output, sets took (minutes)
  local start=$SECONDS rc=0
  "${@:3}" >"$2" 2>&1 || rc=$?
  took="$(awk -v s=$((SECONDS - start)) 'BEGIN {printf "%.1f", s / 60}')"
  [ "$rc" = 0 ] && return 0
  tail -30 "$2" >&2 && echo "$1 failed (exit $rc); its log: $2" >&2
  local which
  which="$(sed -nE 's/^([a-z-]+) +FAILED.*/\1/p' "$2" | paste -sd, -)"
  took="$took (failed${which:+: $which})"
}
fresh_home="$work/home"
fresh_env=(env HOME="$fresh_home" RUSTUP_HOME="$fresh_home/.rustup" CARGO_HOME="$fresh_home/.cargo")
make_fresh_home() {
  local rustup_home="${RUSTUP_HOME:-$HOME/.rustup}" t
  mkdir -p "$fresh_home/.rustup/toolchains" "$fresh_home/.rustup/update-hashes" "$fresh_home/.config/go"
  cp -a "$rustup_home/settings.toml" "$fresh_home/.rustup/"
  for t in stable nightly; do
    t="$(basename "$(rustup run "$t" rustc --print sysroot)")"
    cp -a "$rustup_home/toolchains/$t" "$fresh_home/.rustup/toolchains/"
    cp -a "$rustup_home/update-hashes/$t" "$fresh_home/.rustup/update-hashes/" 2>/dev/null || true
  done
  for t in $("${fresh_env[@]}" rustup target list --toolchain stable --installed); do
    [ "$t" = "$(rustc -vV | sed -n 's/^host: //p')" ] || "${fresh_env[@]}" rustup target remove --toolchain stable "$t" >/dev/null 2>&1
  done
  "${fresh_env[@]}" rustup component remove --toolchain stable llvm-tools >/dev/null 2>&1 || true
  "${fresh_env[@]}" rustup component remove --toolchain nightly rust-src >/dev/null 2>&1 || true
  [ ! -f "$HOME/.npmrc" ] || cp "$HOME/.npmrc" "$fresh_home/"
  [ ! -f "$HOME/.config/go/env" ] || cp "$HOME/.config/go/env" "$fresh_home/.config/go/"
}
suite_times() { sed -nE 's/^([a-z-]+) +(passed|FAILED \(exit [0-9]+\)) .* ([0-9]+ min [0-9]+ s)$/\1 \3/p' "$1"; }
for phase in "${phases[@]}"; do
  case "$phase" in
    example-fresh)
      clone "$work/c1"
      timed "$phase" "$out/$phase.log" env CARGO_HOME="$work/cargo-empty" bash "$work/c1/scripts/run-example.sh"
      rows+=("| 1 | fresh clone, empty cargo registry | $took | $(size "$work/c1") + $(size "$work/cargo-empty/registry") registry |")
      rm -rf "$work/c1" "$work/cargo-empty" ;;
    example-warm)
      clone "$work/c2"
      timed "$phase" "$out/$phase.log" bash "$work/c2/scripts/run-example.sh"
      rows+=("| 1 | fresh clone, warm registry | $took | $(size "$work/c2") |") ;;
    example-again)
      [ -d "$work/c2" ] || { clone "$work/c2" && bash "$work/c2/scripts/run-example.sh" >/dev/null 2>&1; }
      timed "$phase" "$out/$phase.log" bash "$work/c2/scripts/run-example.sh"
      rows+=("| 1 | again | $took | nothing more |")
      rm -rf "$work/c2" ;;
    tests-fresh)
      clone "$work/c3"
      make_fresh_home
      home0="$(du -sb "$fresh_home" | cut -f1)"
      timed "$phase" "$out/$phase.log" "${fresh_env[@]}" bash "$work/c3/scripts/test-all.sh"
      rm -rf "$out/$phase-logs" && cp -r "$work/c3/build/test-logs" "$out/$phase-logs" # each suite's log, kept
      rows+=("| 2 | fresh clone, fresh HOME | $took | $(size "$work/c3") + $(added "$fresh_home" "$home0") added to HOME |") ;;
    tests-again)
      [ -d "$work/c3" ] || { echo "tests-again follows tests-fresh" >&2; exit 2; }
      timed "$phase" "$out/$phase.log" "${fresh_env[@]}" bash "$work/c3/scripts/test-all.sh"
      rm -rf "$out/$phase-logs" && cp -r "$work/c3/build/test-logs" "$out/$phase-logs"
      rows+=("| 2 | again | $took | $(size "$work/c3") + $(added "$fresh_home" "$home0") added to HOME, in all |") ;;
    *) echo "no phase $phase" >&2; exit 2 ;;
  esac
done
echo "| command | starting from | minutes | disk |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if [ -f "$out/tests-fresh.log" ]; then
  echo
  echo "Command 2's suites (\`dist\` builds in the background from the first server suite on, for the minutes shown):"
  echo
  echo "| suite | fresh | again |"
  echo "|---|---|---|"
  awk -F'|' 'FILENAME == ARGV[1] {again[$1] = $2; next} {printf "| `%s` | %s | %s |\n", $1, $2, ($1 in again ? again[$1] : "-")}' \
    <([ -f "$out/tests-again.log" ] && suite_times "$out/tests-again.log" | sed 's/ /|/') \
    <(suite_times "$out/tests-fresh.log" | sed 's/ /|/')
fi
