"""Token exchanges over a long job, compressed: a 72-hour job run 60 times
faster (ST_EXCHANGE_SECONDS, 4320: 72 minutes), Hugging Face's, OpenAI's and
W&B's credentials living 60 s (an hour) and Anthropic's 10 s (ten minutes),
4 nodes x 8 ranks, each rank calling each vendor's API once a second with
the credential it holds, against tests/exchange/fake_vendors.py (the fake
the interop suite proves with the vendors' own SDKs).

  this build   each rank reads the four keys through the C ABI (ctypes), the
               node's ranks sharing one node cache; a credential the API
               refuses is reported (report_failure) and read again
  the SDKs     8 ranks of one node per vendor, each exchanging as its SDK
               does: huggingface_hub's exchange_oidc_token again when a
               fifth of the lifetime is left (the SDK never renews), openai's
               WorkloadIdentityAuth, anthropic's WorkloadIdentityCredentials,
               wandb's Api (wandb-core)

Each node's subject tokens are rewritten as a kubelet would: the 60 s
vendors' every 30 s (lifetime 180 s), Anthropic's every second (a fresh
`jti`, which its endpoint takes once). The fake counts exchanges, refusals,
`jti`s sent twice, and API calls with an expired credential. At the middle
and the end, `st-secrets scan` looks through the job's directories, the
ranks' /proc/PID/environ and their outputs for the organisation's long-lived
keys (which the job never gets) and for every credential exchanged (which
may be only in 0600 files of the node cache on tmpfs).

    bench.py OUT_DIR BIN LIB     prints the table (markdown)
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "exchange"))
from fake_vendors import KEYS, ORG, FakeVendors, Issuer  # noqa: E402

OUT, BIN, LIB = (Path(a) for a in sys.argv[1:4])
PY = sys.executable
NODES, RANKS, COMPRESS = 4, 8, 60
SECONDS = int(os.environ.get("ST_EXCHANGE_SECONDS", str(72 * 3600 // COMPRESS)))
LIFE = {"hf": 3600 // COMPRESS, "openai": 3600 // COMPRESS, "wandb": 3600 // COMPRESS,
        "anthropic": 600 // COMPRESS}
LONG_LIVED = {"HF_TOKEN": "hf_" + "L" * 34, "OPENAI_API_KEY": "sk-proj-" + "L" * 48,
              "ANTHROPIC_API_KEY": "sk-ant-api03-" + "L" * 80, "WANDB_API_KEY": "L" * 40}

# A rank of this build: each vendor's key read through the C ABI and its API
# called with it once a second; a refused credential reported and read again.
OURS = r'''
import ctypes, json, sys, time, urllib.request, urllib.error
lib_path, config, seconds, out, bases = sys.argv[1:6]
bases = json.loads(bases)
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
def get(key):
    buf, err = ctypes.c_void_p(), ctypes.c_void_p()
    if lib.st_secrets_get(m, key.encode(), ctypes.byref(buf), ctypes.byref(err)) != 0:
        lib.st_error_free(err)
        return None
    value = lib.st_buf_str(buf).decode()
    lib.st_buf_free(buf)
    return value
def report(key):
    value, info, err = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    rc = lib.st_secrets_report_failure(m, key.encode(), None, ctypes.byref(value), ctypes.byref(info),
                                       ctypes.byref(err))
    for b in (value, info):
        if b.value:
            lib.st_buf_free(b)
    if rc != 0 and err.value:
        lib.st_error_free(err)
def call(vendor, token):
    base = bases[vendor]
    if vendor == "wandb":
        req = urllib.request.Request(base + "/graphql", data=b"{}")
    else:
        req = urllib.request.Request(base + ("/api/whoami-v2" if vendor == "hf" else "/v1/models"))
    req.add_header("Authorization", "Bearer " + token)
    if vendor == "anthropic":
        req.add_header("anthropic-beta", "oauth-2025-04-20")
    try:
        urllib.request.urlopen(req, timeout=10).read()
        return True
    except urllib.error.HTTPError:
        return False
stats = {v: {"calls": 0, "refused": 0, "unread": 0} for v in bases}
keys = {"hf": "HF_TOKEN", "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_AUTH_TOKEN", "wandb": "WANDB_API_KEY"}
end = time.time() + float(seconds)
while time.time() < end:
    t = time.time()
    for vendor in bases:
        token = get(keys[vendor])
        stats[vendor]["calls"] += 1
        if token is None:
            stats[vendor]["unread"] += 1
        elif not call(vendor, token):
            stats[vendor]["refused"] += 1
            report(keys[vendor])
            token = get(keys[vendor])
            if token is not None:
                call(vendor, token)
    time.sleep(max(0.0, 1.0 - (time.time() - t)))
json.dump(stats, open(out, "w"))
'''

# A rank of a vendor's SDK: its own exchange, its API once a second.
SDK = r'''
import json, os, sys, time
vendor, base, subject_file, audience, seconds, out = sys.argv[1:7]
token = lambda: open(subject_file).read().strip()
stats = {"calls": 0, "failed": 0}
if vendor == "hf":
    from huggingface_hub import HfApi
    from huggingface_hub._oidc import exchange_oidc_token
    held = [None, 0.0]
    def call():
        if held[0] is None or time.time() > held[1]:  # a fifth of the lifetime left: exchange again
            answer = exchange_oidc_token(subject_token=token(), resource="org/model", endpoint=base)
            held[:] = [answer["access_token"], time.time() + 0.8 * answer["expires_in"]]
        HfApi(endpoint=base, token=held[0]).whoami()
elif vendor == "openai":
    import openai
    from openai.auth._workload import WorkloadIdentityAuth, k8s_service_account_token_provider
    auth = WorkloadIdentityAuth(workload_identity={"identity_provider_id": "idp_test", "service_account_id": "sa_test",
                                                   "provider": k8s_service_account_token_provider(subject_file)},
                                token_exchange_url=base + "/oauth/token")
    def call():
        openai.OpenAI(api_key=auth.get_token(), base_url=base + "/v1", max_retries=0).models.list()
elif vendor == "anthropic":
    import anthropic
    from anthropic.lib.credentials import WorkloadIdentityCredentials
    cred = WorkloadIdentityCredentials(identity_token_provider=token, federation_rule_id="fdrl_test",
                                       organization_id=%(org)r, service_account_id="svac_test")
    client = anthropic.Anthropic(credentials=cred, base_url=base, max_retries=0)
    def call():
        client.models.list()
else:
    import wandb
    api = wandb.Api(timeout=20)
    def call():
        api.viewer.username
        api._viewer = None  # asked again each time, as a run's calls are
end = time.time() + float(seconds)
while time.time() < end:
    t = time.time()
    stats["calls"] += 1
    try:
        call()
    except Exception:
        stats["failed"] += 1
    time.sleep(max(0.0, 1.0 - (time.time() - t)))
json.dump(stats, open(out, "w"))
''' % {"org": ORG}


def kubelet(issuer, fake, node_dir, node, stop):
    """Rewrites a node's subject tokens, each new file renamed over the old:
    the 60 s vendors' every 30 s (lifetime 180 s), Anthropic's every second."""
    last = {}
    while not stop.wait(0.25):
        now = time.time()
        for vendor in KEYS:
            every = 1.0 if vendor == "anthropic" else LIFE[vendor] / 2
            if now - last.get(vendor, 0) >= every:
                path = node_dir / f"{vendor}.jwt"
                new = path.with_suffix(".new")
                new.write_text(issuer.mint(fake.audience(vendor), 3 * LIFE["hf"], user="alice", node=node))
                new.chmod(0o600)
                new.rename(path)
                last[vendor] = now


def config(fake, node_dir, cache):
    exchanges = fake.exchanges({vendor: node_dir / f"{vendor}.jwt" for vendor in KEYS})
    return json.dumps({"providers": ["exchange"], "node_cache": True, "node_cache_dir": str(cache),
                       "exchanges": exchanges})


def scan(paths, values, work):
    """`st-secrets scan` of `paths` for `values` (a secrets file of them,
    0600, outside what is scanned): the hits, each (path, key)."""
    secrets = work / "scan-values.json"
    secrets.write_text(json.dumps(values))
    secrets.chmod(0o600)
    cfg = work / "scan-config.json"
    cfg.write_text(json.dumps({"providers": ["file"], "file_path": str(secrets)}))
    r = subprocess.run([str(BIN), "--config", str(cfg), "scan", "--json", *map(str, paths)], capture_output=True,
                       text=True, env={"PATH": os.environ["PATH"], "HOME": str(work)}, timeout=600)
    if r.returncode not in (0, 1):
        sys.exit(f"scan failed: {r.stderr[-2000:]}")
    doc = json.loads(r.stdout)
    if doc["errors"]:
        sys.exit(f"scan could not read: {doc['errors'][:3]}")
    return [(h["path"], h["key"]) for h in doc["found"]]


def environs(procs):
    """Copies of the running ranks' /proc/PID/environ (scan reads files)."""
    out = []
    for p in procs:
        try:
            out.append(Path(f"/proc/{p.pid}/environ").read_bytes())
        except OSError:
            pass
    return out


def main():
    work = Path(tempfile.mkdtemp(prefix="st-bench-exchange."))
    caches = [Path(tempfile.mkdtemp(prefix="st-bench-exchange-node.", dir="/dev/shm")) for _ in range(NODES)]
    issuer = Issuer()
    # One fake for this build's ranks, one for the SDKs': each side's counts.
    fake = FakeVendors(issuer.url, claims={"user": "alice"}, lifetimes=LIFE)
    peer = FakeVendors(issuer.url, claims={"user": "alice"}, lifetimes=LIFE)
    stop = threading.Event()
    nodes = [work / f"node-{n}" for n in range(NODES + 1)]  # the last: the SDKs' node
    for d in nodes:
        d.mkdir()
    threads = [threading.Thread(target=kubelet, args=(issuer, peer if n == NODES else fake, d, n, stop),
                                daemon=True) for n, d in enumerate(nodes)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    bases = {v: fake.base(v) for v in KEYS}
    env = {k: v for k, v in os.environ.items() if k not in KEYS.values() and not k.startswith("SIMPLETUNER_")}
    procs, outs = [], []
    started = time.time()
    for n in range(NODES):
        for r in range(RANKS):
            out = work / f"ours-{n}-{r}.json"
            log = open(work / f"ours-{n}-{r}.log", "w")
            procs.append(subprocess.Popen([PY, "-c", OURS, str(LIB), config(fake, nodes[n], caches[n]), str(SECONDS),
                                           str(out), json.dumps(bases)], env=env, stdout=log, stderr=log))
            outs.append(("ours", out))
    sdk_env = dict(env, HOME=str(work), WANDB_SILENT="true", WANDB_DIR=str(work), WANDB_CONFIG_DIR=str(work),
                   WANDB_BASE_URL=peer.base("wandb"), WANDB_IDENTITY_TOKEN_FILE=str(nodes[-1] / "wandb.jwt"),
                   WANDB_CREDENTIALS_FILE="")
    for vendor in KEYS:
        for r in range(RANKS):
            out = work / f"sdk-{vendor}-{r}.json"
            log = open(work / f"sdk-{vendor}-{r}.log", "w")
            rank_env = dict(sdk_env, WANDB_CREDENTIALS_FILE=str(work / f"wandb-credentials-{r}.json"))
            procs.append(subprocess.Popen([PY, "-c", SDK, vendor, peer.base(vendor), str(nodes[-1] / f"{vendor}.jwt"),
                                           peer.audience(vendor), str(SECONDS), str(out)],
                                          env=rank_env, stdout=log, stderr=log))
            outs.append((vendor, out))
    # At the middle: the ranks' environments, while they run.
    time.sleep(SECONDS / 2)
    env_dir = work / "environ"
    env_dir.mkdir()
    for i, data in enumerate(environs(procs)):
        (env_dir / f"rank-{i}").write_bytes(data)
    for p in procs:
        p.wait(timeout=SECONDS + 600)
    elapsed = time.time() - started
    stop.set()
    exchanged = list(fake.tokens)
    counts = {"ours": json.loads(json.dumps(fake.counts)), "sdk": json.loads(json.dumps(peer.counts))}
    # Each node's exchanges in time: the shortest gap between two, in lifetimes.
    gaps = {}
    for vendor in KEYS:
        for n in range(NODES):
            times = sorted(t for v, t, node in fake.granted if v == vendor and node == n)
            gaps.setdefault(vendor, []).extend((b - a) / LIFE[vendor] for a, b in zip(times, times[1:]))
    ours = [json.load(open(o)) for kind, o in outs if kind == "ours"]
    sdk = {v: [json.load(open(o)) for kind, o in outs if kind == v] for v in KEYS}
    long_hits = scan([work, *caches], LONG_LIVED, Path(tempfile.mkdtemp(prefix="st-bench-scan.")))
    values = {f"EXCHANGED_{i}": t for i, t in enumerate(exchanged)}
    token_hits = scan([work / "environ", *[work / f"ours-{n}-{r}.log" for n in range(NODES) for r in range(RANKS)],
                       *caches], values, Path(tempfile.mkdtemp(prefix="st-bench-scan.")))
    outside = [f for f, _ in token_hits
               if not (str(f).startswith("/dev/shm/") and stat.S_IMODE(os.stat(f).st_mode) == 0o600)]
    RAW = {"seconds": SECONDS, "elapsed": elapsed, "counts": counts, "ours": ours, "sdk": sdk, "gaps": gaps,
           "long_lived_hits": long_hits, "token_hits": token_hits, "outside": outside}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "raw.json").write_text(json.dumps(RAW, indent=1, default=str))
    report(RAW)
    for p in (work, *caches):
        shutil.rmtree(p, ignore_errors=True)
    fake.stop()
    peer.stop()
    issuer.stop()


def report(raw):
    """The table: per vendor, this build's and the SDKs' exchanges per node
    per lifetime, API calls refused, calls with an expired credential and
    `jti`s sent twice, each side's."""
    seconds = raw["seconds"]
    print(f"A {72 * seconds // 4320} h job compressed {COMPRESS} times ({seconds} s of wall time): {NODES} nodes "
          f"x {RANKS} ranks of this build; beside them, {RANKS} ranks (one node) of each vendor's SDK; every rank "
          "calls each API once a second. Each cell: this build / the SDK.\n")
    print("| vendor (credential's lifetime) | exchanges per node per lifetime | the node's shortest gap between "
          "two (lifetimes) | API calls | refused | sent with an expired credential | exchanges refused "
          "(`jti` sent twice) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for vendor in KEYS:
        lifetimes = seconds / LIFE[vendor]
        o, p = raw["counts"]["ours"][vendor], raw["counts"]["sdk"][vendor]
        calls = sum(r[vendor]["calls"] for r in raw["ours"]), sum(s["calls"] for s in raw["sdk"][vendor])
        refused = sum(r[vendor]["refused"] for r in raw["ours"]), sum(s["failed"] for s in raw["sdk"][vendor])
        gap = min(raw["gaps"][vendor], default=float("nan"))
        print(f"| {vendor} ({LIFE[vendor]} s) | {o['exchange'] / NODES / lifetimes:.2f} / "
              f"{p['exchange'] / lifetimes:.2f} | {gap:.2f} / - | {calls[0]} / {calls[1]} "
              f"| {refused[0]} / {refused[1]} | {o['expired']} / {p['expired']} "
              f"| {o['jti_reused']} / {p['jti_reused']} |")
    print(f"\n`scan` of the job's directories, the ranks' environments and their outputs: "
          f"{len(raw['long_lived_hits'])} long-lived keys; the exchanged credentials found "
          f"{len(raw['token_hits'])} times, {len(raw['outside'])} of them outside 0600 files on tmpfs "
          "(the node cache's entries).")


if __name__ == "__main__":
    main()
