"""A canary secret across the channels a job leaks through (canary_job.py):
the documented way (references resolved by each rank) and `run --as-files`
leave it in none; `run`'s environment mode and a plain `export` are the
controls, and must be found where they put it (the checks can fail).

Environment: ST_SECRETS_BIN (the tool), ST_SECRETS_LIB (the C library);
gdb's gcore and wandb (the test venv) on PATH."""

import os

import pytest

from canary_job import run_job

BIN = os.environ["ST_SECRETS_BIN"]
LIB = os.environ["ST_SECRETS_LIB"]


@pytest.mark.parametrize("mode", ["reference", "as-files", "run-env", "export"])
def test_the_canary_reaches_only_what_each_mode_puts_it_in(mode, tmp_path):
    hits, ranks, length = run_job(mode, tmp_path, BIN, LIB)
    # Every rank got the value through the library, whatever the mode.
    assert [(rc, n) for _, rc, n in ranks] == [(0, length), (0, length)], ranks
    if mode in ("reference", "as-files"):
        assert hits == dict.fromkeys(hits, 0), hits
    elif mode == "run-env":
        # In the ranks' environment, so in their /proc, ps, core dump and
        # W&B config; never in what the launcher itself wrote.
        assert all(hits[c] > 0 for c in ("environ", "ps", "core", "wandb")), hits
        assert hits["job"] == 0 and hits["history"] == 0, hits
    else:
        assert all(n > 0 for n in hits.values()), hits
