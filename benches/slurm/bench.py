"""Slurm jobs, three ways of giving them a secret, side by side on the
slurm suite's cluster (tests/slurm/cluster.py, two slurmd, slurmdbd on
MariaDB, cgroup v1) with OpenBao and moto (tests/slurm/slurm_site.py):

  exported   sbatch --export=NONE,HF_TOKEN=...,PG_PASSWORD=...
  run        `st-secrets run` in the batch script, the user's own AppRole
             credential in a 0600 file of theirs
  plugin     sbatch --st-secrets=HF_TOKEN,PG_PASSWORD (this build's plugin)

Table 1: an 8-task job on 2 nodes, the places holding a value (the token,
the leased password, the AppRole secret ID) and how many times. Table 2:
for `run` and the plugin, the seconds from each ending of the job until
every lease and login token it held is revoked (seen from OpenBao), or what
is left to its TTL. Table 3 (`bench.py principal`, alone: its own table in
the docs): the plugin reading with the site's identity (AppRole) against
the job's own token (docs/job-token.md): logins per node per job and the
seconds from sbatch until both nodes hold the job's secret; then a job
spanning many lifetimes of its token (ST_SOAK_LIFETIMES, 12 by default;
288 is a 3-day job time-scaled), read every second. Writes the markdown
tables on stdout.

  python bench.py [principal]   (environment: as tests/slurm/run.sh sets for the
                                tests; principal: table 3 alone)
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests/slurm"))
import cluster as slurm  # noqa: E402
import slurm_site as st_site  # noqa: E402

REPS = int(os.environ.get("ST_SLURM_REPS", "3"))


def user_credential(site, cl):
    """An AppRole secret ID of the job's user (a second role, same policy),
    in a 0600 file of theirs, and the run script's head exporting it."""
    v = site.vault
    v.call("POST", "auth/slurm/role/user", {"token_policies": ["slurm-site"], "token_ttl": "10m",
                                            "token_max_ttl": "1h"})
    role = v.call("GET", "auth/slurm/role/user/role-id")[1]["data"]["role_id"]
    secret = v.call("POST", "auth/slurm/role/user/secret-id", {})[1]["data"]["secret_id"]
    cred = Path(cl.info["work"]) / "approle"
    cred.write_text(secret)
    os.chown(cred, cl.info["uid"], -1)
    os.chmod(cred, 0o600)
    tool = st_site.PREFIX / "bin/st-secrets"
    head = (f"export VAULT_ADDR={v.url} VAULT_ROLE_ID={role} VAULT_SECRET_ID=$(cat {cred})\n"
            "export SIMPLETUNER_VAULT_AUTH_MOUNT=slurm SIMPLETUNER_VAULT_PATH=slurm\n"
            f"cat >config.json <<'EOF'\n{json.dumps({'providers': ['vault'], 'vault_leases': {'PG': 'database/creds/job'}})}\nEOF\n")
    return secret, head, f"exec {tool} --config config.json run --only HF_TOKEN,PG_PASSWORD --"


def run_ledger(uid, timeout=60.0):
    """The leases and tokens of the ledger a `run` of user `uid` names
    (SIMPLETUNER_JOB_LEDGER in its environment), once it lists a login."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for env in st_site.task_environs(uid):
            m = re.search(rb"SIMPLETUNER_JOB_LEDGER=([^\0]+)", env)
            if not m:
                continue
            try:
                text = Path(m.group(1).decode()).read_text()
            except OSError:
                continue
            lines = [json.loads(l) for l in text.splitlines() if l.strip()]
            leases = [e["lease"] for e in lines if "lease" in e]
            tokens = [e["login"] for e in lines if "login" in e]
            if tokens and leases:
                return leases, tokens
        time.sleep(0.1)
    raise AssertionError("no ledger of run found")


def places_table(site, cl, secret, head, run):
    sleep = "/usr/bin/srun -l /bin/bash -c 'sleep 4'"
    ways = {
        "exported": ("#!/bin/bash\n" + sleep + "\n", []),
        "run in the batch script": (f"#!/bin/bash\ncd {cl.info['work']}\n{head}{run} {sleep}\n", ["--export=NONE"]),
        "plugin": ("#!/bin/bash\n" + sleep + "\n", ["--export=NONE", "--st-secrets=HF_TOKEN,PG_PASSWORD"]),
    }
    found = {}
    for way, (script, args) in ways.items():
        # A token of this way's own: the records keep earlier jobs' too.
        site.hf = "hf_slurm_" + os.urandom(12).hex()
        site.vault.call("POST", "secret/data/slurm", {"data": {"HF_TOKEN": site.hf}})
        if way == "exported":
            pg_value = site.vault.call("GET", "database/creds/job")[1]["data"]["password"]
            args = [f"--export=NONE,HF_TOKEN={site.hf},PG_PASSWORD={pg_value}"]
        job = cl.sbatch(script, "-N2", "-n8", *args)
        if way == "run in the batch script":
            leases, _ = run_ledger(cl.info["uid"])
        elif way == "plugin":
            leases, _ = st_site.ledger_of(site, job)
        values = [site.hf.encode(), {"exported": b"", "plugin": site.secret_id.encode()}.get(way, secret.encode())]
        if way == "exported":
            values.append(pg_value.encode())
        time.sleep(1.5)
        if way != "exported":  # the password this job was issued
            for env in st_site.task_environs(cl.info["uid"]):
                m = re.search(rb"PG_PASSWORD=([^\0]+)", env)
                if m:
                    values.append(m.group(1))
            for d in st_site.job_dirs(site, job):
                p = d / "files/PG_PASSWORD"
                if p.exists():
                    values.append(p.read_bytes())
        environs = st_site.task_environs(cl.info["uid"])
        state = cl.wait(job)
        time.sleep(2)  # the accounting record written
        hits = st_site.found(st_site.places(cl, job, environs), values)
        found[way] = (state, hits, len(leases) if way != "exported" else None)
    names = [n for n, _ in st_site.places(cl, job, [])]
    lines = ["| place (8 tasks on 2 nodes) | " + " | ".join(ways) + " |",
             "|---|" + "---:|" * len(ways)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(str(found[w][1].get(n, 0)) for w in ways) + " |")
    lines.append("| places holding a value | " + " | ".join(str(len(found[w][1])) for w in ways) + " |")
    return "\n".join(lines)


def endings_table(site, cl, head, run):
    body = "/usr/bin/srun /bin/bash -c '%s'"
    endings = [
        ("normal exit", "sleep 2", [], None),
        ("a failing task", "sleep 2; exit 3", [], None),
        ("scancel", "sleep 60", [], lambda j: subprocess.run(["scancel", str(j)], env=cl.env)),
        ("--signal (B:USR1 ahead of the time limit)", None, ["--time=2", "--signal=B:USR1@110"], None),
        ("out of memory (the job's cgroup, 100 MB)", "python3 -c \"x = b\\\"x\\\" * (400 << 20)\"",
         ["--mem=100M"], None),
        ("scancel --full -s KILL", "sleep 60", [],
         lambda j: subprocess.run(["scancel", "--full", "-s", "KILL", str(j)], env=cl.env)),
        ("SIGKILL of the batch script", "sleep 60", [], cl.kill_batch),
        ("slurmd restarted during the job", "sleep 4", [], lambda j: cl.restart_slurmd("n1")),
        ("the time limit (1 minute)", "sleep 300", ["--time=1"], None),
    ]
    rows = []
    for name, cmd, args, act in endings:
        cells = []
        for way in ("run in the batch script", "plugin"):
            if cmd is None:
                inner = "trap 'exit 0' USR1; /usr/bin/srun /bin/sleep 120 & wait"
                script = (f"#!/bin/bash\ncd {cl.info['work']}\n{head}{run} /bin/bash -c \"{inner}\"\n"
                          if way != "plugin" else f"#!/bin/bash\n{inner}\n")
            else:
                line = body % cmd
                script = (f"#!/bin/bash\ncd {cl.info['work']}\n{head}{run} {line}\n" if way != "plugin"
                          else f"#!/bin/bash\n{line}\n")
            extra = ["--export=NONE", "-N2", "-n2", *args]
            if way == "plugin":
                extra.append("--st-secrets=HF_TOKEN,PG_PASSWORD")
            reps = 1 if "time limit" in name or "restarted" in name else REPS
            took = []
            for _ in range(reps):
                job = cl.sbatch(script, *extra)
                leases, tokens = (run_ledger(cl.info["uid"]) if way != "plugin"
                                  else st_site.ledger_of(site, job))
                if act:
                    act(job)
                # Watched from the job's end, not from after its epilogs.
                took.append(st_site.revoked_within(site.vault, leases, tokens, cl.ended(job), timeout=20))
                cl.wait(job, timeout=240)
                for t in tokens:  # whatever is left, for the next job's count
                    site.vault.call("POST", "auth/token/revoke", {"token": t}, ok=None)
            done = [t for t in took if t is not None]
            if len(done) == len(took):
                cells.append(f"{statistics.median(done):.2f} s")
            else:
                cells.append(f"left to its TTL ({len(took) - len(done)} of {len(took)})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(["| the job ends by | `run` in the batch script: revoked after | plugin: revoked after |",
                      "|---|---:|---:|"] + rows)


def principal_table(site, cl):
    tokens = st_site.job_tokens(site, Path(cl.info["work"]))
    plug = Path(cl.info["dir"]) / "plugstack.conf"
    rows = []
    for name, args, mount in (("the site's identity (AppRole)", {}, "slurm"),
                              ("the job's own token (jwt, minted in the prolog)", tokens.args, st_site.JOB_MOUNT)):
        plug.write_text(site.plugstack(**args) + "\n")
        took, reads, ends = [], [], []
        for _ in range(REPS):
            before = site.vault.audited(f"auth/{mount}/login")
            start = time.monotonic()
            job = cl.sbatch("#!/bin/bash\n/usr/bin/srun /bin/sleep 8\n", "--export=NONE", "-N2", "-n2",
                            "-A", "vision", "--st-secrets=HF_TOKEN")  # a step on each node: its prolog
            st_site.ledger_of(site, job)  # both nodes' secrets written
            took.append(time.monotonic() - start)
            read = site.vault.audited(f"auth/{mount}/login")
            cl.wait(job)
            reads.append((read - before) / 2)
            ends.append((site.vault.audited(f"auth/{mount}/login") - read) / 2)
        rows.append(f"| {name} | {statistics.median(reads):g} | {statistics.median(ends):g} | "
                    f"{statistics.median(took):.2f} s |")
    plug.write_text(site.plugstack() + "\n")
    return "\n".join(["| the plugin reads with | logins per node per job, to read | at its end (the run's entity "
                      f"disabled) | sbatch to the secret on both nodes (median of {REPS}) |",
                      "|---|---:|---:|---:|"] + rows)


# Each task reads the job's token every second for argv[1] seconds: the
# samples, those past their exp, the tokens seen, the oldest share of its
# lifetime a sample was, and whether the last token's exp was past the job's
# time limit (argv[2], Unix seconds).
SOAK = r"""import base64, json, os, sys, time
end, limit, seen, n, expired, oldest, past = time.time() + float(sys.argv[1]), int(sys.argv[2]), set(), 0, 0, 0.0, 0
while time.time() < end:
    now = time.time()
    c = json.loads(base64.urlsafe_b64decode(open(os.environ["SIMPLETUNER_JOB_TOKEN_FILE"]).read().split(".")[1] + "=="))
    n, expired, past = n + 1, expired + (c["exp"] <= now), past + (c["exp"] > limit)
    oldest = max(oldest, (now - c["iat"]) / (c["exp"] - c["iat"]))
    seen.add(c["jti"])
    time.sleep(1)
print(f"soak {n} {expired} {len(seen)} {oldest:.2f} {past}")
"""


def soak_table(site, cl):
    """A job spanning ST_SOAK_LIFETIMES lifetimes of its token (60 s): 12 by
    default, a 3-hour job at the default 900 s lifetime; 288 is three days'
    (4.8 hours here). It reads on into the last minute of its time limit:
    the tokens minted there end at the limit, not a lifetime past it."""
    tokens = st_site.job_tokens(site, Path(cl.info["work"]))
    lifetimes = int(os.environ.get("ST_SOAK_LIFETIMES", "12"))
    seconds = lifetimes * st_site.JOB_LIFETIME
    (tokens.work / "soak.py").write_text(SOAK)
    os.chmod(tokens.work / "soak.py", 0o644)
    (Path(cl.info["dir"]) / "plugstack.conf").write_text(site.plugstack(**tokens.args) + "\n")
    limit_min = seconds // 60 + 1
    script = ("#!/bin/bash\nlimit=$(( $(date +%s) + " + str(limit_min * 60) + " ))\n"
              f"/usr/bin/srun -l /usr/bin/python3 {tokens.work}/soak.py {seconds + 40} $limit\n")
    job = cl.sbatch(script, "--export=NONE", "-N2", "-n2", "-A", "vision", f"--time={limit_min}")
    state = cl.wait(job, timeout=seconds + 600)
    out = cl.output(job)
    rows = [line.split() for line in st_site.task_lines(out) if line.startswith("soak ")]
    (Path(cl.info["dir"]) / "plugstack.conf").write_text(site.plugstack() + "\n")
    if state != "COMPLETED" or len(rows) != 2:
        raise SystemExit(f"the soak job ended {state}: {out[-2000:]}")
    cells = [f"{sum(int(r[i]) for r in rows)}" for i in (1, 2, 3)]
    return "\n".join([
        "| job (2 nodes, token lifetime 60 s, read every second) | lifetimes spanned | reads | reads of an "
        "expired token | tokens seen (both nodes) | oldest read, share of its lifetime | tokens past the time limit |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| {seconds} s, a {lifetimes * 900 / 3600:g}-hour job at the default 900 s | {lifetimes} | {cells[0]} | "
        f"{cells[1]} | {cells[2]} | {max(float(r[4]) for r in rows):.2f} | {sum(int(r[5]) for r in rows)} |"])


def main():
    site = st_site.Site()
    d = Path("/tmp") / f"st-secrets-slurm-bench.{os.getpid()}"
    try:
        slurm.start(d, site.plugstack())
        cl = slurm.Cluster(d)
        if sys.argv[1:] == ["principal"]:
            print(principal_table(site, cl))
            print()
            print(soak_table(site, cl))
            return
        secret, head, run = user_credential(site, cl)
        print(places_table(site, cl, secret, head, run))
        print()
        print(endings_table(site, cl, head, run))
    finally:
        slurm.stop(d)
        site.remove()


if __name__ == "__main__":
    main()
