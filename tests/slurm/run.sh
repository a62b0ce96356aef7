#!/usr/bin/env bash
# The slurm suite: st-secrets installed into a prefix outside the repository
# (scripts/install.sh, which builds the SPANK plugin against Debian's
# libslurm-dev), OpenBao with its database engine on PostgreSQL and moto
# (tests/servers.sh), then tests/slurm/test_slurm.py, which starts Debian's
# Slurm 22.05 (tests/slurm/cluster.py) with the plugin in plugstack.conf.
# Needs root: it starts munged and slurmd, and runs the jobs as the user
# `sttest` (created if missing). Its servers stop at the end.
#
#   tests/slurm/run.sh [PYTEST_ARGS...]
#   tests/slurm/run.sh --bench TABLE [principal]   benches/slurm/bench.py's tables into TABLE
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ST_ROOT/tests/servers.sh"
cd "$ST_ROOT"
[ "$(id -u)" = 0 ] || die "the slurm suite starts munged and slurmd and runs jobs as another user: run it as root"
py="$(ensure_venv "$ST_ROOT/tools/requirements-test.txt")"
logs="$ST_ROOT/build/test-logs/slurm"
mkdir -p "$logs"
# Root's daemons load the plugin and the library from here; the job user
# runs the tool from it: a directory both reach, outside the repository.
prefix="$(mktemp -d /tmp/st-secrets-slurm-prefix.XXXXXX)"
chmod 0755 "$prefix"
ST_SERVER_DIRS+=("$prefix")
trap 'stop_servers' EXIT
bash scripts/install.sh --prefix "$prefix" >"$logs/install.log" 2>&1 || { cat "$logs/install.log"; die "install failed"; }
[ -f "$prefix/lib/slurm/st_secrets_spank.so" ] || die "install.sh built no Slurm plugin (is libslurm-dev installed?)"
start_moto "$py" "$logs"
start_openbao "$py" "$logs"
start_postgres "$logs"
"$py" tests/vault/leases_setup.py "$VAULT_SETUP" "$PG_PORT" "$PG_SUPERPASS" "$logs/leases-setup.json" >/dev/null ||
  die "OpenBao's database engine was not set up"
export ST_SLURM_LOGS="$logs/cluster" ST_SLURM_PREFIX="$prefix"
export ST_SLURM_LEASES="$logs/leases-setup.json" ST_SLURM_MOTO="$MOTO_SETUP"
if [ "${1:-}" = --bench ]; then
  "$py" benches/slurm/bench.py "${@:3}" >"$2"
else
  "$py" -m pytest -p no:cacheprovider -v tests/slurm "$@"
fi
