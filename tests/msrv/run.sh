#!/usr/bin/env bash
# The toolchain floor (what `scripts/test-all.sh msrv` runs):
#
#   tests/msrv/run.sh
#   tests/msrv/run.sh --prepare    install that toolchain only
#
# `rust-version` (the same in the three crates) is exactly the highest
# rust-version among the locked non-dev dependencies, and that toolchain
# (installed with rustup when missing) checks the workspace: `cargo check`,
# which type-checks every crate and runs the build scripts (the bundled
# SQLite is compiled) but leaves out code generation, the part a toolchain
# floor does not move; profile msrv, in target/msrv.
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ST_ROOT"
declared="$(sed -nE 's/^rust-version = "([^"]+)"/\1/p' Cargo.toml)"
rustup run "$declared" rustc --version >/dev/null 2>&1 ||
  rustup toolchain install "$declared" --profile minimal >&2
[ "${1:-}" != --prepare ] || exit 0
for m in cli/Cargo.toml bindings/python/Cargo.toml; do
  [ "$(sed -nE 's/^rust-version = "([^"]+)"/\1/p' "$m")" = "$declared" ] ||
    die "$m declares another rust-version than Cargo.toml ($declared)"
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
  die "rust-version is $declared, but the locked dependencies need exactly ${floor%% *}"
CARGO_TARGET_DIR="$ST_ROOT/target/msrv" cargo "+$declared" check --locked --workspace --profile msrv &&
  echo "checked the workspace with $(rustup run "$declared" rustc --version)"
