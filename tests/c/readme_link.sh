#!/usr/bin/env bash
# Runs the documentation's C as written, from the repository root. Used by ctest.
#   readme_link.sh shared|static ROOT: the link commands of
#     docs/install-and-release.md (the fenced block after <!-- link:NAME -->),
#     building examples/launcher.c, then runs the program they built;
#   readme_link.sh example ROOT: the README's C launcher (the block after
#     <!-- example:c -->), built with the shared link line, run with HF_TOKEN
#     set (exit 0) and unset (exit 1, "set nowhere").
set -euo pipefail
name="$1" root="$2"
cd "$root"
block_after() { # block_after MARKER FILE
  awk -v m="$1" '$0 == m {found = 1; next}
    found && /^```/ {if (inside) exit; inside = 1; next}
    inside {print}' "$2"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
link="$(block_after "<!-- link:${name/example/shared} -->" docs/install-and-release.md)"
[ -n "$link" ] || { echo "docs/install-and-release.md has no block after <!-- link:$name -->"; exit 1; }
if [ "$name" = example ]; then
  block_after "<!-- example:c -->" README.md >"$tmp/app.c"
  [ -s "$tmp/app.c" ] || { echo "README.md has no block after <!-- example:c -->"; exit 1; }
  cat "$tmp/app.c"
else
  cp examples/launcher.c "$tmp/app.c"
fi
echo "$link"
# The page builds "app" from "app.c" in the current directory, against the
# repository's include/ and target/release/: run it with those paths.
(cd "$tmp" && ST="$root" bash -euo pipefail -c "$link")
if [ "$name" = example ]; then
  home="$tmp/home" && mkdir -p "$home"
  env -i HOME="$home" HF_TOKEN=hf_readme_example "$tmp/app"
  rc=0 && out="$(env -i HOME="$home" "$tmp/app" 2>&1)" || rc=$?
  [ "$rc" = 1 ] && [[ "$out" == *"set nowhere"* ]] || { echo "without HF_TOKEN: exit $rc, $out"; exit 1; }
  echo "the README's example: exit 0 with HF_TOKEN, 1 without"
else
  "$tmp/app"
fi
