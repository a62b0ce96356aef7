"""The job as its own principal (slurm/job_token.c, docs/job-token.md) in the
slurm suite's cluster: the site's RSA key (openssl, root's 0600), OpenBao's
`jwt` method at `slurm-st/` trusting its public key, a templated policy that
reads `users/USER/*` and `accounts/ACCOUNT/*` by the login's claims, and two
users in two accounts (cluster.py: `sttest` in vision, `sttest2` in nlp,
accounts enforced). The plugin mints each job's token from slurmctld's
record and reads with it: the site's configuration holds no identity that
could read a user's secret. Also the plugin's three smaller defects: a name
as the job wrote it, the node cache in the plugin's context, and a failed
prolog's reason in the job's output.
"""

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "exchange"))
import cluster as slurm  # noqa: E402
from fake_vendors import FakeVendors  # noqa: E402
import slurm_site as st_site  # noqa: E402

sha, task_lines = st_site.sha, st_site.task_lines
slurm_live = slurm.LIVE
MOUNT, LIFETIME = st_site.JOB_MOUNT, st_site.JOB_LIFETIME
# What a task prints of its job's token: the claims that decide what it reads.
CLAIMS = r"""import base64, json, os, sys
path = os.environ["SIMPLETUNER_JOB_TOKEN_FILE"]
token = open(path).read().strip()
c = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
mode = oct(os.stat(path).st_mode & 0o777)[2:]
print("token", mode, os.stat(path).st_uid, c["user"], c["account"], c["sub"], c["aud"], c["exp"] - c["iat"])
if len(sys.argv) > 1:
    open(sys.argv[1], "w").write(token)
"""
# Samples the job's token for argv[1] seconds: whether one was ever past its exp.
# Task 0 copies the first it reads to argv[2].
SAMPLE = r"""import base64, json, os, sys, time
end, seen, n, expired = time.time() + float(sys.argv[1]), set(), 0, 0
while time.time() < end:
    token = open(os.environ["SIMPLETUNER_JOB_TOKEN_FILE"]).read().strip()
    if not seen and os.environ["SLURM_PROCID"] == "0":
        open(sys.argv[2], "w").write(token)
    c = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    n, expired = n + 1, expired + (c["exp"] <= time.time())
    seen.add(c["jti"])
    time.sleep(2)
print(f"samples {n} expired {expired} tokens {len(seen)}")
"""


# Reads the job's exchanged keys where their SDKs do, every second for
# argv[1] seconds, and calls each vendor's API (argv[2]: the fake's base
# URL) with what it read: W&B's credentials file, Hugging Face's token file.
READER = r"""import json, os, sys, time, urllib.error, urllib.request
base, end = sys.argv[2], time.time() + float(sys.argv[1])
seen, calls, refused = {"wandb": set(), "hf": set()}, 0, 0
assert os.environ["WANDB_IDENTITY_TOKEN_FILE"].endswith("/token.wandb")
while time.time() < end:
    creds = json.load(open(os.environ["WANDB_CREDENTIALS_FILE"]))["credentials"]
    tokens = {"wandb": creds[os.environ["WANDB_BASE_URL"]]["access_token"],
              "hf": open(os.environ["HF_TOKEN_PATH"]).read()}
    for vendor, path in (("wandb", "/graphql"), ("hf", "/api/whoami-v2")):
        seen[vendor].add(tokens[vendor])
        req = urllib.request.Request(f"{base}/{vendor}{path}", headers={"Authorization": "Bearer " + tokens[vendor]},
                                     data=b"{}" if vendor == "wandb" else None)
        calls += 1
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except urllib.error.HTTPError:
            refused += 1
    time.sleep(1)
print(f"reads calls {calls} refused {refused} wandb {len(seen['wandb'])} hf {len(seen['hf'])}")
"""


def claims_line(user, account, job):
    return f"token 640 0 {user} {account} job/st/{job}/0 openbao {LIFETIME}"


@pytest.fixture(scope="module")
def jobs(site, cl):
    j = st_site.job_tokens(site, Path(cl.info["work"]))
    for name, text in (("claims.py", CLAIMS), ("sample.py", SAMPLE)):
        (j.work / name).write_text(text)
        os.chmod(j.work / name, 0o644)
    return j


@pytest.fixture(scope="module")
def long_job(site, cl, jobs):
    """Submitted first, so that the module's other tests run meanwhile: a
    job running 90 s (one and a half lifetimes of its token), whose tasks
    sample their token every 2 s and copy out the first (`first`), and a
    short job whose task copies its token out (`copied`)."""
    path = Path(cl.info["dir"]) / "plugstack.conf"
    path.write_text(site.plugstack(**jobs.args) + "\n")
    first = jobs.work / f"first-{secrets.token_hex(4)}"
    job = cl.sbatch(f"#!/bin/bash\n/usr/bin/srun -l /usr/bin/python3 {jobs.work}/sample.py 90 {first}\n",
                    "--export=NONE", "-N2", "-n2", "-A", "vision")
    copied = jobs.work / f"copied-{secrets.token_hex(4)}"
    copier = cl.sbatch(READ % (jobs.work, copied), "--export=NONE", "-N1", "-n1", "-A", "vision",
                       "--st-secrets=HF_TOKEN")
    cl.until(copier, 120, lambda s: s not in slurm_live)
    return SimpleNamespace(job=job, copier=copier, copied=copied, first=first)


def login(vault, token):
    """OpenBao's answer to a login with `token`: (HTTP status, its errors)."""
    status, body = vault.call("POST", f"auth/{MOUNT}/login", {"role": "job", "jwt": token}, ok=None)
    if status == 200:
        vault.call("POST", "auth/token/revoke", {"token": body["auth"]["client_token"]})
    return status, (body or {}).get("errors")


READ = """#!/bin/bash
/usr/bin/srun -l /bin/bash -c '
  for v in HF_TOKEN_PATH DATASET_TOKEN_FILE; do s=$(/usr/bin/sha256sum < "${!v}"); echo "$v ${s:0:64}"; done
  /usr/bin/python3 %s/claims.py %s'
"""


def test_each_job_reads_its_users_and_accounts_secrets_and_is_refused_anothers(site, cl, plugstack, jobs,
                                                                               long_job):
    plugstack(**jobs.args)
    logins = site.vault.audited(f"auth/{MOUNT}/login")
    keys = "--st-secrets=HF_TOKEN,DATASET_TOKEN"
    mine = cl.sbatch(READ % (jobs.work, ""), "--export=NONE", "-N2", "-n2", "-A", "vision", keys)
    theirs = cl.sbatch(READ % (jobs.work, ""), "--export=NONE", "-N1", "-n1", keys, user="sttest2")
    v = jobs.values
    for job, user, account, n in ((mine, "sttest", "vision", 2), (theirs, "sttest2", "nlp", 1)):
        state = cl.wait(job)
        out = cl.output(job)
        assert state == "COMPLETED", out
        lines = task_lines(out)
        assert lines.count(f"HF_TOKEN_PATH {sha(v[user])}") == n, out
        assert lines.count(f"DATASET_TOKEN_FILE {sha(v[account])}") == n, out
        assert lines.count(claims_line(user, account, job)) == n, out
    # One login per node per job with the job's token to read, and one at
    # its end, disabling the run's entity (refused once another node did).
    assert site.vault.audited(f"auth/{MOUNT}/login") - logins == 3 + 3
    # Slurm refuses an account the user is not in: the claim is Slurm's.
    r = cl.as_user("sbatch", "--export=NONE", "-A", "nlp", "--wrap", "true")
    assert r.returncode != 0 and "account" in r.stderr.lower(), r.stderr
    # The store refuses another's secret: the site's paths pointed at
    # sttest2's, a job of sttest fails naming the key and the refusal.
    plugstack(**dict(jobs.args, job_paths="users/sttest2/train"))
    job = cl.sbatch("#!/bin/bash\necho ran\n", "--export=NONE", "-A", "vision", "--st-secrets=HF_TOKEN")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "FAILED" and "ran" not in out and "HF_TOKEN" in out, out
    assert "denied" in out.lower() or "permission" in out.lower(), out
    assert not any(value in out for value in v.values()), out


def test_the_jobs_environment_changes_no_claim(site, cl, plugstack, jobs):
    plugstack(**jobs.args)
    forged = jobs.work / "forged-token"
    forged.write_text("not.a.token")
    os.chmod(forged, 0o644)
    spoof = (f"--export=SLURM_JOB_ACCOUNT=nlp,SLURM_JOB_USER=sttest2,SIMPLETUNER_JOB_TOKEN_FILE={forged},"
             "SIMPLETUNER_VAULT_PATH=users/sttest2/train")
    job = cl.sbatch(READ % (jobs.work, ""), spoof, "-N1", "-n1", "-A", "vision",
                    "--st-secrets=HF_TOKEN,DATASET_TOKEN")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "COMPLETED", out
    lines = task_lines(out)
    assert lines.count(claims_line("sttest", "vision", job)) == 1, out
    assert lines.count(f"HF_TOKEN_PATH {sha(jobs.values['sttest'])}") == 1, out


def test_a_signing_key_others_may_read_stops_the_plugin_with_a_message(site, cl, plugstack, jobs):
    open_key = site.write("job-signing-open.key", jobs.key.read_text(), 0o644)
    plugstack(**dict(jobs.args, job_token_key=open_key))
    job = cl.sbatch("#!/bin/bash\n/usr/bin/srun /bin/true\necho after $?\n", "--export=NONE", "-A", "vision",
                    "--st-secrets=HF_TOKEN")
    state = cl.wait(job)
    out = cl.output(job)
    assert "job_token_key" in out and "read" in out and "after 0" not in out, out
    assert state in ("FAILED", "COMPLETED")  # the batch shell goes on after its failed step


def test_a_name_as_the_job_wrote_it_is_found_by_the_library(site, cl, plugstack):
    # The secret's name in lower case, as the job names it.
    value = "tls_" + secrets.token_hex(12)
    site.vault.call("POST", "secret/data/slurm", {"data": {"HF_TOKEN": site.hf, "tls_private_key": value}})
    plugstack(env="allow")
    tool = st_site.PREFIX / "bin/st-secrets"
    script = f"#!/bin/bash\n/usr/bin/srun /bin/bash -c '{tool} get tls_private_key | /usr/bin/sha256sum'\n"
    for layout in ("files", "env"):
        job = cl.sbatch(script, "--export=NONE", "--st-secrets=tls_private_key", f"--st-secrets-as={layout}")
        state = cl.wait(job)
        out = cl.output(job)
        assert state == "COMPLETED" and f"{sha(value)}  -" in out, (layout, out)


def test_the_node_cache_is_the_jobs_and_gone_at_its_end(site, cl, plugstack):
    root_cache = Path("/dev/shm/st-secrets-node-0")
    before = sorted(root_cache.rglob("*")) if root_cache.exists() else None
    cached = dict(site.config, node_cache=True)
    plugstack(config=site.write("config-cached.json", json.dumps(cached), 0o644))
    job = cl.sbatch("#!/bin/bash\n/usr/bin/sha256sum < \"$HF_TOKEN_PATH\"\n", "--export=NONE",
                    "--st-secrets=HF_TOKEN")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "COMPLETED" and f"{sha(site.hf)}  -" in out, out
    after = sorted(root_cache.rglob("*")) if root_cache.exists() else None
    assert after == before, "nothing of the job in root's node cache"
    assert not any(d.exists() for d in st_site.job_dirs(site, job))
    # A configuration naming its own node cache directory is refused.
    elsewhere = dict(cached, node_cache_dir="/dev/shm/st-secrets-elsewhere")
    plugstack(config=site.write("config-cache-dir.json", json.dumps(elsewhere), 0o644))
    job = cl.sbatch("#!/bin/bash\necho ran\n", "--export=NONE", "--st-secrets=HF_TOKEN")
    state = cl.wait(job)
    out = cl.output(job)
    assert state == "FAILED" and "node_cache_dir" in out and "ran" not in out, out
    assert not Path("/dev/shm/st-secrets-elsewhere").exists()


def test_a_prolog_that_could_not_prepare_says_why_in_the_jobs_output(site, cl, plugstack, tmp_path):
    not_tmpfs = Path("/tmp") / f"st-secrets-not-tmpfs.{secrets.token_hex(4)}"
    plugstack(dir=not_tmpfs)
    try:
        job = cl.sbatch("#!/bin/bash\n/usr/bin/srun /bin/true\necho after $?\n", "--export=NONE",
                        "--st-secrets=HF_TOKEN")
        cl.wait(job)
        out = cl.output(job)
        assert "could not be prepared on this node" in out and "tmpfs or ramfs" in out, out
        assert "plugstack.conf?" not in out and "after 0" not in out, out
    finally:
        subprocess.run(["rm", "-rf", str(not_tmpfs)])


def test_a_finished_jobs_token_is_refused_at_once_and_a_copy_past_its_exp(site, cl, long_job):
    assert cl.wait(long_job.copier) == "COMPLETED", cl.output(long_job.copier)
    token = long_job.copied.read_text()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    # The job's end disabled its run's entity: its token, copied out by the
    # job's user, is refused before its exp.
    assert claims["exp"] > time.time() + 5, claims
    status, errors = login(site.vault, token)
    assert status == 403 and "permission denied" in json.dumps(errors), (status, errors)
    accessor = site.vault.call("GET", "sys/auth")[1]["data"][f"{MOUNT}/"]["accessor"]
    _, entity = site.vault.call("POST", "identity/lookup/entity",
                                {"alias_name": claims["sub"], "alias_mount_accessor": accessor})
    assert entity["data"]["disabled"] is True, entity
    # A copy out of a job still running logs in until its exp, not after.
    first = long_job.first.read_text()
    exp = json.loads(base64.urlsafe_b64decode(first.split(".")[1] + "=="))["exp"]
    time.sleep(max(0.0, exp + 12 - time.time()))  # past the role's leeways (5 s each)
    assert cl.state(long_job.job) == "RUNNING", cl.output(long_job.job)
    status, errors = login(site.vault, first)
    assert status == 400 and "expired" in json.dumps(errors), (status, errors)
    # The job held a valid token throughout.
    state = cl.wait(long_job.job, timeout=240)
    out = cl.output(long_job.job)
    assert state == "COMPLETED", out
    samples = [line for line in task_lines(out) if line.startswith("samples ")]
    assert len(samples) == 2, out
    for line in samples:
        _, n, _, expired, _, tokens = line.split()
        assert int(n) >= 30 and expired == "0" and int(tokens) >= 3, out


# What a task prints of its two tokens: the audiences, the vendor's token's
# user, and whether each has its own jti.
AUDS = r"""import base64, json, os
d = os.path.dirname(os.environ["SIMPLETUNER_JOB_TOKEN_FILE"])
c = [json.loads(base64.urlsafe_b64decode(open(f"{d}/{n}").read().split(".")[1] + "=="))
     for n in ("token", "token.wandb")]
print("auds", c[0]["aud"], c[1]["aud"], c[1]["user"], c[0]["jti"] != c[1]["jti"], c[1]["exp"] - c[1]["iat"])
"""


def test_a_jobs_token_for_a_vendors_audience_is_exchanged_on_each_node(site, cl, plugstack, jobs):
    # job_token_audience.wandb=: each node's token.wandb is the job's token
    # for W&B's audience, which the library exchanges at the W&B fake (its
    # JWKS registered inline, its claims the job's user and account).
    tool = st_site.PREFIX / "bin/st-secrets"
    jwks = json.loads(subprocess.run([str(tool), "job-token", "jwks", str(jobs.args["job_token_key"])],
                                     check=True, capture_output=True, text=True).stdout)
    # The vendor's credential lives 60 s and the token for it 120 s: a
    # credential never outlives its subject token.
    fake = FakeVendors(st_site.JOB_ISSUER, claims={"user": "sttest", "account": "vision"}, keys=jwks,
                       lifetimes={"wandb": 60})
    try:
        config = {"providers": ["exchange"], "retries": 1, "exchanges": {"WANDB_API_KEY": {
            "profile": "wandb", "url": fake.base("wandb") + "/oidc/token", "audience": fake.audience("wandb"),
            "subject_job_token": "wandb"}}}
        path = jobs.work / "exchange.json"
        path.write_text(json.dumps(config))
        os.chmod(path, 0o644)
        plugstack(**jobs.args, **{"job_token_audience.wandb": fake.audience("wandb"),
                                  "job_token_lifetime.wandb": 120})
        auds = jobs.work / "auds.py"
        auds.write_text(AUDS)
        os.chmod(auds, 0o644)
        script = (f"#!/bin/bash\n/usr/bin/srun -l /bin/bash -c '/usr/bin/python3 {auds}; "
                  f"{tool} --config {path} get WANDB_API_KEY | /usr/bin/cut -c1-6'\n")
        job = cl.sbatch(script, "--export=NONE", "-N2", "-n2", "-A", "vision")
        state = cl.wait(job)
        out = cl.output(job)
        assert state == "COMPLETED", out
        lines = task_lines(out)
        assert lines.count(f"auds openbao {fake.audience('wandb')} sttest True 120") == 2, out
        assert lines.count("wb_at_") == 2, out
        assert fake.counts["wandb"]["exchange"] == 2 and fake.counts["wandb"]["refused"] == 0, fake.counts
        # A lifetime for an audience not declared stops the plugin, saying why.
        plugstack(**jobs.args, **{"job_token_lifetime.hf": 120})
        r = cl.as_user("sbatch", "--export=NONE", "-A", "vision", "--wrap", "true")
        assert r.returncode != 0, r.stdout
        assert "job_token_lifetime.hf names no job_token_audience.hf" in r.stderr, r.stderr
    finally:
        fake.stop()


def test_a_jobs_exchanged_keys_are_files_its_sdks_read_rewritten_as_they_are_renewed(site, cl, plugstack, jobs):
    # The site's config= gives HF_TOKEN and WANDB_API_KEY by exchanging the
    # job's token for each vendor's audience: the prolog writes Hugging
    # Face's token file and W&B's credentials file (root's, read by the
    # job's user through their ACL), and each step's renewal rewrites them
    # as the credentials (20 s here) are renewed, one exchange per node per
    # lifetime through the node cache in the job's directory.
    tool = st_site.PREFIX / "bin/st-secrets"
    jwks = json.loads(subprocess.run([str(tool), "job-token", "jwks", str(jobs.args["job_token_key"])],
                                     check=True, capture_output=True, text=True).stdout)
    life = 20
    fake = FakeVendors(st_site.JOB_ISSUER, claims={"user": "sttest", "account": "vision"}, keys=jwks,
                       lifetimes={"wandb": life, "hf": life})
    try:
        exchanges = fake.exchanges({v: "unused" for v in ("hf", "openai", "anthropic", "wandb")})
        config = {"providers": ["exchange"], "retries": 1, "request_timeout": 5, "exchanges": {}}
        for key, name in (("HF_TOKEN", "hf"), ("WANDB_API_KEY", "wandb")):
            one = exchanges[key]
            del one["subject_token_file"]
            config["exchanges"][key] = dict(one, audience=fake.audience(name), subject_job_token=name)
        path = site.write("config-exchanges.json", json.dumps(config), 0o644)
        plugstack(**dict(jobs.args, config=path), **{
            "job_token_audience.wandb": fake.audience("wandb"), "job_token_lifetime.wandb": 120,
            "job_token_audience.hf": fake.audience("hf"), "job_token_lifetime.hf": 120})
        reader = jobs.work / "reader.py"
        reader.write_text(READER)
        os.chmod(reader, 0o644)
        seconds = 45
        started = time.monotonic()
        job = cl.sbatch(f"#!/bin/bash\n/usr/bin/srun -l /usr/bin/python3 {reader} {seconds} {fake.url}\n",
                        "--export=NONE", "-N2", "-n2", "-A", "vision", "--st-secrets=HF_TOKEN,WANDB_API_KEY")
        state = cl.wait(job)
        elapsed = time.monotonic() - started
        out = cl.output(job)
        assert state == "COMPLETED", out
        lines = [line for line in task_lines(out) if line.startswith("reads")]
        assert len(lines) == 2, out
        for line in lines:
            f = line.split()
            calls, refused, wandb, hf = int(f[2]), int(f[4]), int(f[6]), int(f[8])
            assert calls >= 2 * (seconds - 5) and refused == 0, out
            # 45 s of 20 s credentials: each file held three at least.
            assert wandb >= 3 and hf >= 3, out
        for vendor in ("wandb", "hf"):
            c = fake.counts[vendor]
            assert c["refused"] == 0 and c["expired"] == 0, fake.counts
            # Each node renews at 72-80% of the lifetime: one exchange per
            # lifetime, not one per step (batch, extern and srun each renew).
            assert c["exchange"] <= 2 * (elapsed / (0.72 * life) + 1), (fake.counts, elapsed)
    finally:
        fake.stop()
