"""What the slurm suite and its benchmark share: the site (an AppRole login
for the nodes at OpenBao's `slurm/` mount, a KV secret, leased PostgreSQL
credentials from the database engine of tests/vault/leases_setup.py, an AWS
secret in moto; the plugin's configuration and environment files, root's),
the places a value could be kept (Slurm's records, logs, the accounting
database, the job's output, every task's environment), and the revocation
of what a job's ledger lists, seen from the server.

Environment: ST_SLURM_PREFIX (an installed st-secrets), ST_SLURM_LEASES (the
JSON of leases_setup.py), ST_SLURM_MOTO (moto_setup.py's JSON).
"""

import hashlib
import json
import os
import secrets
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

PREFIX = Path(os.environ.get("ST_SLURM_PREFIX", "/nonexistent"))
PLUGIN = PREFIX / "lib/slurm/st_secrets_spank.so"
# The job token's site: OpenBao's jwt method at JOB_MOUNT trusting the key
# job_tokens() makes, tokens of JOB_LIFETIME seconds (the plugin's shortest).
JOB_ISSUER, JOB_MOUNT, JOB_LIFETIME = "https://slurm.test/st-secrets", "slurm-st", 60


def load(var):
    return json.loads(Path(os.environ[var]).read_text())


class Vault:
    def __init__(self, setup):
        self.url, self.root = setup["url"], setup["root_token"]
        self.audit_log = setup["audit_log"]

    def call(self, method, path, body=None, token=None, ok=(200, 204)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/v1/" + path, data=data, method=method)
        req.add_header("X-Vault-Token", token or self.root)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        if ok and status not in ok:
            raise AssertionError(f"{method} {path}: HTTP {status}: {text[:300]!r}")
        return status, (json.loads(text) if text else None)

    def lease_alive(self, lease_id):
        return self.call("PUT", "sys/leases/lookup", {"lease_id": lease_id}, ok=None)[0] == 200

    def token_alive(self, token):
        return self.call("POST", "auth/token/lookup", {"token": token}, ok=None)[0] == 200

    def audited(self, path, kind="response"):
        """Entries of the audit log at `path` (responses by default)."""
        n = 0
        with open(self.audit_log, errors="replace") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("type") == kind and e.get("request", {}).get("path") == path:
                    n += 1
        return n


class Site:
    """The site's identity and the plugin's files, in a root-only directory."""

    def __init__(self):
        leases, moto = load("ST_SLURM_LEASES"), load("ST_SLURM_MOTO")
        self.vault = Vault(leases)
        self.moto = moto
        self.dir = Path(tempfile.mkdtemp(prefix="st-secrets-slurm-site."))
        os.chmod(self.dir, 0o755)
        v = self.vault
        self.hf = "hf_slurm_" + secrets.token_hex(12)
        v.call("POST", "secret/data/slurm", {"data": {"HF_TOKEN": self.hf}})
        policy = """
path "secret/data/slurm" { capabilities = ["read"] }
path "secret/metadata/slurm" { capabilities = ["read"] }
path "database/creds/job" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"""
        v.call("PUT", "sys/policies/acl/slurm-site", {"policy": policy})
        v.call("POST", "sys/auth/slurm", {"type": "approle"}, ok=(200, 204, 400))
        v.call("POST", "auth/slurm/role/site", {"token_policies": ["slurm-site"], "token_ttl": "10m",
                                                "token_max_ttl": "1h"})
        role_id = v.call("GET", "auth/slurm/role/site/role-id")[1]["data"]["role_id"]
        secret_id = v.call("POST", "auth/slurm/role/site/secret-id", {})[1]["data"]["secret_id"]
        self.secret_id = secret_id
        self.write("secret-id", secret_id + "\n", 0o600)
        admin = moto["admin"]
        self.aws_value = moto["secret"]["REPLICATE_API_TOKEN"]
        self.write("aws-credentials",
                   f"[default]\naws_access_key_id = {admin['id']}\naws_secret_access_key = {admin['secret']}\n",
                   0o600)
        self.write("environment", f"AWS_SHARED_CREDENTIALS_FILE={self.dir}/aws-credentials\n"
                   "AWS_EC2_METADATA_DISABLED=true\n", 0o600)
        self.config = {
            "providers": ["vault", "aws"],
            "vault_url": v.url, "vault_auth": "approle", "vault_auth_mount": "slurm",
            "vault_role_id": role_id, "vault_secret_id_file": str(self.dir / "secret-id"),
            "vault_path": "slurm", "vault_leases": {"PG": "database/creds/job"},
            "aws_endpoint": moto["url"], "aws_region": moto["region"], "aws_secret_name": "st-secrets/test",
            "request_timeout": 5, "fleet_deadline": 60,
        }
        self.write("config.json", json.dumps(self.config), 0o644)
        self.files = Path(tempfile.mkdtemp(prefix="st-secrets-slurm.", dir="/dev/shm"))
        os.chmod(self.files, 0o755)

    def write(self, name, text, mode):
        p = self.dir / name
        p.write_text(text)
        os.chmod(p, mode)
        return p

    def plugstack(self, **extra):
        args = {"config": self.dir / "config.json", "environment": self.dir / "environment",
                "dir": self.files / "jobs"}
        args.update(extra)
        return f"required {PLUGIN} " + " ".join(f"{k}={v}" for k, v in args.items() if v is not None)

    def remove(self):
        subprocess.run(["rm", "-rf", str(self.dir), str(self.files)])


def job_tokens(site, work):
    """The site's steps for jobs' own tokens: its key (openssl, root's
    0600), OpenBao's jwt method and role trusting its public key, a policy
    templated on the login's claims (secret/users/USER/* and
    secret/accounts/ACCOUNT/*), a secret for each of the cluster's users
    and accounts, and the plugin's arguments (a configuration whose only
    login is the job's). `values`: each user's HF_TOKEN and each account's
    DATASET_TOKEN, by name."""
    v = site.vault
    key = site.dir / "job-signing.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    os.chmod(key, 0o600)
    public = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout"], check=True, capture_output=True,
                            text=True).stdout
    v.call("POST", f"sys/auth/{JOB_MOUNT}", {"type": "jwt"}, ok=(200, 204, 400))
    v.call("POST", f"auth/{JOB_MOUNT}/config", {"jwt_validation_pubkeys": [public], "bound_issuer": JOB_ISSUER})
    accessor = v.call("GET", "sys/auth")[1]["data"][f"{JOB_MOUNT}/"]["accessor"]
    meta = f"identity.entity.aliases.{accessor}.metadata"
    policy = "".join(f'path "secret/{kind}/{scope}/{{{{{meta}.{claim}}}}}/*" {{ capabilities = ["read"] }}\n'
                     for kind in ("data", "metadata") for scope, claim in (("users", "user"), ("accounts", "account")))
    # The job's end disables its own entity: a copy of its token is refused from then on.
    policy += ('path "identity/entity/id/{{identity.entity.id}}" '
               '{ capabilities = ["read", "update"] allowed_parameters = { "disabled" = [true] } }\n')
    v.call("PUT", "sys/policies/acl/slurm-st-job", {"policy": policy})
    v.call("POST", f"auth/{JOB_MOUNT}/role/job", {
        "role_type": "jwt", "bound_audiences": ["openbao"], "user_claim": "sub",
        "claim_mappings": {"user": "user", "account": "account", "partition": "partition", "cluster": "cluster"},
        "token_policies": ["slurm-st-job"], "token_ttl": "10m", "token_max_ttl": "1h",
        "expiration_leeway": 5, "not_before_leeway": 5, "clock_skew_leeway": 5,
    })
    values = {}
    for scope, name, var in (("users", "sttest", "HF_TOKEN"), ("users", "sttest2", "HF_TOKEN"),
                             ("accounts", "vision", "DATASET_TOKEN"), ("accounts", "nlp", "DATASET_TOKEN")):
        values[name] = f"{var.lower()}_{name}_{secrets.token_hex(8)}"
        v.call("POST", f"secret/data/{scope}/{name}/train", {"data": {var: values[name]}})
    config = {"providers": ["vault"], "vault_url": v.url, "vault_auth": "jwt", "vault_auth_mount": JOB_MOUNT,
              "vault_role": "job", "request_timeout": 5, "fleet_deadline": 60}
    site.write("config-jobs.json", json.dumps(config), 0o644)
    args = {"config": site.dir / "config-jobs.json", "job_token_key": key, "job_token_issuer": JOB_ISSUER,
            "job_token_lifetime": JOB_LIFETIME, "job_paths": "users/{user}/train,accounts/{account}/train",
            "environment": None}
    return SimpleNamespace(values=values, args=args, key=key, work=work)


def job_dirs(site, job):
    """The job's directories on both nodes, as the plugin names them."""
    return [site.files / "jobs" / f"job-{job}.{n}" for n in ("n1", "n2")]


def ledger_of(site, job, nodes=("n1", "n2"), timeout=60.0):
    """The leases and tokens the job's ledgers list (read as root while the
    job runs), once each node's has its login."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        leases, tokens, ready = [], [], 0
        for n in nodes:
            p = site.files / "jobs" / f"job-{job}.{n}" / "ledger"
            try:
                text = p.read_text()
            except OSError:
                continue
            for line in text.splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if "lease" in e:
                    leases.append(e["lease"])
                elif "login" in e:
                    tokens.append(e["login"])
            ready += (p.parent / "vars").exists()
        if ready == len(nodes):
            return leases, tokens
        time.sleep(0.1)
    raise AssertionError(f"job {job}: no ledger on {nodes} after {timeout:.0f} s")


def revoked_within(vault, leases, tokens, since, timeout=60.0):
    """Seconds from `since` until every lease and token is gone (None:
    still alive at the timeout)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not any(vault.lease_alive(lease) for lease in leases) and not any(
                vault.token_alive(t) for t in tokens):
            return time.monotonic() - since
        time.sleep(0.05)
    return None


def places(cluster, job, task_environs):
    """Each place Slurm (or the job) may keep a value, as (name, bytes)."""
    info, env = cluster.info, cluster.env
    out = []

    def run(name, *cmd):
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
        out.append((name, r.stdout + r.stderr))

    run("scontrol show job -d", "scontrol", "show", "job", "-d", str(job))
    state = b""
    for p in Path(info["state"]).rglob("*"):
        if p.is_file():
            state += p.read_bytes()
    out.append(("StateSaveLocation (job_state, the job's script and environment)", state))
    run("sacct --env-vars", "sacct", "-j", str(job), "--env-vars")
    run("sacct --batch-script", "sacct", "-j", str(job), "--batch-script")
    run("sacct submit line", "sacct", "-j", str(job), "-o", "SubmitLine%2000", "-P")
    run("accounting database", "mariadb-dump", f"--socket={info['mysql_socket']}", "--all-databases")
    logs = b"".join(p.read_bytes() for p in Path(info["logs"]).glob("*.log"))
    out.append(("slurmctld, slurmd, slurmdbd logs", logs))
    out.append(("job output", Path(info["work"], f"{job}.out").read_bytes()
                if Path(info["work"], f"{job}.out").exists() else b""))
    out.append(("every task's /proc/PID/environ", b"\0".join(task_environs)))
    return out


def task_environs(uid):
    """The environment of every process of user `uid` now."""
    envs = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if p.stat().st_uid == uid:
                envs.append((p / "environ").read_bytes())
        except OSError:
            pass
    return envs


def found(places_list, values):
    """The places holding any of `values` (bytes), with the count of hits."""
    hits = {}
    for name, data in places_list:
        n = sum(data.count(v) for v in values if v)
        if n:
            hits[name] = n
    return hits


def sha(data):
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def task_lines(out):
    """The lines of `srun -l`'s tasks, without their task number."""
    return [l.split(": ", 1)[1] for l in out.splitlines() if ": " in l and l.split(": ", 1)[0].isdigit()]
