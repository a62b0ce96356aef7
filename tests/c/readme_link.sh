#!/usr/bin/env bash
# Runs the link commands of README.md's "Linking" section exactly as written
# (the fenced block after the marker <!-- link:NAME -->), from the repository
# root, then runs the program they built. Used by ctest.
set -euo pipefail
name="$1" root="$2"
cd "$root"
block=$(awk -v m="<!-- link:$name -->" '
  $0 == m {found = 1; next}
  found && /^```/ {if (inside) exit; inside = 1; next}
  inside {print}' README.md)
[ -n "$block" ] || { echo "README.md has no block after <!-- link:$name -->"; exit 1; }
echo "$block"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp examples/launcher.c "$tmp/app.c"
# The README builds "app" from "app.c" in the current directory, against the
# repository's include/ and target/release/: run it with those paths.
(cd "$tmp" && ST="$root" bash -euo pipefail -c "$block")
"$tmp/app"
