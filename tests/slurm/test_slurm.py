"""The Slurm plugin (slurm/st_secrets_spank.c), installed by
scripts/install.sh, loaded by Debian's Slurm 22.05 (tests/slurm/cluster.py:
two slurmd on 127.0.0.1, slurmdbd on MariaDB, cgroup v1), fetching from
OpenBao (a KV secret; PostgreSQL credentials leased by its database engine)
and moto. Jobs of the unprivileged user `sttest`, submitted with
`sbatch --export=NONE`: what each task sees, what Slurm kept, one login per
node, and every lease and login token revoked however the job ends.
Run by tests/slurm/run.sh (scripts/test-all.sh slurm).
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import slurm_site as st_site  # noqa: E402

KEYS = "HF_TOKEN,REPLICATE_API_TOKEN,PG_PASSWORD,PG_USERNAME"
sha, task_lines = st_site.sha, st_site.task_lines


TASK = r"""#!/bin/bash
/usr/bin/srun -l /bin/bash -c '
  for v in HF_TOKEN_PATH REPLICATE_API_TOKEN_FILE PG_PASSWORD_FILE; do
    f="${!v}"; echo "$v $(stat -c "%a %U" "$f") $(/usr/bin/sha256sum < "$f" | cut -c1-64)"
  done
  env | grep -c -E "^(HF_TOKEN|REPLICATE_API_TOKEN|PG_PASSWORD)=" || true
  sleep %SLEEP%'
"""


def test_each_task_gets_files_slurm_keeps_nothing_and_a_node_logs_in_once(site, cl):
    logins = site.vault.audited("auth/slurm/login")
    job = cl.sbatch(TASK.replace("%SLEEP%", "4"), "--export=NONE", "-N2", "-n8", "--st-secrets=" + KEYS)
    leases, tokens = st_site.ledger_of(site, job)
    # The values, known to the test: the KV and moto secrets, and the
    # leased password read (as root) from the node's file.
    pg = [(d / "files/PG_PASSWORD").read_text() for d in st_site.job_dirs(site, job)]
    time.sleep(2)  # the tasks are in their sleep
    environs = st_site.task_environs(cl.info["uid"])
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "COMPLETED", out
    lines = task_lines(out)
    # Root's files (the group bits: the mask of an ACL letting the job's
    # user alone read them).
    assert lines.count(f"HF_TOKEN_PATH 640 root {sha(site.hf)}") == 8, out
    assert lines.count(f"REPLICATE_API_TOKEN_FILE 640 root {sha(site.aws_value)}") == 8, out
    assert sum(1 for l in lines if l.startswith("PG_PASSWORD_FILE 640 root")) == 8, out
    assert lines.count("0") == 8, "no value in any task's environment"
    assert len(environs) >= 8
    # One login per node, one lease of each node's credentials.
    assert site.vault.audited("auth/slurm/login") - logins == 2
    assert len(tokens) == 2 and len(leases) == 2
    values = [site.hf.encode(), site.aws_value.encode(), site.secret_id.encode()] + [p.encode() for p in pg]
    hits = st_site.found(st_site.places(cl, job, environs), values)
    assert hits == {}, f"values kept in {hits}"
    # Revoked at the job's end, and the job's directory gone.
    assert st_site.revoked_within(site.vault, leases, tokens, time.monotonic()) is not None
    assert not any(d.exists() for d in st_site.job_dirs(site, job))


def test_references_are_resolved_by_the_tasks_own_library(site, cl):
    tool = st_site.PREFIX / "bin/st-secrets"
    script = f"""#!/bin/bash
echo "batch $HF_TOKEN"
/usr/bin/srun -l /bin/bash -c 'echo "$HF_TOKEN $({tool} get HF_TOKEN | /usr/bin/sha256sum | cut -c1-64)"'
"""
    job = cl.sbatch(script, "--export=NONE", "-N2", "-n4", "--st-secrets=HF_TOKEN", "--st-secrets-as=refs")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "COMPLETED", out
    assert "batch st://HF_TOKEN" in out
    assert task_lines(out).count(f"st://HF_TOKEN {sha(site.hf)}") == 4, out
    assert site.hf not in out


def test_values_in_the_environment_only_where_the_site_allows_it(site, cl, plugstack):
    r = cl.as_user("sbatch", "--export=NONE", "--st-secrets=HF_TOKEN", "--st-secrets-as=env",
                   "--wrap", "true")
    assert r.returncode != 0 and "env=deny" in r.stderr, r.stderr
    plugstack(env="allow")
    script = "#!/bin/bash\n/usr/bin/srun -l /bin/bash -c 'echo $(echo -n \"$HF_TOKEN\" | /usr/bin/sha256sum)'\n"
    job = cl.sbatch(script, "--export=NONE", "-N1", "-n2", "--st-secrets=HF_TOKEN", "--st-secrets-as=env")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "COMPLETED" and task_lines(out).count(f"{sha(site.hf)} -") == 2, out


def test_the_sites_keys_come_first_and_a_job_may_name_them_again(site, cl, plugstack):
    plugstack(keys="HF_TOKEN")
    script = "#!/bin/bash\n/usr/bin/srun /bin/bash -c 'echo $(/usr/bin/sha256sum < \"$HF_TOKEN_PATH\")'\n"
    for extra in ([], ["--st-secrets=HF_TOKEN,REPLICATE_API_TOKEN"]):
        job = cl.sbatch(script, "--export=NONE", *extra)
        state = cl.wait(job)
        out = cl.output(job)
        assert state == "COMPLETED" and f"{sha(site.hf)} -" in out, out


def test_bad_input_fails_the_job_with_a_message_naming_it(site, cl, plugstack):
    # An option value that is no list: refused when submitted.
    r = cl.as_user("sbatch", "--export=NONE", "--st-secrets=1BAD,HF_TOKEN", "--wrap", "true")
    assert r.returncode != 0 and "'1BAD'" in r.stderr, r.stderr
    r = cl.as_user("sbatch", "--export=NONE", "--st-secrets-as=disk", "--wrap", "true")
    assert r.returncode != 0 and "'disk'" in r.stderr, r.stderr
    # A key set nowhere: the job's tasks fail, the output names it.
    job = cl.sbatch("#!/bin/bash\necho ran\n", "--export=NONE", "--st-secrets=HF_TOKEN,NOT_SET_ANYWHERE")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "FAILED" and "NOT_SET_ANYWHERE" in out and "ran" not in out, out
    assert site.hf not in out
    # A step asking for more than the job did: that step fails, naming it.
    script = "#!/bin/bash\n/usr/bin/srun --st-secrets=HF_TOKEN,REPLICATE_API_TOKEN /bin/true\necho after $?\n"
    job = cl.sbatch(script, "--export=NONE", "--st-secrets=HF_TOKEN")
    cl.wait(job)
    out = cl.output(job)
    assert "REPLICATE_API_TOKEN, which the job did not ask for" in out and "after 0" not in out, out
    # A configuration others may write; a server nobody answers at.
    bad = site.write("config-open.json", (site.dir / "config.json").read_text(), 0o666)
    plugstack(config=bad)
    job = cl.sbatch("#!/bin/bash\necho ran\n", "--export=NONE", "--st-secrets=HF_TOKEN")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "FAILED" and "config=" in out and "writable" in out, out
    dead = dict(site.config, vault_url="http://127.0.0.1:9", fleet_deadline=2, request_timeout=1)
    plugstack(config=site.write("config-dead.json", json.dumps(dead), 0o644))
    start = time.monotonic()  # PG_PASSWORD: only Vault has it (moto's secret holds an HF_TOKEN too)
    job = cl.sbatch("#!/bin/bash\necho ran\n", "--export=NONE", "--st-secrets=PG_PASSWORD")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "FAILED" and "vault" in out.lower() and "ran" not in out, out
    assert time.monotonic() - start < 120, "every wait is bounded"


USER_TRIES = r"""#!/bin/bash
files="$(dirname "$HF_TOKEN_PATH")"
try() { if "$@" 2>/dev/null; then echo "allowed: $*"; else echo "refused: $*"; fi; }
try touch "$files/planted"
try mkdir "$files/chain"
try ln -s / "$files/link"
try ln "$HOME/.bashrc" "$files/hard"
try mv "$HF_TOKEN_PATH" "$files/moved"
try sh -c "echo more >> '$HF_TOKEN_PATH'"
try chmod 666 "$HF_TOKEN_PATH"
try truncate -s 0 "$HF_TOKEN_PATH"
echo "listed $(ls "$files" | wc -l) read $(/usr/bin/sha256sum < "$HF_TOKEN_PATH" | cut -c1-64)"
"""


def test_the_jobs_user_adds_nothing_to_roots_directory_and_changes_no_file(site, cl):
    """files/ is root's (the job's group may list it), each file root's with
    an ACL letting the user read it: no entry, link, chain of names or byte
    the user could leave in root's tmpfs for root to walk or to fill it."""
    job = cl.sbatch(USER_TRIES, "--export=NONE", "--st-secrets=HF_TOKEN,REPLICATE_API_TOKEN")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "COMPLETED", out
    assert "allowed:" not in out and out.count("refused:") == 8, out
    assert f"listed 2 read {sha(site.hf)}" in out, out
    assert not any(d.exists() for d in st_site.job_dirs(site, job))


def test_a_full_dir_or_a_list_too_long_fails_the_job_with_its_reason(site, cl, plugstack, tmp_path):
    # dir= on its own small tmpfs, filled (as another user's job could fill
    # a tmpfs it may write to): the prolog's record of its failure cannot be
    # written whole, and the job still fails with a message.
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(small)], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={small}/fill", "bs=4k"], capture_output=True)
        plugstack(dir=small)
        job = cl.sbatch("#!/bin/bash\necho ran\n", "--export=NONE", "--st-secrets=HF_TOKEN")
        state = cl.wait(job)
        out = cl.output(job)
        assert state == "FAILED" and "ran" not in out, out
        assert "could not be recorded" in out or "No space left" in out, out
    finally:
        subprocess.run(["umount", "-l", str(small)])
    # The site's keys= and a job's list together past what the plugin keeps:
    # failed with a message, never run without its secrets.
    plugstack(keys=",".join(f"SITE{i:04d}" for i in range(500)))
    job = cl.sbatch("#!/bin/bash\necho ran\n", "--export=NONE",
                    "--st-secrets=" + ",".join(f"JOB{i:04d}" for i in range(300)))
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "FAILED" and "ran" not in out and "longer than" in out, out


def test_an_environment_file_others_may_read_is_refused(site, cl, plugstack):
    env = site.write("environment-open", (site.dir / "environment").read_text(), 0o644)
    plugstack(environment=env)
    job = cl.sbatch("#!/bin/bash\necho ran\n", "--export=NONE", "--st-secrets=HF_TOKEN")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "FAILED" and "ran" not in out and "readable by group or others" in out, out


def holding(site, cl, script, *args):
    """Submits a job that holds a lease and a login on each of both nodes;
    (job, leases, tokens) once they are held."""
    job = cl.sbatch(script, "--export=NONE", "-N2", "-n2", "--st-secrets=HF_TOKEN,PG_PASSWORD", *args)
    try:
        leases, tokens = st_site.ledger_of(site, job)
    except AssertionError as e:
        logs = "".join(p.read_text()[-1500:] for p in Path(cl.info["logs"]).glob("slurmd.*.log"))
        raise AssertionError(f"{e}: {cl.state(job)}\n{cl.output(job)}\n{logs}") from None
    assert len(tokens) == 2 and len(leases) == 2
    assert all(site.vault.token_alive(t) for t in tokens)
    return job, leases, tokens


def ending(site, cl, script, *args, act=None, expect=None, held=None):
    """Runs a job holding a lease and logins on both nodes (or takes the
    one `held` gives), ends it with `act(job)` (or by itself), and returns
    (state, seconds from its end until everything it held was revoked, job)."""
    job, leases, tokens = held or holding(site, cl, script, *args)
    if act:
        act(job)
    # Revocation watched from the job's end, not from after its epilogs.
    took = st_site.revoked_within(site.vault, leases, tokens, cl.ended(job))
    state = cl.wait(job, timeout=240)
    assert took is not None, f"job {job} ({state}): not revoked"
    if "--mem=100M" in args:
        assert "oom-kill" in cl.output(job), cl.output(job)
    if expect:
        assert state == expect, cl.output(job)
    return state, took, job


def revoked_where(cl, job, nodes=2):
    """What each node's slurmd log says revoked the job's ledger there
    ({node: "at the end of its batch step" | ... | "in the epilog"})."""
    found = {}
    for _ in range(50):
        for p in Path(cl.info["logs"]).glob("slurmd.*.log"):
            m = re.search(rf"st-secrets: job {job}: revoked (.+?): ", p.read_text(errors="replace"))
            if m:
                found[p.name.split(".")[1]] = m.group(1)
        if len(found) == nodes:
            break
        time.sleep(0.1)
    return found


RUNNING = "#!/bin/bash\n/usr/bin/srun /bin/sleep %s\n"


def test_every_ending_revokes_the_jobs_leases_and_tokens(site, cl):
    # The batch step's end revokes on its node; the other's epilog follows
    # the job's end at once (no step left to wait for).
    _, _, job = ending(site, cl, RUNNING % 3, expect="COMPLETED")
    assert sorted(revoked_where(cl, job).values()) == ["at the end of its batch step", "in the epilog"]
    ending(site, cl, "#!/bin/bash\n/usr/bin/srun /bin/bash -c 'sleep 3; exit 3'\n", expect="FAILED")
    # scancel: each node's signalled step revokes as it ends, ahead of the
    # epilog (which Slurm runs after a pause for the job's steps).
    _, _, job = ending(site, cl, RUNNING % 60, act=lambda j: subprocess.run(["scancel", str(j)], env=cl.env),
                       expect="CANCELLED")
    where = revoked_where(cl, job)
    assert len(where) == 2 and all(w.startswith("at the end of its") for w in where.values()), where
    # The batch script's shell killed (SIGKILL: what leaves `st-secrets run`'s
    # lease to its TTL): its step's end is the job's.
    _, _, job = ending(site, cl, RUNNING % 60, act=cl.kill_batch)
    assert "at the end of its batch step" in revoked_where(cl, job).values()
    # --signal: the batch shell is told ahead of its time limit and ends.
    trap = "#!/bin/bash\ntrap 'echo signalled; exit 0' USR1\n/usr/bin/srun /bin/sleep 120 & wait\n"
    # Slurm sends it at its periodic check (every 30 s): 110 s ahead of a
    # 2-minute limit leaves it a minute and more even on a loaded machine.
    ending(site, cl, trap, "--time=2", "--signal=B:USR1@110", expect="COMPLETED")
    # Out of memory: the job's cgroup (100 MB) kills the task.
    oom = "#!/bin/bash\n/usr/bin/srun /usr/bin/python3 -c 'x = b\"x\" * (400 << 20)'\n"
    state, _, _ = ending(site, cl, oom, "--mem=100M")
    assert state in ("OUT_OF_MEMORY", "FAILED")  # the step's OOM fails the batch script

    # slurmd killed and started again while the job runs: its epilog runs
    # after the restart.
    def restart(job):
        cl.restart_slurmd("n1")

    ending(site, cl, RUNNING % 4, act=restart, expect="COMPLETED")


@pytest.fixture(scope="session", autouse=True)
def time_limit_job(site, cl):
    """A job that runs into its time limit, submitted as the suite starts:
    Slurm's smallest limit is a minute, which the other tests overlap (the
    nodes have room for both: CPUs=8)."""
    return holding(site, cl, RUNNING % 300, "--time=1")


def test_the_time_limit_revokes(site, cl, time_limit_job):
    _, _, job = ending(site, cl, None, "--time=1", expect="TIMEOUT", held=time_limit_job)
    where = revoked_where(cl, job)
    assert len(where) == 2 and all(w.startswith("at the end of its") for w in where.values()), where
