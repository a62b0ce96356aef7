"""fork() while other threads use the library, as DataLoader workers,
multiprocessing's fork start method and Gunicorn do: children forked while 4
threads use a cache, a file-backed manager, the default manager and a Vault
provider against a local server that answers slowly (so fetches are in flight
at the forks). Every child must finish within its alarm with the right
answers, and the server must never see a malformed request (a pooled
connection shared across fork interleaves requests on the wire).

The server is Python's http.server answering KV v2 reads 5 ms late: the
fault needed on demand (the README lists it among the fake servers)."""

import http.server
import json
import multiprocessing
import os
import signal
import threading
import time
import warnings

import pytest

from st_secrets import SecretsManager, TTLCache, get_secrets_manager

CHILDREN = 100


class SlowVault(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    malformed = 0

    def do_GET(self):
        time.sleep(0.005)
        if "/data/" in self.path:
            body = json.dumps({"data": {"data": {"FORK_KEY": "from-vault"}, "metadata": {"version": 1}}}).encode()
            self.send_response(200)
        else:
            body = b'{"errors": []}'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code, message=None, explain=None):
        type(self).malformed += 1
        super().send_error(code, message, explain)

    def log_message(self, *args):
        pass


@pytest.fixture
def world(tmp_path, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowVault)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secrets = tmp_path / "secrets.json"
    secrets.write_text('{"FILE_KEY": "from-file"}')
    monkeypatch.setenv("ST_FORK_ENV", "from-env")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    w = {
        "cache": TTLCache(default_ttl=60, max_size=100),
        "file": SecretsManager({"file_path": str(secrets)}),
        "vault": SecretsManager({
            "providers": ["vault"], "vault_url": f"http://127.0.0.1:{server.server_address[1]}",
            "vault_token": "s.fork-test", "vault_path": "fork", "vault_kv_version": 2,
            "cache_ttl": 0.01, "retries": 0, "request_timeout": 5,
        }),
    }
    stop = threading.Event()

    def worker(who):
        i = 0
        while not stop.is_set():
            i += 1
            if who == 1:
                w["file"].clear_cache()
            if who == 2:
                w["vault"].clear_cache()
            one_round(w, who, i)

    SlowVault.malformed = 0
    assert one_round(w, 0, 0) == []
    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    yield w
    stop.set()
    for t in threads:
        t.join(10)
    server.shutdown()
    assert SlowVault.malformed == 0, "the server saw malformed requests"


def one_round(w, who, i):
    """Every kind of call once; the list of wrong answers."""
    wrong = []
    cache = w["cache"]
    cache.set(f"k{i % 8}", "v")
    cache.get(f"k{i % 8}")
    key = f"c{who}-{i % 16}"
    cache.delete(key)
    if cache.get_or_set(key, lambda: key, ttl=0.05) != key:
        wrong.append("get_or_set")
    if w["file"].get("FILE_KEY") != "from-file":
        wrong.append("file")
    if get_secrets_manager().get("ST_FORK_ENV") != "from-env":
        wrong.append("default manager")
    if w["vault"].get("FORK_KEY") != "from-vault":
        wrong.append("vault")
    return wrong


def child_work(w, n):
    signal.alarm(20)  # a hang is a SIGALRM death
    wrong = []
    for i in range(3):
        wrong += one_round(w, 100 + n, i)
    if not w["file"].set_secret(f"CHILD_{n}", "x"):
        wrong.append("file save")
    return wrong


def tally(results):
    hung = sum(1 for r in results if r == -signal.SIGALRM)
    failed = sum(1 for r in results if r not in (0, -signal.SIGALRM))
    return hung, failed


@pytest.fixture(autouse=True)
def quiet_fork_warning():
    # Python 3.12+ warns that forking a multi-threaded process may deadlock
    # the child: that is what these tests check does not happen.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def test_os_fork_children_of_a_busy_parent_all_finish(world):
    results = []
    for n in range(CHILDREN):
        pid = os.fork()
        if pid == 0:
            try:
                wrong = child_work(world, n)
            except BaseException:
                wrong = ["exception"]
            os._exit(1 if wrong else 0)
        _, status = os.waitpid(pid, 0)
        results.append(os.waitstatus_to_exitcode(status))
    assert tally(results) == (0, 0), results


def _mp_child(w, n):
    wrong = child_work(w, n)
    raise SystemExit(1 if wrong else 0)


def test_multiprocessing_fork_children_of_a_busy_parent_all_finish(world):
    ctx = multiprocessing.get_context("fork")
    results = []
    for n in range(CHILDREN // 2):
        p = ctx.Process(target=_mp_child, args=(world, n))
        p.start()
        p.join(30)
        if p.exitcode is None:
            p.kill()
            p.join()
            results.append(-signal.SIGALRM)
        else:
            results.append(p.exitcode)
    assert tally(results) == (0, 0), results
