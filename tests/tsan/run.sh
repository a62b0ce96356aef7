#!/usr/bin/env bash
# The cache's and the locks' unit tests under ThreadSanitizer (what
# `scripts/test-all.sh tsan` runs; nightly, -Zsanitizer=thread, the standard
# library rebuilt with it so std's locks are seen too; about 8 minutes to
# build, so not in the default run):
#
#   tests/tsan/run.sh
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ST_ROOT"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
  rustup component add rust-src --toolchain nightly
host="$(rustc -vV | sed -n 's/^host: //p')"
for module in cache:: sys::; do
  RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    cargo +nightly test -Zbuild-std --target "$host" --target-dir "$ST_ROOT/target/tsan" --lib "$module"
done
