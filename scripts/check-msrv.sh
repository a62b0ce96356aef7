#!/usr/bin/env bash
# Checks that `rust-version` is honest: it is exactly the lowest toolchain the
# locked dependencies accept (the highest `rust-version` among the crates the
# library, the tool and the Python extension build, dev-dependencies aside),
# the three crates declare the same, and that toolchain builds the whole
# workspace (`cargo +<rust-version> build --locked`, profile msrv, in
# target/msrv). A toolchain below it stops at cargo's own check, naming the
# crate and the version it needs, before compiling anything.
#
#   scripts/check-msrv.sh
#
# Installs that toolchain with rustup (minimal profile) when it is missing.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
declared="$(sed -nE 's/^rust-version = "([^"]+)"/\1/p' Cargo.toml)"
for m in cli/Cargo.toml bindings/python/Cargo.toml; do
  [ "$(sed -nE 's/^rust-version = "([^"]+)"/\1/p' "$m")" = "$declared" ] ||
    die "$m declares another rust-version than Cargo.toml ($declared)"
done
# The floor: the highest rust-version over the non-dev dependency closure of
# the workspace members, for Linux.
floor="$(cargo metadata --locked --format-version 1 --filter-platform x86_64-unknown-linux-gnu | python3 -c '
import json, sys
m = json.load(sys.stdin)
pkgs = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
seen, todo = set(), list(m["workspace_members"])
while todo:
    i = todo.pop()
    if i in seen:
        continue
    seen.add(i)
    for d in nodes[i]["deps"]:
        if any(k["kind"] != "dev" for k in d["dep_kinds"]):
            todo.append(d["pkg"])
def key(v):
    return tuple(int(x) for x in v.split("."))
need = [(key(pkgs[i]["rust_version"]), pkgs[i]["name"], pkgs[i]["rust_version"])
        for i in seen if pkgs[i].get("rust_version") and i not in m["workspace_members"]]
need.sort()
top = need[-1]
names = sorted({n for k, n, v in need if k == top[0]})
print(top[2], " ".join(names))')"
floor_version="${floor%% *}"
echo "the locked dependencies need Rust >= $floor_version (${floor#* })"
[ "$(printf '%s' "$declared" | awk -F. '{print $1"."$2"."($3==""?0:$3)}')" = \
  "$(printf '%s' "$floor_version" | awk -F. '{print $1"."$2"."($3==""?0:$3)}')" ] ||
  die "rust-version is $declared, but the locked dependencies need exactly $floor_version: declare that"
echo "rust-version = \"$declared\" is that floor"
if ! rustup run "$declared" rustc --version >/dev/null 2>&1; then
  say "installing Rust $declared (rustup, minimal profile)"
  rustup toolchain install "$declared" --profile minimal >&2
fi
started=$SECONDS
CARGO_TARGET_DIR="$ST_ROOT/target/msrv" cargo "+$declared" build --locked --workspace --profile msrv
echo "built the workspace with $(rustup run "$declared" rustc --version) in $((SECONDS - started)) s"
