"""GCP and Azure at a fleet's scale, this build beside Google's and
Microsoft's own Python libraries (google-auth with google-cloud-secret-manager,
azure-identity with azure-keyvault-secrets), against drongo's Secret Manager
behind tests/gcp/fake_google.py and against tests/azure/fake_azure.py (the
fakes the interop suite proves with those same libraries):

  start-up   N_NODES nodes x 8 ranks start together on GCE while the metadata
             server refuses connections for 8 s, then answers 503 for 2 s
             (each rank one `get`; this build with the node cache on)
  federated  N_NODES nodes x 8 ranks read a Key Vault secret every second for
             ST_CLOUD_SECONDS (600) through AKS workload identity: each node's
             federated token lives 60 s and is swapped by a kubelet-style
             volume at 80 % of its life; Entra's tokens live 60 s too; the
             fake counts requests with an expired token and the exchanges
  disabled   the same ranks (both clouds) read for 60 s; at 30 s the current
             version is disabled: each rank's first report, and reads of the
             version before (a silent fallback)
  fleet      ST_CLOUD_FLEET (2000) nodes, one process each, start together
             against a Key Vault enforcing 4,000 GETs per 10 s, each node
             reading 3 secrets: this build with the fleet admission (the
             node count given, `fleet_capacity` 90 % of the limit over 3),
             this build without it, and Microsoft's SDK (one client per node,
             a thread each, in 8 processes)

    bench.py OUT_DIR BIN LIB     prints the table (markdown)
"""

import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / d) for d in ("gcp", "azure", "fleet")]
from fake_azure import TENANT, FakeAzure  # noqa: E402
from fake_google import FakeGoogle  # noqa: E402
from fleet_start import placed  # noqa: E402

OUT, BIN, LIB = (Path(a) for a in sys.argv[1:4])
PY = sys.executable
NODES, RANKS = 4, 8
SECONDS = int(os.environ.get("ST_CLOUD_SECONDS", "600"))
FLEET = int(os.environ.get("ST_CLOUD_FLEET", "2000"))
JOBS = int(os.environ.get("ST_CLOUD_JOBS", "3"))
PROJECT, EMAIL = "train-proj", "trainer@train-proj.iam.gserviceaccount.com"
LIMIT = 4000  # Key Vault's GETs per 10 s
RAW = {}  # each run's counts, kept in OUT_DIR/raw.json
SDK_PROCESSES = 8  # Microsoft's SDK at a fleet's start: FLEET / 8 threads in each

# A rank of this build: the C ABI through ctypes, one get every INTERVAL s;
# each answer recorded as the version whose value it is (by hash), or the
# error's code and whether it names the disabled version. No value is kept.
RANK = r'''
import ctypes, hashlib, json, os, sys, time
lib_path, config, key, interval, seconds, out, hashes = sys.argv[1:8]
hashes = json.loads(hashes)
lib = ctypes.CDLL(lib_path)
lib.st_secrets_new.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)]
lib.st_secrets_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                               ctypes.POINTER(ctypes.c_void_p)]
lib.st_buf_str.argtypes = [ctypes.c_void_p]
lib.st_buf_str.restype = ctypes.c_char_p
lib.st_buf_free.argtypes = [ctypes.c_void_p]
lib.st_error_message.argtypes = [ctypes.c_void_p]
lib.st_error_message.restype = ctypes.c_char_p
lib.st_error_free.argtypes = [ctypes.c_void_p]
m, err = ctypes.c_void_p(), ctypes.c_void_p()
assert lib.st_secrets_new(config.encode(), ctypes.byref(m), ctypes.byref(err)) == 0
'''

RANK_LOOP = r'''
records, end = [], time.time() + float(seconds)
while time.time() < end:
    t = time.time()
    records.append([round(t, 2), read()])
    time.sleep(max(0.0, float(interval) - (time.time() - t)))
json.dump(records, open(out, "w"))
'''

OURS = RANK + r'''
def read():
    buf, err = ctypes.c_void_p(), ctypes.c_void_p()
    rc = lib.st_secrets_get(m, key.encode(), ctypes.byref(buf), ctypes.byref(err))
    if rc == 0:
        digest = hashlib.sha256(lib.st_buf_str(buf)).hexdigest()
        lib.st_buf_free(buf)
        return hashes.get(digest, "other")
    text = lib.st_error_message(err).decode()
    lib.st_error_free(err)
    return "disabled" if "disabled" in text else "error %d" % rc
''' + RANK_LOOP

# A rank of Microsoft's SDK: one SecretClient, its get_secret every INTERVAL s.
AZURE_SDK = r'''
import hashlib, json, os, sys, time
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient
vault, authority, token_file, name, key, interval, seconds, out, hashes = sys.argv[1:10]
hashes = json.loads(hashes)
cred = WorkloadIdentityCredential(tenant_id=os.environ["AZURE_TENANT_ID"], client_id="app-wi",
                                  token_file_path=token_file, authority=authority, disable_instance_discovery=True)
client = SecretClient(vault, cred, verify_challenge_resource=False)
def read():
    try:
        value = json.loads(client.get_secret(name).value)[key]
        return hashes.get(hashlib.sha256(value.encode()).hexdigest(), "other")
    except ClientAuthenticationError:
        return "error auth"
    except HttpResponseError as e:
        return "disabled" if "disabled" in str(e).lower() else "error %s" % e.status_code
''' + RANK_LOOP

# A rank of Google's SDK: a service account's key, the REST client.
GCP_SDK = r'''
import hashlib, json, os, sys, time
from google.api_core import exceptions
from google.cloud import secretmanager
from google.oauth2 import service_account
endpoint, keyfile, name, key, interval, seconds, out, hashes = sys.argv[1:9]
hashes = json.loads(hashes)
creds = service_account.Credentials.from_service_account_file(
    keyfile, scopes=["https://www.googleapis.com/auth/cloud-platform"])
client = secretmanager.SecretManagerServiceClient(transport="rest", credentials=creds,
                                                  client_options={"api_endpoint": endpoint})
def read():
    try:
        r = client.access_secret_version(name=name)
        value = json.loads(r.payload.data)[key]
        return hashes.get(hashlib.sha256(value.encode()).hexdigest(), "other")
    except exceptions.GoogleAPICallError as e:
        return "disabled" if "disabled" in str(e).lower() else "error %s" % e.code
''' + RANK_LOOP

# A GCE pod of Google's SDK: the metadata server's token, one access, as a
# pod's start does. Waits for its release after its imports.
GCE_SDK = r'''
import json, os, sys, time
from google.auth import compute_engine
from google.cloud import secretmanager
endpoint, run = sys.argv[1:3]
open(os.path.join(run, "ready-%d" % os.getpid()), "w").close()
while not os.path.exists(os.path.join(run, "go")):
    time.sleep(0.01)
client = secretmanager.SecretManagerServiceClient(transport="rest", credentials=compute_engine.Credentials(),
                                                  client_options={"api_endpoint": endpoint})
r = client.access_secret_version(name="projects/train-proj/secrets/keys/versions/latest")
assert json.loads(r.payload.data)["HF_TOKEN"]
'''

# Microsoft's SDK at a fleet's start: one credential and client per node,
# each a thread, released together; counts the nodes that failed.
FLEET_SDK = r'''
import json, os, sys, threading, time
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
vault, authority, tenant, nodes, names, run = sys.argv[1:4] + [int(sys.argv[4]), sys.argv[5].split(","), sys.argv[6]]
go, failed, lock = threading.Event(), [], threading.Lock()
def node():
    cred = ClientSecretCredential(tenant, "app-secret", "entra-client-secret", authority=authority,
                                  disable_instance_discovery=True)
    client = SecretClient(vault, cred, verify_challenge_resource=False)
    go.wait()
    try:
        for n in names:
            client.get_secret(n)
    except Exception as e:
        with lock:
            failed.append(type(e).__name__)
threads = [threading.Thread(target=node) for _ in range(nodes)]
for t in threads:
    t.start()
open(os.path.join(run, "ready-%d" % os.getpid()), "w").close()
while not os.path.exists(os.path.join(run, "go")):
    time.sleep(0.01)
go.set()
for t in threads:
    t.join()
print(json.dumps({"failed": len(failed)}))
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def base_env(home):
    return {"PATH": os.environ["PATH"], "HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true",
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9", "GCE_METADATA_HOST": "127.0.0.1:9"}


class Drongo:
    def __init__(self):
        import urllib.request
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([str(Path(PY).parent / "drongo"), "server", "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{self.url}/drongo/health", timeout=2)
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("drongo did not start")

    def call(self, path, body=None):
        import urllib.request
        req = urllib.request.Request(f"{self.url}/v1/projects/{PROJECT}/{path}", method="POST",
                                     data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=10).read() or b"{}")

    def add(self, secret, *payloads):
        import base64
        self.call(f"secrets?secretId={secret}", {"replication": {"automatic": {}}})
        for p in payloads:
            self.call(f"secrets/{secret}:addVersion", {"payload": {"data": base64.b64encode(p.encode()).decode()}})


def spawn(args, env, log):
    return subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"))


def wait_all(procs, limit=None):
    for p in procs:
        p.wait(timeout=limit)
    return [p.returncode for p in procs]


# --------------------------------------------------------------- start-up


def start_up(drongo, work):
    """One start of NODES x RANKS on GCE per build, the metadata server
    refusing for 8 s then answering 503 for 2 s; returns rows."""
    rows = {"this build (node cache)": [], "google-auth + google-cloud-secret-manager": []}
    for job in range(JOBS):
        for label in rows:
            run = Path(tempfile.mkdtemp(dir=work))
            port, fifo = free_port(), run / "fifo"
            os.mkfifo(fifo, 0o600)
            url = f"http://127.0.0.1:{port}"
            procs, shms = [], []
            for node in range(NODES):
                shm = Path(tempfile.mkdtemp(prefix="st-cloud-", dir="/dev/shm"))
                shms.append(shm)
                at = f"127.0.0.1:{port}"
                env = {**base_env(run), "GCE_METADATA_HOST": at, "GCE_METADATA_IP": at}
                config = json.dumps({"providers": ["gcp"], "gcp_secret": "keys", "gcp_project": PROJECT,
                                     "gcp_endpoint": url, "node_cache": True, "node_cache_dir": str(shm)})
                for rank in range(RANKS):
                    log = run / f"err-{node}-{rank}"
                    if label.startswith("this"):
                        cfg = run / f"config-{node}.json"
                        cfg.write_text(config)
                        args = ["sh", "-c", 'read _ < "$0"; exec "$@"', str(fifo), str(BIN), "--config", str(cfg),
                                "get", "HF_TOKEN"]
                    else:
                        args = [PY, "-c", GCE_SDK, url, str(run)]
                    procs.append(spawn(args, env, log))
            if label.startswith("this"):
                time.sleep(1.0)
                threading.Thread(target=lambda: os.close(os.open(fifo, os.O_WRONLY)), daemon=True).start()
            else:
                while len(list(run.glob("ready-*"))) < len(procs) and all(p.poll() is None for p in procs):
                    time.sleep(0.1)
                (run / "go").touch()
            released = time.monotonic()
            time.sleep(8.0)  # connections refused meanwhile
            fake = FakeGoogle(drongo.url, port=port)
            fake.project = PROJECT
            fake.metadata_unready_until = time.time() + 2.0
            codes = wait_all(procs, 300)
            seconds = time.monotonic() - released
            for i, code in enumerate(codes):
                if code != 0:
                    print(f"{label}: a rank failed: " + (run / f"err-{i // RANKS}-{i % RANKS}").read_text()[-600:],
                          file=sys.stderr)
                    break
            rows[label].append({"failed": sum(c != 0 for c in codes), "metadata": fake.counts["metadata"],
                                "seconds": seconds})
            RAW.setdefault("start-up", []).append({"build": label, **rows[label][-1]})
            fake.stop()
            shutil.rmtree(run)
            for shm in shms:
                shutil.rmtree(shm, ignore_errors=True)
    out = ["| start on GCE, metadata server refusing 8 s then 503 for 2 s | jobs | ranks per job | failed ranks, "
           "all jobs | token fetches per node (median) | all ranks hold the secret (median) |",
           "|---|---:|---:|---:|---:|---:|"]
    for label, js in rows.items():
        out.append("| %s | %d | %d | %d | %g | %.1f s |" % (
            label, len(js), NODES * RANKS, sum(j["failed"] for j in js),
            statistics.median(j["metadata"] for j in js) / NODES, statistics.median(j["seconds"] for j in js)))
    return out


# --------------------------------------------------------------- ranks


def kubelet_volume(directory, issuer, stop, life=60):
    """A projected service-account token as the kubelet keeps it: the file
    `token` through the `..data` link, swapped atomically at 80 % of its
    life by a new dated directory."""
    directory.mkdir(mode=0o700)
    while True:
        now = time.time()
        stamp = directory / ("..%d" % int(now * 1000))
        stamp.mkdir(mode=0o700)
        token = jwt.encode({"sub": "system:serviceaccount:ml:trainer", "aud": "api://AzureADTokenExchange",
                            "iat": int(now), "exp": int(now) + life}, pem(issuer), algorithm="RS256")
        (stamp / "token").write_text(token)
        (stamp / "token").chmod(0o600)
        old = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else None
        os.symlink(stamp.name, directory / "..data_tmp")
        os.replace(directory / "..data_tmp", directory / "..data")
        if not (directory / "token").is_symlink():
            os.symlink("..data/token", directory / "token")
        if old:
            shutil.rmtree(directory / old)
        if stop.wait(life * 0.8):
            return


def ranks(label, work, seconds, interval, make):
    """NODES x RANKS rank processes, `make(node, rank, out)` giving each
    one's (args, env); returns their records once all ended."""
    run = Path(tempfile.mkdtemp(dir=work))
    procs, outs = [], []
    for node in range(NODES):
        for rank in range(RANKS):
            out = run / f"{node}-{rank}.json"
            args, env = make(node, rank, out)
            procs.append(spawn(args, env, run / f"{node}-{rank}.err"))
            outs.append(out)
    codes = wait_all(procs, seconds + 600)
    records = []
    for out, code in zip(outs, codes):
        if code != 0 or not out.exists():
            err = out.with_suffix(".err").read_text()[-2000:]
            raise SystemExit(f"{label}: a rank ended with {code}:\n{err}")
        records.append(json.loads(out.read_text()))
    shutil.rmtree(run)
    return records


def azure_site(work, token_ttl):
    """A FakeAzure answering https too (Microsoft's SDK speaks only https),
    its certificate for 127.0.0.1 in `work` (the SDK's CA bundle)."""
    cert, key = work / "tls.crt", work / "tls.key"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                        str(cert)], check=True, capture_output=True)
    return FakeAzure(str(cert), str(key), token_ttl=token_ttl)


def our_azure_rank(fake, work, volumes, shms, key, seconds, hashes, secret="training", ttl=10):
    def make(node, rank, out):
        env = {**base_env(work), "AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": "app-wi",
               "AZURE_AUTHORITY_HOST": fake.url, "AZURE_FEDERATED_TOKEN_FILE": str(volumes[node] / "token")}
        config = json.dumps({"providers": ["azure"], "azure_vault": fake.url, "azure_secret": secret,
                             "cache_ttl": ttl, "node_cache": True, "node_cache_dir": str(shms[node])})
        return [PY, "-c", OURS, str(LIB), config, key, "1", str(seconds), str(out), json.dumps(hashes)], env
    return make


def sdk_azure_rank(fake, work, volumes, name, key, seconds, hashes):
    def make(node, rank, out):
        env = {**base_env(work), "AZURE_TENANT_ID": TENANT, "REQUESTS_CA_BUNDLE": str(work / "tls.crt"),
               "SSL_CERT_FILE": str(work / "tls.crt")}
        return [PY, "-c", AZURE_SDK, fake.https_url, fake.https_url, str(volumes[node] / "token"), name, key, "1",
                str(seconds), str(out), json.dumps(hashes)], env
    return make


def in_threads(*jobs):
    """Runs each (function, args) in its own thread; their results, in
    order (a job's exception is raised here)."""
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(f, *args) for f, args in jobs]
        return [f.result() for f in futures]


class Volumes:
    """Each node's kubelet volume, swapped until stopped."""

    def __init__(self, work, life=60):
        self.issuer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.stop_event = threading.Event()
        self.dirs = [Path(tempfile.mkdtemp(dir=work)) / "volume" for _ in range(NODES)]
        for v in self.dirs:
            threading.Thread(target=kubelet_volume, args=(v, self.issuer, self.stop_event, life), daemon=True).start()
        while not all((v / "token").exists() for v in self.dirs):
            time.sleep(0.05)
        self.shms = [Path(tempfile.mkdtemp(prefix="st-cloud-", dir="/dev/shm")) for _ in range(NODES)]

    def stop(self):
        self.stop_event.set()
        for shm in self.shms:
            shutil.rmtree(shm, ignore_errors=True)


def federated(work):
    """Both builds side by side for SECONDS, each with its own fake (its
    own counts), the nodes' kubelet volumes shared."""
    vols = Volumes(work)
    volumes, shms, issuer = vols.dirs, vols.shms, vols.issuer
    fakes = [azure_site(work, 60), azure_site(work, 60)]
    hashes = {sha("hf_federated"): "current"}
    for fake in fakes:
        fake.apps["app-wi"] = {"issuer_key": issuer.public_key()}
        fake.set_secret("training", json.dumps({"HF_TOKEN": "hf_federated"}))
    ours, sdk = in_threads(
        (ranks, ("ours", work, SECONDS, 1, our_azure_rank(fakes[0], work, volumes, shms, "HF_TOKEN", SECONDS,
                                                          hashes))),
        (ranks, ("sdk", work, SECONDS, 1, sdk_azure_rank(fakes[1], work, volumes, "training", "HF_TOKEN", SECONDS,
                                                         hashes))))
    vols.stop()
    lifetimes = NODES * SECONDS / 60
    out = ["| %d nodes x %d ranks, a read a second for %d s, federated and Entra tokens of 60 s | reads "
           "| failed reads | requests with an expired token | exchanges refused (expired federated token) "
           "| exchanges per node per token lifetime | Key Vault GETs |" % (NODES, RANKS, SECONDS),
           "|---|---:|---:|---:|---:|---:|---:|"]
    for label, recs, fake in (("this build (node cache, cache_ttl 10 s)", ours, fakes[0]),
                              ("azure-identity + azure-keyvault-secrets", sdk, fakes[1])):
        reads = [r for rank in recs for _, r in rank]
        c = fake.counts
        RAW.setdefault("federated", []).append({"build": label, "reads": len(reads), **c})
        out.append("| %s | %d | %d | %d | %d | %.2f | %d |" % (
            label, len(reads), sum(r != "current" for r in reads), c["expired"], c["exchange_refused"],
            c["token"] / lifetimes, c["get"]))
        fake.stop()
    return out


def disabled(drongo, work, seconds=60, ttl=10):
    """Both clouds, both builds side by side: ranks read for `seconds`; at
    half of it the current version is disabled."""
    out = ["| a version disabled mid-job (%d ranks, a read a second) | ranks reporting it | slowest rank's "
           "report after the disable | reads of the version before (silent fallback) |" % (NODES * RANKS),
           "|---|---:|---:|---:|"]
    hashes = {sha("v1"): "v1", sha("v2"): "v2"}
    # Azure: the workload identity of the nodes' volumes (tokens of an hour).
    vols = Volumes(work, life=3600)
    fake = azure_site(work, 3599)
    fake.apps["app-wi"] = {"issuer_key": vols.issuer.public_key()}
    fake.set_secret("rotating", json.dumps({"ROTATING_KEY": "v1"}))
    v2 = fake.set_secret("rotating", json.dumps({"ROTATING_KEY": "v2"}))
    half = seconds / 2
    timer = threading.Timer(half, fake.set_enabled, ("rotating", v2, False))
    timer.start()
    at = time.time() + half
    ours, sdk = in_threads(
        (ranks, ("ours", work, seconds, 1, our_azure_rank(fake, work, vols.dirs, vols.shms, "ROTATING_KEY", seconds,
                                                          hashes, "rotating", ttl))),
        (ranks, ("sdk", work, seconds, 1, sdk_azure_rank(fake, work, vols.dirs, "rotating", "ROTATING_KEY", seconds,
                                                         hashes))))
    vols.stop()
    fake.stop()
    rows = [("Azure: this build (node cache, cache_ttl %d s)" % ttl, ours, at),
            ("Azure: azure-identity + azure-keyvault-secrets", sdk, at)]
    # GCP: a service account's key; `latest` as Google serves it.
    google = FakeGoogle(drongo.url)
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    google.service_accounts[EMAIL] = sa.public_key()
    keyfile = work / "key.json"
    keyfile.write_text(json.dumps({"type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
                                   "private_key": pem(sa), "client_email": EMAIL,
                                   "token_uri": f"{google.url}/token"}))
    keyfile.chmod(0o600)
    drongo.add("rotating", json.dumps({"ROTATING_KEY": "v1"}), json.dumps({"ROTATING_KEY": "v2"}))
    timer = threading.Timer(half, drongo.call, ("secrets/rotating/versions/2:disable",))
    timer.start()
    at = time.time() + half
    shms = [Path(tempfile.mkdtemp(prefix="st-cloud-", dir="/dev/shm")) for _ in range(NODES)]

    def ours_gcp(node, rank, path):
        env = {**base_env(work), "GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)}
        config = json.dumps({"providers": ["gcp"], "gcp_secret": "rotating", "gcp_project": PROJECT,
                             "gcp_endpoint": google.url, "cache_ttl": ttl, "node_cache": True,
                             "node_cache_dir": str(shms[node])})
        return [PY, "-c", OURS, str(LIB), config, "ROTATING_KEY", "1", str(seconds), str(path),
                json.dumps(hashes)], env

    def sdk_gcp(node, rank, path):
        name = f"projects/{PROJECT}/secrets/rotating/versions/latest"
        return [PY, "-c", GCP_SDK, google.url, str(keyfile), name, "ROTATING_KEY", "1", str(seconds), str(path),
                json.dumps(hashes)], base_env(work)

    ours, sdk = in_threads((ranks, ("ours", work, seconds, 1, ours_gcp)), (ranks, ("sdk", work, seconds, 1, sdk_gcp)))
    google.stop()
    for shm in shms:
        shutil.rmtree(shm, ignore_errors=True)
    rows += [("GCP: this build (node cache, cache_ttl %d s)" % ttl, ours, at),
             ("GCP: google-auth + google-cloud-secret-manager", sdk, at)]
    for label, recs, at in rows:
        firsts, fallbacks = [], 0
        for rank in recs:
            first = next((t for t, r in rank if t >= at and r == "disabled"), None)
            if first is not None:
                firsts.append(first - at)
            fallbacks += sum(1 for t, r in rank if t >= at and r == "v1")
        out.append("| %s | %d of %d | %s | %d |" % (
            label, len(firsts), len(recs), "%.1f s" % max(firsts) if firsts else "-", fallbacks))
    return out


# --------------------------------------------------------------- fleet

FLEET_SECRETS = ["training", "wandb", "replicate-api-token"]


def fleet_job(work, mode):
    """One start of FLEET nodes against a fresh fake enforcing LIMIT."""
    fake = azure_site(work, 3599)
    fake.apps["app-secret"] = {"secret": "entra-client-secret"}
    fake.set_secret("training", json.dumps({"HF_TOKEN": "hf_fleet"}))
    fake.set_secret("wandb", json.dumps({"WANDB_API_KEY": "wandb_fleet"}))
    fake.set_secret("replicate-api-token", "r8_fleet")
    fake.limit = LIMIT
    gets, throttled = [], fake.throttled

    def counted():  # every GET with a valid token, answered or refused
        gets.append(time.time())
        return throttled()
    fake.throttled = counted
    run = Path(tempfile.mkdtemp(dir=work))
    capacity = int(0.9 * LIMIT / 10 / len(FLEET_SECRETS))
    started = time.monotonic()
    if mode == "sdk":
        env = {**base_env(run), "REQUESTS_CA_BUNDLE": str(work / "tls.crt"), "SSL_CERT_FILE": str(work / "tls.crt")}
        procs = [subprocess.Popen([PY, "-c", FLEET_SDK, fake.https_url, fake.https_url, TENANT,
                                   str(FLEET // SDK_PROCESSES), ",".join(FLEET_SECRETS), str(run)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(SDK_PROCESSES)]
        while len(list(run.glob("ready-*"))) < SDK_PROCESSES and all(p.poll() is None for p in procs):
            time.sleep(0.1)
        started = time.monotonic()
        (run / "go").touch()
        failed = 0
        for p in procs:
            stdout, stderr = p.communicate(timeout=1800)
            if p.returncode != 0:
                raise SystemExit("the SDK's fleet failed:\n" + stderr[-3000:])
            failed += json.loads(stdout)["failed"]
    else:
        config = {"providers": ["azure"], "azure_vault": fake.url, "azure_secret": FLEET_SECRETS}
        if mode != "none":
            config["fleet_capacity"] = capacity
        cfg = run / "config.json"
        cfg.write_text(json.dumps(config))
        fifo = run / "fifo"
        os.mkfifo(fifo, 0o600)
        env = {**base_env(run), "AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": "app-secret",
               "AZURE_CLIENT_SECRET": "entra-client-secret", "AZURE_AUTHORITY_HOST": fake.url}
        procs = []
        for node in range(FLEET):
            e = placed(env, mode, node, FLEET, ("SIMPLETUNER_FLEET_RANK", "SIMPLETUNER_FLEET_NODES"))
            procs.append(spawn(["sh", "-c", 'read _ < "$0"; exec "$@"', str(fifo), str(BIN), "--config", str(cfg),
                                "env", "--only", "HF_TOKEN,WANDB_API_KEY,REPLICATE_API_TOKEN"], e, run / f"err-{node}"))
        time.sleep(2.0)
        started = time.monotonic()
        os.close(os.open(fifo, os.O_WRONLY))
        codes = wait_all(procs, 1800)
        failed = sum(c != 0 for c in codes)
        if failed:
            first = next(i for i, c in enumerate(codes) if c != 0)
            print(f"fleet, {mode}: {failed} failed, e.g. " + (run / f"err-{first}").read_text()[-400:],
                  file=sys.stderr)
    seconds = time.monotonic() - started
    counts = dict(fake.counts)
    fake.stop()
    shutil.rmtree(run)
    gets.sort()
    peak, first = 0, 0
    for last, t in enumerate(gets):
        while gets[first] <= t - 10:
            first += 1
        peak = max(peak, last - first + 1)
    return {"failed": failed, "seconds": seconds, "throttled": counts["throttled"], "gets": counts["get"],
            "tokens": counts["token"], "capacity": capacity, "peak": peak}


def fleet(work):
    rows = [("this build, ranks given, fleet_capacity %d", "ranks"),
            ("this build, node count only, fleet_capacity %d", "count"),
            ("this build without the fleet keys", "none"),
            ("azure-identity + azure-keyvault-secrets, a client per node (%d processes of threads)" % SDK_PROCESSES,
             "sdk")]
    out = ["| %d nodes start, each reading %d secrets; Key Vault allows %d GETs per 10 s | jobs | failed nodes, "
           "all jobs | HTTP 429, all jobs | GETs answered per node (median) | Entra tokens per node (median) "
           "| GETs sent in the busiest 10 s (median) | all nodes hold their secrets (median) |" % (
               FLEET, len(FLEET_SECRETS), LIMIT),
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, mode in rows:
        js = [fleet_job(work, mode) for _ in range(JOBS)]
        RAW.setdefault("fleet", []).extend({"build": mode, **j} for j in js)
        if "%d" in label:
            label = label % js[0]["capacity"]
        out.append("| %s | %d | %d | %d | %.2f | %.2f | %d | %.1f s |" % (
            label, len(js), sum(j["failed"] for j in js), sum(j["throttled"] for j in js),
            statistics.median(j["gets"] for j in js) / FLEET, statistics.median(j["tokens"] for j in js) / FLEET,
            statistics.median(j["peak"] for j in js), statistics.median(j["seconds"] for j in js)))
    return out


def main():
    only = os.environ.get("ST_CLOUD_ONLY", "start-up federated disabled fleet").split()
    work = Path(tempfile.mkdtemp(prefix="st-cloud-bench-"))
    drongo = Drongo()
    drongo.add("keys", json.dumps({"HF_TOKEN": "hf_from_gcp", "WANDB_API_KEY": "wandb_from_gcp"}))
    tables = []
    try:
        for name, f, args in (("start-up", start_up, (drongo, work)), ("federated", federated, (work,)),
                              ("disabled", disabled, (drongo, work)), ("fleet", fleet, (work,))):
            if name in only:
                print(f"cloud: {name}", file=sys.stderr, flush=True)
                tables.append("\n".join(f(*args)))
    finally:
        drongo.proc.terminate()
        drongo.proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
        (OUT / "raw.json").write_text(json.dumps(RAW, indent=1))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
