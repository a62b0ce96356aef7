# What a test run may leave: the `leftovers` check of scripts/test-all.sh
# (sourced by it). `leftovers_snapshot` lists what the run could change and
# must not; the run compares the list before and after (docs/testing.md):
#
#   - HOME, but the tool caches docs/install-and-release.md lists: every file
#     with its size and time, every directory by name;
#   - /dev/shm, the project's part only: what this user owns there, and
#     anything named like the project's own files (`st-secrets*`, made by
#     tests that run as another account) whoever owns it. Other users' files
#     (a PostgreSQL's segments, a browser's) come and go as they like; the
#     suites' own PostgreSQL keeps its segments in its data directory
#     (tests/servers.sh), so it leaves nothing there to tell apart;
#   - the checkout's `git status`: a run leaves it as it was (nothing
#     rewritten, nothing untracked outside the ignored target/ and build/).

# The HOME caches a run may write (each a path under HOME).
ST_HOME_CACHES=(.cache/st-secrets .cache/zig .cache/cargo-zigbuild .cache/go-build .cache/pip .cargo .rustup go .npm
  .config/go)

leftovers_snapshot() {
  local prune=() parents=() c
  for c in "${ST_HOME_CACHES[@]}"; do
    prune+=(-path "$HOME/$c" -prune -o)
    [[ "$c" != */* ]] || parents+=(-e "dir  $HOME/${c%/*}") # ~/.cache itself may be new
  done
  find "$HOME" -xdev "${prune[@]}" \( -type d -printf 'dir  %p\n' -o -printf '%y    %p %s %T@\n' \) 2>/dev/null |
    grep -vxF "${parents[@]}" | sort
  find /dev/shm -mindepth 1 \( -user "$(id -u)" -o -name 'st-secrets*' -o -name 'st_secrets*' \) \
    -printf 'shm  %y %u %p\n' 2>/dev/null | sort
  git -C "$ST_ROOT" status --porcelain=v1 --untracked-files=all 2>/dev/null | sed 's/^/git  /'
}
