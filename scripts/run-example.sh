#!/usr/bin/env bash
# Command 1 of the README: builds the library (release) and runs the example
# C launcher against it, linked exactly as the README's "Linking" section says.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
say "building libst_secrets (release)"
cargo build --release --lib
mkdir -p build
say "compiling examples/launcher.c"
cc -std=c11 -Wall -Wextra -Werror -Iinclude examples/launcher.c \
  -Ltarget/release -lst_secrets -Wl,-rpath,"$ST_ROOT/target/release" -o build/launcher
say "running the launcher"
build/launcher
