"""The generic RFC 8693 client against a real token server: Keycloak
(Maven's keycloak-quarkus-dist, run from target/keycloak with Java 21+ where
there is one) and its standard token exchange, over ST_KEYCLOAK_SECONDS (600)
of credentials living 60 s, 4 nodes x 8 ranks.

Each node's subject token is the access token of its own Keycloak client
(`job-issuer-N`, client credentials, 180 s, for the exchanging client's
audience), rewritten every 30 s as a kubelet rewrites a projected token. The
exchanging client authenticates with its secret (HTTP Basic) and asks for
the API's audience; the API's call is Keycloak's introspection by the API's
own client (`active`, the audience), once a second per rank.

  this build   each rank reads API_KEY through the C ABI (ctypes), the
               node's ranks sharing one node cache; a credential the API
               refuses is reported (report_failure) and read again
  per process  8 ranks of one node, each exchanging itself (urllib) as the
               vendors' SDKs do: at first need, then again when a fifth of
               the lifetime is left

Keycloak's own event store counts the exchanges (TOKEN_EXCHANGE, by the
subject's client: the node) and the refusals (TOKEN_EXCHANGE_ERROR).

    keycloak.py OUT_DIR LIB     prints the table (markdown)
"""

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "26.7.3"
NODES, RANKS, LIFE, SUBJECT_LIFE = 4, 8, 60, 180
SECONDS = int(os.environ.get("ST_KEYCLOAK_SECONDS", "600"))
PY = sys.executable

# A rank of this build: API_KEY through the C ABI, the API once a second.
OURS = r'''
import ctypes, json, sys, time
sys.path.insert(0, sys.argv[5])
from keycloak import introspect
lib_path, config, seconds, out = sys.argv[1:5]
lib = ctypes.CDLL(lib_path)
P = ctypes.POINTER(ctypes.c_void_p)
lib.st_secrets_new.argtypes = [ctypes.c_char_p, P, P]
lib.st_secrets_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, P, P]
lib.st_secrets_report_failure.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, P, P, P]
lib.st_buf_str.argtypes = [ctypes.c_void_p]
lib.st_buf_str.restype = ctypes.c_char_p
lib.st_buf_free.argtypes = [ctypes.c_void_p]
lib.st_error_free.argtypes = [ctypes.c_void_p]
m, err = ctypes.c_void_p(), ctypes.c_void_p()
assert lib.st_secrets_new(config.encode(), ctypes.byref(m), ctypes.byref(err)) == 0
def get():
    buf, err = ctypes.c_void_p(), ctypes.c_void_p()
    if lib.st_secrets_get(m, b"API_KEY", ctypes.byref(buf), ctypes.byref(err)) != 0:
        lib.st_error_free(err)
        return None
    value = lib.st_buf_str(buf).decode()
    lib.st_buf_free(buf)
    return value
def report():
    value, info, err = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    if lib.st_secrets_report_failure(m, b"API_KEY", None, ctypes.byref(value), ctypes.byref(info),
                                     ctypes.byref(err)) != 0 and err.value:
        lib.st_error_free(err)
    for b in (value, info):
        if b.value:
            lib.st_buf_free(b)
stats = {"calls": 0, "refused": 0, "unread": 0}
end = time.time() + float(seconds)
while time.time() < end:
    t = time.time()
    token = get()
    stats["calls"] += 1
    if token is None:
        stats["unread"] += 1
    elif not introspect(token):
        stats["refused"] += 1
        report()
        token = get()
        if token is not None:
            introspect(token)
    time.sleep(max(0.0, 1.0 - (time.time() - t)))
json.dump(stats, open(out, "w"))
'''

# A rank exchanging for itself, as the vendors' SDKs do.
PEER = r'''
import json, sys, time
sys.path.insert(0, sys.argv[4])
from keycloak import exchange, introspect
subject_file, seconds, out = sys.argv[1:4]
stats = {"calls": 0, "refused": 0, "unread": 0}
token, renew_at = None, 0.0
end = time.time() + float(seconds)
while time.time() < end:
    t = time.time()
    if token is None or t >= renew_at:
        got = exchange(open(subject_file).read().strip())
        if got:
            token, renew_at = got[0], t + 0.8 * got[1]
    stats["calls"] += 1
    if token is None:
        stats["unread"] += 1
    elif not introspect(token):
        stats["refused"] += 1
        token = None
    time.sleep(max(0.0, 1.0 - (time.time() - t)))
json.dump(stats, open(out, "w"))
'''

BASE = os.environ.get("ST_KEYCLOAK_URL", "")
SECRETS = json.loads(os.environ.get("ST_KEYCLOAK_SECRETS", "{}"))


def call(method, path, body=None, token=None, form=None, basic=None):
    """One request to Keycloak: (status, JSON or text)."""
    data, headers = None, {}
    if form is not None:
        data, headers["content-type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    elif body is not None:
        data, headers["content-type"] = json.dumps(body).encode(), "application/json"
    if token:
        headers["authorization"] = "Bearer " + token
    if basic:
        headers["authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    req = urllib.request.Request(BASE + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def introspect(token):
    """The API's check: Keycloak's introspection by the API's client."""
    status, doc = call("POST", "/realms/st/protocol/openid-connect/token/introspect", form={"token": token},
                       basic=f"vendor-api:{SECRETS['vendor-api']}")
    return status == 200 and doc.get("active") is True and "vendor-api" in str(doc.get("aud"))


def exchange(subject):
    """One RFC 8693 exchange by the per-process client: (token, lifetime)."""
    status, doc = call("POST", "/realms/st/protocol/openid-connect/token", basic=f"sdk-exchanger:{SECRETS['sdk']}",
                       form={"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                             "subject_token": subject,
                             "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                             "audience": "vendor-api"})
    return (doc["access_token"], doc["expires_in"]) if status == 200 else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_keycloak(work):
    """Keycloak from Maven's distribution, and its admin's login."""
    archive = (Path.home() / ".m2/repository/org/keycloak/keycloak-quarkus-dist" / VERSION
               / f"keycloak-quarkus-dist-{VERSION}.tar.gz")
    if not archive.exists():
        subprocess.run(["mvn", "-q", "dependency:get", "-Dtransitive=false",
                        f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{VERSION}:tar.gz"], check=True)
    home = ROOT / "target/keycloak" / f"keycloak-{VERSION}"
    if not home.exists():
        with tarfile.open(archive) as t:
            t.extractall(home.parent, filter="data")
    env = dict(os.environ, KC_BOOTSTRAP_ADMIN_USERNAME="admin", KC_BOOTSTRAP_ADMIN_PASSWORD=secrets.token_hex(12))
    newer = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
    if newer.exists():
        env["JAVA_HOME"] = str(newer)
    shutil.rmtree(home / "data", ignore_errors=True)  # a realm of its own each run
    port = free_port()
    log = open(work / "keycloak.log", "w")
    proc = subprocess.Popen([str(home / "bin/kc.sh"), "start-dev", "--http-host=127.0.0.1", f"--http-port={port}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    global BASE
    BASE = f"http://127.0.0.1:{port}"
    def admin():
        """A new token of the admin (they live a minute)."""
        status, doc = call("POST", "/realms/master/protocol/openid-connect/token", form={
            "grant_type": "password", "client_id": "admin-cli", "username": "admin",
            "password": env["KC_BOOTSTRAP_ADMIN_PASSWORD"]})
        return doc["access_token"] if status == 200 else None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if admin():
                return proc, admin
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(2)
    raise SystemExit(f"Keycloak did not start: see {work / 'keycloak.log'}")


def configure(admin):
    """The realm: the API's client, the two exchanging clients (standard
    token exchange on, the API in their audience), one subject client per
    node; events of exchanges kept."""
    def post(path, body):
        status, doc = call("POST", path, body, admin)
        assert status in (201, 204), (path, status, doc)
    post("/admin/realms", {"realm": "st", "enabled": True, "accessTokenLifespan": LIFE, "eventsEnabled": True,
                           "enabledEventTypes": ["TOKEN_EXCHANGE", "TOKEN_EXCHANGE_ERROR"]})

    def audience(name, to):
        return {"name": name, "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
                "config": {"included.client.audience": to, "access.token.claim": "true"}}
    found = {}
    clients = [("vendor-api", {}, []), ("st-exchanger", {"standard.token.exchange.enabled": "true"},
               [audience("api", "vendor-api")]), ("sdk-exchanger", {"standard.token.exchange.enabled": "true"},
               [audience("api", "vendor-api")])]
    clients += [(f"job-issuer-{n}", {"access.token.lifespan": str(SUBJECT_LIFE)},
                 [audience("ours", "st-exchanger"), audience("sdk", "sdk-exchanger")]) for n in range(NODES + 1)]
    for name, attributes, mappers in clients:
        found[name] = secrets.token_hex(16)
        post("/admin/realms/st/clients", {
            "clientId": name, "enabled": True, "publicClient": False, "secret": found[name],
            "serviceAccountsEnabled": True, "standardFlowEnabled": False, "attributes": attributes,
            "protocolMappers": mappers})
    return found


def kubelet(node, path, stop):
    """Node `node`'s subject token, rewritten every 30 s."""
    while not stop.is_set():
        status, doc = call("POST", "/realms/st/protocol/openid-connect/token", form={"grant_type": "client_credentials"},
                           basic=f"job-issuer-{node}:{CLIENTS[f'job-issuer-{node}']}")
        if status == 200:
            tmp = path.with_suffix(".new")
            tmp.write_text(doc["access_token"])
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        stop.wait(30)


def events(admin, kind):
    status, doc = call("GET", f"/admin/realms/st/events?type={kind}&max=1000000", token=admin)
    assert status == 200, doc
    return doc


def main():
    global CLIENTS, SECRETS
    out, lib = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="st-bench-keycloak.", dir="/dev/shm"))
    proc, admin = start_keycloak(work)
    stop = threading.Event()
    try:
        CLIENTS = configure(admin())
        SECRETS = {"vendor-api": CLIENTS["vendor-api"], "sdk": CLIENTS["sdk-exchanger"]}
        os.environ.update(ST_KEYCLOAK_URL=BASE, ST_KEYCLOAK_SECRETS=json.dumps(SECRETS))
        secret_file = work / "client-secret"
        secret_file.write_text(CLIENTS["st-exchanger"])
        os.chmod(secret_file, 0o600)
        subjects = [work / f"subject-{n}.jwt" for n in range(NODES + 1)]
        for n, path in enumerate(subjects):
            threading.Thread(target=kubelet, args=(n, path, stop), daemon=True).start()
        while not all(p.exists() for p in subjects):
            time.sleep(0.2)
        (work / "ours.py").write_text(OURS)
        (work / "peer.py").write_text(PEER)
        here = str(Path(__file__).parent)
        ranks = []
        for n in range(NODES):
            config = {"providers": ["exchange"], "node_cache": True, "node_cache_dir": str(work / f"node-{n}"),
                      "exchanges": {"API_KEY": {
                          "profile": "rfc8693", "url": f"{BASE}/realms/st/protocol/openid-connect/token",
                          "audience": "st-exchanger", "requested_audience": "vendor-api",
                          "subject_token_type": "access_token", "client_id": "st-exchanger",
                          "client_secret_file": str(secret_file), "subject_token_file": str(subjects[n])}}}
            for r in range(RANKS):
                ranks.append(subprocess.Popen([PY, str(work / "ours.py"), str(lib), json.dumps(config), str(SECONDS),
                                               str(work / f"ours-{n}-{r}.json"), here],
                                              env=dict(os.environ, SLURM_NODEID=str(n), SLURM_NNODES=str(NODES))))
        for r in range(RANKS):
            ranks.append(subprocess.Popen([PY, str(work / "peer.py"), str(subjects[NODES]), str(SECONDS),
                                           str(work / f"peer-{r}.json"), here]))
        for p in ranks:
            p.wait()
        done = events(admin(), "TOKEN_EXCHANGE")
        refused = events(admin(), "TOKEN_EXCHANGE_ERROR")
    finally:
        stop.set()
        os.killpg(proc.pid, 15)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        shutil.copy(work / "keycloak.log", out / "keycloak.log")
    print(table(work, done, refused))
    shutil.rmtree(work, ignore_errors=True)


def table(work, done, refused):
    lifetimes = SECONDS / LIFE

    def side(client, prefix, nodes):
        stats = [json.loads(p.read_text()) for p in sorted(work.glob(f"{prefix}-*.json"))]
        mine = [e for e in done if e.get("clientId") == client]
        per_node, gaps = [], []
        for n in nodes:
            times = sorted(e["time"] / 1000 for e in mine
                           if e.get("details", {}).get("subject_token_client_id") == f"job-issuer-{n}")
            per_node.append(len(times) / lifetimes)
            gaps += [(b - a) / LIFE for a, b in zip(times, times[1:])]
        errors = sum(1 for e in refused if e.get("clientId") == client)
        return (f"{sum(per_node) / len(per_node):.2f}", f"{min(gaps):.2f}" if gaps else "-",
                str(sum(s["calls"] for s in stats)), str(sum(s["refused"] for s in stats)),
                str(sum(s["unread"] for s in stats)), str(errors))
    ours = side("st-exchanger", "ours", range(NODES))
    peer = side("sdk-exchanger", "peer", [NODES])
    rows = ["| | this build (4 x 8, C ABI) | per process (8 ranks) |", "|---|---:|---:|"]
    for i, label in enumerate(["exchanges per node per lifetime", "a node's shortest gap between two (lifetimes)",
                               "API calls", "API calls refused (inactive)", "reads that failed",
                               "exchanges Keycloak refused"]):
        rows.append(f"| {label} | {ours[i]} | {peer[i]} |")
    head = (f"Keycloak {VERSION} (standard token exchange, RFC 8693; the client authenticated with its "
            f"secret), {SECONDS} s of {LIFE} s credentials; every rank calls the API once a second.")
    return head + "\n\n" + "\n".join(rows)


if __name__ == "__main__":
    main()
