"""A job's start at scale: N real processes, one per simulated node, each the
tool's `get`, released together through a FIFO, against a 3-node OpenBao raft
cluster with a login rate-limit quota (its audit devices counting) or moto
behind a throttling proxy. Standard library only. Used by the short test
(cli/tests/fleet_start.rs) and the benchmark (scripts/bench.sh fleet-start).

  fleet_start.py vault-setup CLUSTER_JSON RATE OUT_JSON
      an AppRole mount `fleet` on the cluster (role `node`, policy reader),
      a rate-limit quota of RATE logins a second on auth/fleet/login with
      its response headers on; writes what a node needs to OUT_JSON
  fleet_start.py proxy PORT UPSTREAM RATE COUNTS_FILE
      the throttling proxy (the one fake of this benchmark): passes at most
      RATE requests a second to UPSTREAM (moto), answers the others as AWS
      does when a quota is exceeded (HTTP 400, `ThrottlingException`); counts
      both, and the passed ones by operation, into COUNTS_FILE
  fleet_start.py job BACKEND SETUP_JSON BIN MODE NODES CAPACITY WORK_DIR [LABEL]
      one job's start: NODES processes of BIN (`get HF_TOKEN`) released
      together; MODE: `ranks` (Slurm's variables), `count` (the node count
      only), `none` (nothing; also for a build that knows no fleet keys: then
      CAPACITY is 0 and no fleet key is written); prints one JSON line
  fleet_start.py report JSONL
      the benchmark's table from the job lines

What is counted: exit statuses and times (from the release to each exit: the
value held and the login token revoked); the clients' own counters
(SIMPLETUNER_METRICS_DIR: answers by status, timeouts); on Vault the audit
devices (logins answered, tokens revoked with revoke-self, the login tokens
never revoked); on AWS the proxy (requests passed to moto by operation, throttled).
"""

import http.client
import http.server
import json
import os
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vault"))


def vault_setup(cluster_json, rate, out):
    import cluster  # tests/vault/cluster.py

    state = cluster.load(os.path.dirname(os.path.abspath(cluster_json)))
    url, root = state["urls"][cluster.leader(state)], state["root_token"]
    call = cluster.call
    status, _ = call(url, "GET", "sys/auth/fleet", token=root, ok=None)
    if status != 200:
        call(url, "POST", "sys/auth/fleet", {"type": "approle"}, token=root)
    call(url, "POST", "auth/fleet/role/node", {"token_policies": ["reader"], "token_ttl": "10m"}, token=root)
    _, doc = call(url, "GET", "auth/fleet/role/node/role-id", token=root)
    role_id = doc["data"]["role_id"]
    _, doc = call(url, "POST", "auth/fleet/role/node/secret-id", {}, token=root)
    secret_id = doc["data"]["secret_id"]
    call(url, "POST", "sys/quotas/config", {"enable_rate_limit_response_headers": True}, token=root)
    call(url, "POST", "sys/quotas/rate-limit/fleet-logins",
         {"path": "auth/fleet/login", "rate": float(rate), "interval": "1s"}, token=root)
    with open(out, "w") as f:
        json.dump({"urls": state["urls"], "role_id": role_id, "secret_id": secret_id, "rate": float(rate),
                   "audit_logs": [os.path.join(state["dir"], "audit.log")]}, f)
    os.chmod(out, 0o600)


class Window:
    """Requests passed in the current wall-clock second, at most `rate`."""

    def __init__(self, rate, counts_file):
        self.rate, self.counts_file = rate, counts_file
        self.lock = threading.Lock()
        self.second, self.used = 0, 0
        self.counts = {"passed": 0, "throttled": 0, "operations": {}}

    def admit(self, operation):
        with self.lock:
            now = int(time.time())
            if now != self.second:
                self.second, self.used = now, 0
            ok = self.used < self.rate
            self.used += ok
            self.counts["passed" if ok else "throttled"] += 1
            if ok:
                ops = self.counts["operations"]
                ops[operation] = ops.get(operation, 0) + 1
            with open(self.counts_file + ".tmp", "w") as f:
                json.dump(self.counts, f)
            os.replace(self.counts_file + ".tmp", self.counts_file)
            return ok


def proxy(port, upstream, rate, counts_file):
    window = Window(float(rate), counts_file)
    host, up_port = upstream.split("//")[1].split(":")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            operation = self.headers.get("X-Amz-Target", "?").rsplit(".", 1)[-1]
            if not window.admit(operation):
                answer = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                self.send_response(400)
                self.send_header("x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/coral/")
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                return
            conn = http.client.HTTPConnection(host, int(up_port), timeout=60)
            # The signature covers the Host header: it goes on unchanged.
            conn.putrequest("POST", self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            r = conn.getresponse()
            answer = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            conn.close()

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        request_queue_size = 4096

    Server(("127.0.0.1", int(port)), Handler).serve_forever()


def audit_lines(paths, offsets):
    """The audit entries written since `offsets` (bytes, per file)."""
    out = []
    for path, start in zip(paths, offsets):
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            f.seek(start)
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def sizes(paths):
    return [os.path.getsize(p) if os.path.exists(p) else 0 for p in paths]


def settle(paths, quiet=3.0, longest=120.0):
    """Waits until the audit logs stop growing (late logins land) for `quiet` s."""
    end, last, since = time.time() + longest, None, time.time()
    while time.time() < end:
        now = sizes(paths)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.2)


def tokens(entries, mount):
    """Logins answered (their tokens' HMACs) and the tokens revoked."""
    logins, revoked = set(), set()
    for e in entries:
        if e.get("type") != "response" or e.get("error"):
            continue
        path = e.get("request", {}).get("path", "")
        if path == "auth/%s/login" % mount:
            t = ((e.get("response") or {}).get("auth") or {}).get("client_token")
            if t:
                logins.add(t)
        elif path == "auth/token/revoke-self":
            t = e.get("request", {}).get("client_token")
            if t:
                revoked.add(t)
    return logins, revoked


def client_counts(metrics_dir):
    """The clients' own counters: answers 429, throttled (AWS's 400s are
    not told apart here: the proxy counts them), timeouts."""
    out = {"429": 0, "timeout": 0, "retries": 0}
    for name in os.listdir(metrics_dir):
        try:
            with open(os.path.join(metrics_dir, name)) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue
        for provider in doc.values():
            if not isinstance(provider, dict):
                continue
            out["retries"] += provider.get("retries", 0)
            for r in provider.get("requests", []):
                # A standby's sys/health answers 429: a role, not a refusal.
                if r.get("outcome") in ("429", "timeout") and r.get("operation") != "health":
                    out[r["outcome"]] += r.get("count", 0)
    return out


def placed(env, mode, rank, nodes, rank_vars=("SLURM_NODEID", "SLURM_NNODES")):
    """`env` with what a scheduler says of node `rank` of `nodes`: MODE
    `ranks` its rank and the node count (Slurm's variables unless
    `rank_vars` names others), `count` the node count only, `none` nothing."""
    e = dict(env)
    if mode == "ranks":
        e.update({rank_vars[0]: str(rank), rank_vars[1]: str(nodes)})
    elif mode == "count":
        e["SIMPLETUNER_FLEET_NODES"] = str(nodes)
    return e


def job(backend, setup_json, binary, mode, nodes, capacity, work, label=None):
    nodes, capacity = int(nodes), float(capacity)
    with open(setup_json) as f:
        setup = json.load(f)
    os.makedirs(work, exist_ok=True)
    run = tempfile.mkdtemp(dir=work)
    home, metrics, errs = (os.path.join(run, d) for d in ("home", "metrics", "err"))
    for d in (home, metrics, errs):
        os.makedirs(d, mode=0o700)
    config = {"providers": [backend], "request_timeout": 5}
    env = {"HOME": home, "PATH": os.environ.get("PATH", ""), "AWS_EC2_METADATA_DISABLED": "true",
           "SIMPLETUNER_METRICS_DIR": metrics}
    if backend == "vault":
        config.update({"vault_urls": setup["urls"], "vault_auth_mount": "fleet", "vault_kv_version": 2})
        env.update({"VAULT_ROLE_ID": setup["role_id"], "VAULT_SECRET_ID": setup["secret_id"]})
        offsets = sizes(setup["audit_logs"])
    else:
        config.update({"aws_secret_name": "st-secrets/test", "aws_region": setup["region"],
                       "aws_endpoint": setup["proxy"]})
        env.update({"AWS_ACCESS_KEY_ID": setup["admin"]["id"], "AWS_SECRET_ACCESS_KEY": setup["admin"]["secret"]})
        with open(setup["proxy_counts"]) as f:
            before = json.load(f)
    if capacity > 0:
        config["fleet_capacity"] = max(1, int(capacity))
    config_file = os.path.join(run, "config.json")
    with open(config_file, "w") as f:
        json.dump(config, f)
    fifo = os.path.join(run, "go")
    os.mkfifo(fifo, 0o600)
    procs = []
    for rank in range(nodes):
        e = placed(env, mode, rank, nodes)
        with open(os.path.join(errs, "%d" % rank), "w") as err:
            p = subprocess.Popen(
                ["sh", "-c", 'read _ < "$0"; exec "$@"', fifo, binary, "--config", config_file, "get", "HF_TOKEN"],
                env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )
        procs.append(p)
    time.sleep(1.0)
    released = time.monotonic()
    os.close(os.open(fifo, os.O_WRONLY))
    ended, pids = {}, {p.pid: i for i, p in enumerate(procs)}
    while len(ended) < nodes:
        pid, status = os.wait()
        if pid in pids:
            ended[pids[pid]] = (time.monotonic() - released, os.waitstatus_to_exitcode(status))
    failed = [i for i, (_, code) in ended.items() if code != 0]
    errors = {}
    for i in failed:
        with open(os.path.join(errs, "%d" % i)) as f:
            text = f.read().strip().splitlines()
        key = (text[-1] if text else "(nothing said)")[:160]
        errors[key] = errors.get(key, 0) + 1
    out = {"backend": backend, "label": label or mode, "mode": mode, "nodes": nodes, "capacity": capacity,
           "failed": len(failed), "seconds": round(max(t for t, _ in ended.values()), 2),
           "errors": errors}
    out.update(client_counts(metrics))
    if backend == "vault":
        settle(setup["audit_logs"])
        logins, revoked = tokens(audit_lines(setup["audit_logs"], offsets), "fleet")
        out.update({"rate": setup["rate"], "logins": len(logins), "revoked": len(logins & revoked),
                    "unrevoked": len(logins - revoked)})
    else:
        time.sleep(1.0)
        with open(setup["proxy_counts"]) as f:
            after = json.load(f)
        ops = {k: v - before.get("operations", {}).get(k, 0) for k, v in after["operations"].items()}
        out.update({"rate": setup["rate"], "passed": after["passed"] - before["passed"],
                    "throttled": after["throttled"] - before["throttled"],
                    "gets": ops.get("GetSecretValue", 0), "operations": {k: v for k, v in ops.items() if v}})
    subprocess.run(["rm", "-rf", run], check=False)
    print(json.dumps(out), flush=True)


def report(jsonl):
    rows = {}
    with open(jsonl) as f:
        for line in f:
            if line.startswith("{"):
                j = json.loads(line)
                rows.setdefault((j["backend"], j["label"]), []).append(j)
    first = next(iter(rows.values()))[0]
    n, rate = first["nodes"], first["rate"]
    assert all(j["nodes"] == n and j["rate"] == rate for js in rows.values() for j in js), "one N and C"
    print("N = %d processes, C = %g a second: N / C = %.1f s." % (n, rate, n / rate))
    print()
    print("| store | build | jobs | failed ranks, all jobs | every rank holds its secret (median, max) "
          "| logins or GetSecretValue (median) | tokens never revoked, all jobs | 429s seen, all jobs | timeouts seen, all jobs |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|")
    for (backend, label), js in rows.items():
        secs = [j["seconds"] for j in js]
        store = "OpenBao, quota C" if backend == "vault" else "moto, throttled past C"
        logins = statistics.median(j["logins"] for j in js) if backend == "vault" else \
            statistics.median(j["gets"] for j in js)
        unrevoked = sum(j["unrevoked"] for j in js) if backend == "vault" else "-"
        seen = sum(j["429"] for j in js) if backend == "vault" else sum(j["throttled"] for j in js)
        print("| %s | %s | %d | %d | %.1f s, %.1f s | %g | %s | %s | %d |" % (
            store, label, len(js), sum(j["failed"] for j in js), statistics.median(secs), max(secs),
            logins, unrevoked, seen, sum(j["timeout"] for j in js)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "vault-setup":
        vault_setup(*args)
    elif cmd == "proxy":
        proxy(*args)
    elif cmd == "job":
        job(*args)
    elif cmd == "report":
        report(*args)
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
