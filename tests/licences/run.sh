#!/usr/bin/env bash
# The licences of everything the artifacts bundle:
#
#   tests/licences/run.sh            check (what the test command runs)
#   tests/licences/run.sh --update   rewrite THIRD-PARTY-NOTICES.txt
#   tests/licences/run.sh --prepare  install cargo-about only
#
# cargo-about (crates.io, installed under ~/.cache/st-secrets) reads Cargo.lock
# and each crate's licence files for the code that is shipped: the library,
# the tool and the Python extension on the release targets, not build or dev
# dependencies (tools/about.toml). It fails on a crate whose licence is not on
# that file's allow-list; otherwise it renders tools/notices.hbs, which must
# equal the committed THIRD-PARTY-NOTICES.txt that the tarball, the wheel and
# the npm package carry. Ends with "licences: N passed, M failed".
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ST_ROOT"
ABOUT_VERSION=0.9.3
bin="$ST_TOOLS_DIR/cargo-about/bin"
[ "$("$bin/cargo-about" --version 2>/dev/null)" = "cargo-about $ABOUT_VERSION" ] ||
  tool_install cargo-about 2 cargo-about "$ABOUT_VERSION" --features cli || die "cargo-about did not install"
[ "${1:-}" != --prepare ] || exit 0
export PATH="$bin:$PATH"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
CHECK_LOG="$work/log"

generate() { # generate OUT [CONFIG [MANIFEST]]: fails on a licence not on CONFIG's allow-list
  cargo about generate --workspace --locked --fail -c "${2:-tools/about.toml}" -m "${3:-Cargo.toml}" \
    tools/notices.hbs -o "$1"
}
if [ "${1:-}" = --update ]; then
  generate THIRD-PARTY-NOTICES.txt && echo "wrote THIRD-PARTY-NOTICES.txt" && exit 0
  die "cargo-about failed (above)"
fi

check "every shipped crate's licence is on the allow-list (tools/about.toml)" generate "$work/notices.txt"
current() {
  cmp -s "$work/notices.txt" THIRD-PARTY-NOTICES.txt && return 0
  diff -u THIRD-PARTY-NOTICES.txt "$work/notices.txt" | head -20
  echo "THIRD-PARTY-NOTICES.txt is stale: tests/licences/run.sh --update"
  return 1
}
check "THIRD-PARTY-NOTICES.txt is what Cargo.lock gives" current
# Live: fernet (tests/licences/live, its own package) passes the allow-list
# and fails one without MPL-2.0, for fernet's licence.
narrow() {
  sed 's/"MPL-2.0", //' tools/about.toml >"$work/narrow.toml"
  generate "$work/live.txt" tools/about.toml tests/licences/live/Cargo.toml || return 1
  ! generate "$work/n.txt" "$work/narrow.toml" tests/licences/live/Cargo.toml 2>"$work/narrow.err" &&
    grep -q 'MPL-2.0' "$work/narrow.err"
}
check "a licence off the allow-list fails the run (the check is live)" narrow
checks_end licences
