"""The slurm suite's shared fixtures: the site (slurm_site.Site), the
cluster started once with the site's plugstack line (cluster.py), and a
per-test rewrite of plugstack.conf."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import cluster as slurm  # noqa: E402
import slurm_site as st_site  # noqa: E402


@pytest.fixture(scope="session")
def site():
    s = st_site.Site()
    yield s
    s.remove()


@pytest.fixture(scope="session")
def cl(site, tmp_path_factory):
    d = Path("/tmp") / f"st-secrets-slurm-cluster.{site.dir.name.rsplit('.', 1)[-1]}"
    slurm.start(d, site.plugstack())
    c = slurm.Cluster(d)
    yield c
    slurm.stop(d)


@pytest.fixture()
def plugstack(site, cl):
    """Rewrites plugstack.conf for one test (read by each new slurmstepd),
    and puts the suite's back after."""
    path = Path(cl.info["dir"]) / "plugstack.conf"

    def use(**extra):
        path.write_text(site.plugstack(**extra) + "\n")

    yield use
    path.write_text(site.plugstack() + "\n")
