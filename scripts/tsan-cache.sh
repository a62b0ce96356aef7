#!/usr/bin/env bash
# The cache's concurrency tests under ThreadSanitizer: the library's unit
# tests of src/cache (8 threads hammering a 1-shard and a 16-shard cache,
# single-flight races, the reference model) and src/sync (the fork-safe
# locks), built with nightly's -Zsanitizer=thread and the standard library
# rebuilt with it (-Zbuild-std, so std's locks and atomics are seen too).
# Any data race fails the run. Not part of scripts/test-all.sh: the
# instrumented standard library and dependencies take about 7 minutes to build
# on the 2-core machine; run it after changing the cache or the locks.
#
#   scripts/tsan-cache.sh
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
  rustup component add rust-src --toolchain nightly
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
for module in cache:: sync::; do
  cargo +nightly test -Zbuild-std --target "$host" --target-dir "$ST_ROOT/target/tsan" \
    --lib "$module"
done
