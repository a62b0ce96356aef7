"""The package's top-level API (the library's own SecretsManager, Store and
functions) and SimpleTuner's documented examples, run as written."""

import asyncio
import json
import os
import stat
import threading
import time

import pytest

import st_secrets
from st_secrets import (
    SecretsManager,
    TTLCache,
    cached,
    decrypt_credential,
    encrypt_credential,
    get_provider_config_cache,
    get_secrets_manager,
    get_user_permission_cache,
    invalidate_provider_cache,
    invalidate_user_cache,
)


# ---- SimpleTuner's documented examples, as written -------------------------

def test_seed_ttlcache_example():
    cache = TTLCache[str](default_ttl=60)
    cache.set("key", "value")
    value = cache.get("key")  # Returns "value" or None if expired
    assert value == "value"


def test_seed_cached_examples():
    calls = []

    @cached(ttl=120)
    def get_user(user_id: int) -> dict:
        calls.append(user_id)
        return {"id": user_id}

    @cached(ttl=60)
    async def fetch_data() -> dict:
        calls.append("fetch")
        return {"data": 1}

    assert get_user(7) == {"id": 7} and get_user(7) == {"id": 7}
    assert asyncio.run(fetch_data()) == {"data": 1}
    assert asyncio.run(fetch_data()) == {"data": 1}
    assert calls == [7, "fetch"]
    assert isinstance(get_user._cache, TTLCache) and isinstance(fetch_data._cache, TTLCache)


def test_cached_key_format():
    @cached(ttl=60, key_prefix="mymodule")
    def get_user(user_id, verbose=False):
        return {"id": user_id}

    get_user(123)
    get_user(5, verbose=True)
    assert get_user._cache.get("mymodule:get_user:123") == {"id": 123}
    assert get_user._cache.get("mymodule:get_user:5:verbose=True") == {"id": 5}


def test_process_wide_caches_and_invalidation():
    p, u = get_provider_config_cache(), get_user_permission_cache()
    assert p is get_provider_config_cache()
    assert (p.stats()["default_ttl"], p.stats()["max_size"]) == (300.0, 100)
    assert (u.stats()["default_ttl"], u.stats()["max_size"]) == (60.0, 500)
    p.set("provider:replicate:config", {"a": 1})
    p.set("provider:replicate:hardware", {"b": 2})
    p.set("provider:other:config", {"c": 3})
    invalidate_provider_cache("replicate")
    assert p.get("provider:replicate:config") is None
    assert p.get("provider:other:config") == {"c": 3}
    u.set("user:42:perms", ["admin"])
    invalidate_user_cache(42)
    assert u.get("user:42:perms") is None


# ---- TTLCache ---------------------------------------------------------------

def test_values_of_any_type_are_the_objects_stored():
    c = TTLCache()
    for key, value in [("b", b"\x00raw\x00"), ("s", "ünïcode"), ("d", {"x": [1, 2]}), ("t", (1, "a")), ("n", 42)]:
        c.set(key, value)
        assert c.get(key) is value
    assert c.get("missing") is None
    lock = threading.Lock()  # not picklable
    c.set("lock", lock)
    assert c.get("lock") is lock
    shared = {"mutable": 1}
    c.set("shared", shared)
    c.get("shared")["mutable"] = 2  # the very object, as SimpleTuner's cache
    assert shared["mutable"] == 2


def test_ttl_expiry_and_counters():
    c = TTLCache(default_ttl=300.0, max_size=2, cleanup_interval=60.0)
    c.set("short", "v", ttl=0.05)
    c.set("zero", "v", ttl=0)
    assert c.get("zero") is None
    time.sleep(0.1)
    assert c.get("short") is None
    c.set("a", 1)
    c.set("b", 2)
    c.get("a")
    c.set("c", 3)  # evicts b, the least recently used
    assert c.get("b") is None and c.get("a") == 1
    s = c.stats()
    assert set(s) >= {"size", "max_size", "expired_count", "default_ttl", "hits", "misses", "evictions"}
    assert s["evictions"] == 1 and s["hits"] >= 2 and s["misses"] >= 3
    assert c.delete("a") is True and c.delete("a") is False
    assert c.invalidate_prefix("c") == 1 and c.clear() == 0


def test_get_or_set_single_flight_and_failures():
    c = TTLCache()
    calls = []
    barrier = threading.Barrier(6)

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return ["computed"]

    results = []

    def worker():
        barrier.wait()
        results.append(c.get_or_set("k", slow))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [["computed"]] * 6 and len(calls) == 1
    assert all(r is results[0] for r in results)  # one object, given to every thread

    class Boom(Exception):
        pass

    def failing():
        raise Boom("factory failed")

    with pytest.raises(Boom):
        c.get_or_set("bad", failing)
    assert c.get("bad") is None  # nothing cached


def test_get_or_set_async():
    c = TTLCache()

    async def factory():
        return {"async": True}

    assert asyncio.run(c.get_or_set_async("a", factory)) == {"async": True}
    assert c.get("a") == {"async": True}


# ---- SecretsManager ------------------------------------------------------------

@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.delenv("PYTEST_HF_TOKEN", raising=False)
    return SecretsManager(config={"file_path": str(tmp_path / "secrets.json"), "env_prefix": "PYTEST"})


def test_manager_api(manager, tmp_path, monkeypatch):
    assert manager.get("HF_TOKEN") is None
    assert manager.get("HF_TOKEN", "fallback") == "fallback"
    assert manager.set_secret("HF_TOKEN", "hf_from_file") is True
    assert manager.get_hf_token() == "hf_from_file"
    assert manager.set_replicate_token("r8_x") is True
    assert manager.get_replicate_token() == "r8_x"
    assert stat.S_IMODE(os.stat(tmp_path / "secrets.json").st_mode) == 0o600
    monkeypatch.setenv("PYTEST_HF_TOKEN", "hf_from_env")
    assert manager.get("hf-token") == "hf_from_env"  # environment wins, live
    assert manager.get_with_source("HF_TOKEN") == ("hf_from_env", "env")
    assert manager.delete_secret("HF_TOKEN") is True
    assert manager.delete_secret("HF_TOKEN") is True  # already gone, as SimpleTuner
    monkeypatch.delenv("PYTEST_HF_TOKEN")
    assert manager.get_hf_token() is None
    manager.clear_cache()
    assert [p["name"] for p in manager.providers()] == ["env", "mounted", "file", "aws", "gcp", "azure", "vault"]
    assert "hf_" not in repr(manager)


def test_manager_errors_carry_code_and_message(tmp_path):
    bad = tmp_path / "secrets.json"
    bad.write_text('{"HF_TOKEN": "hf_SECRET_VALUE", oops}')
    m = SecretsManager(config={"file_path": str(bad)})
    with pytest.raises(st_secrets.ParseError) as info:
        m.get("HF_TOKEN")
    assert info.value.code == 201 and info.value.code_name == "ST_PARSE"
    assert "SECRET_VALUE" not in str(info.value) and "SECRET_VALUE" not in repr(info.value)
    assert m.set_secret("K", "v") is False  # the malformed file is not overwritten
    with pytest.raises(st_secrets.InvalidArgumentError) as info:
        SecretsManager(config={"no_such_key": 1})
    assert "'no_such_key'" in str(info.value)
    assert isinstance(info.value, st_secrets.StSecretsError)


def test_versions_refresh_and_change_events(manager, tmp_path):
    path = tmp_path / "secrets.json"
    assert manager.set_secret("HF_TOKEN", "one") is True
    assert manager.get_with_version("HF_TOKEN") == {
        "value": "one", "provider": "file", "version": None, "stages": []}
    assert manager.get_with_version("MISSING_KEY") is None
    assert manager.refresh("HF_TOKEN")["changed"] is False
    told, lock = [], threading.Lock()

    def listener(change):
        with lock:
            told.append(change)

    listener_id = manager.on_change(listener)
    path.write_text('{"HF_TOKEN": "two"}')
    refreshed = manager.refresh("HF_TOKEN")
    assert (refreshed["value"], refreshed["changed"]) == ("two", True)
    assert manager.get("HF_TOKEN") == "two"
    assert told == [{"key": "HF_TOKEN", "provider": "file", "version": None,
                     "stages": [], "removed": False}]
    # A failure reported: the file has no versions, so it is read again as
    # a refresh (stand-ins: the Rust suites against moto and OpenBao).
    assert manager.report_failure("HF_TOKEN") == {
        "value": "two", "provider": "file", "version": None, "stages": [], "changed": False}
    assert manager.report_failure("MISSING_KEY", "3") is None
    with pytest.raises(st_secrets.StSecretsError):
        manager.report_failure("HF_TOKEN", "")
    # Rewritten again, no get: the library's watch thread tells it.
    path.write_text('{"HF_TOKEN": "three"}')
    for _ in range(600):
        with lock:
            if len(told) == 2:
                break
        time.sleep(0.05)
    assert len(told) == 2 and told[1]["key"] == "HF_TOKEN"
    assert manager.remove_listener(listener_id) is True
    assert manager.remove_listener(listener_id) is False
    manager.set_secret("HF_TOKEN", "four")
    assert len(told) == 2
    with pytest.raises(TypeError):
        manager.on_change("not callable")


def test_default_manager_is_shared():
    assert get_secrets_manager() is get_secrets_manager()


# ---- Credential encryption ----------------------------------------------------

def test_encrypt_decrypt_credential(monkeypatch):
    monkeypatch.setenv("SIMPLETUNER_CREDENTIAL_KEY", "python-binding-test-key")
    st_secrets.reset_cipher()
    token = encrypt_credential("r8_secret")
    assert token.startswith("Z0FBQUFB")
    assert decrypt_credential(token) == "r8_secret"
    with pytest.raises(ValueError) as info:
        decrypt_credential(token[:-8] + "AAAAAAAA")
    assert "r8_secret" not in str(info.value)
    with pytest.raises(ValueError):
        decrypt_credential("")
    st_secrets.reset_cipher()


# ---- Store ------------------------------------------------------------------------

def test_store_and_hardware(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMPLETUNER_CREDENTIAL_KEY", "python-binding-test-key")
    st_secrets.reset_cipher()
    store = st_secrets.Store(tmp_path / "jobs.db")
    assert store.get_provider_config("replicate") == {}
    store.save_provider_config("replicate", {"webhook_url": "u", "a": 1})
    assert store.update_provider_config("replicate", {"a": None, "b": 2}) == {"webhook_url": "u", "b": 2}
    assert store.get_provider_config("replicate") == {"webhook_url": "u", "b": 2}
    store.set_credential("replicate", "api_token", "r8_tok")
    assert store.get_credential("replicate", "api_token") == "r8_tok"
    assert store.get_credential("replicate", "nope") is None
    assert store.delete_credential("replicate", "api_token") is True
    assert store.verify_audit() == {"entries": 5}
    assert [e["action"] for e in store.audit_entries(2)] == ["credential.delete", "credential.use"]
    with pytest.raises(st_secrets.InvalidArgumentError):
        store.save_provider_config("replicate", [1, 2])
    st_secrets.clear_hardware_info_cache()
    assert st_secrets.get_hardware_info()["gpu-l40s"]["cost_per_second"] == 0.000975
    assert st_secrets.get_hourly_cost() == pytest.approx(3.51)
    st_secrets.set_hardware_info({"gpu-x": {"name": "X", "cost_per_second": 0.01}})
    assert st_secrets.get_hourly_cost("gpu-x") == pytest.approx(36.0)
    st_secrets.clear_hardware_info_cache()
    st_secrets.reset_cipher()


def test_references_resolve_down_the_chain_and_can_be_turned_off(manager, tmp_path, monkeypatch):
    assert manager.set_secret("hf-token", "hf_behind_a_reference") is True
    monkeypatch.setenv("PYTEST_HF_TOKEN", "st://hf-token")
    assert manager.get_with_source("HF_TOKEN") == ("hf_behind_a_reference", "file")
    monkeypatch.setenv("PYTEST_OTHER", "st://nowhere")
    with pytest.raises(st_secrets.InvalidArgumentError) as e:
        manager.get("OTHER")
    assert "'OTHER' in provider 'env' is the reference st://nowhere" in str(e.value)
    off = SecretsManager(config={"file_path": str(tmp_path / "secrets.json"), "env_prefix": "PYTEST",
                                 "references": False})
    assert off.get("HF_TOKEN") == "st://hf-token"


# ---- Forks and exits (round 4 of hardening) -----------------------------------

def _run_script(tmp_path, script, timeout=120):
    import subprocess
    import sys
    env = dict(os.environ, HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-c", script], env=env, timeout=timeout,
                          capture_output=True, text=True)


def test_a_child_forked_while_another_thread_prints_can_print(tmp_path):
    # Item 5: after redact.install(), a child forked while another thread
    # was printing hung on its first print (10 of 10).
    script = r'''
import os, sys, threading, time
from st_secrets import redact
redact.install(held=False)
stop = threading.Event()
def chatter():
    while not stop.is_set():
        print("x" * 200)
threading.Thread(target=chatter, daemon=True).start()
pids = []
for _ in range(10):
    time.sleep(0.01)
    pid = os.fork()
    if pid == 0:
        print("child prints")
        sys.stdout.flush()
        os._exit(0)
    pids.append(pid)
deadline = time.time() + 30
left = set(pids)
while left and time.time() < deadline:
    for pid in list(left):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            left.discard(pid)
            assert os.waitstatus_to_exitcode(status) == 0, status
    time.sleep(0.01)
stop.set()
for pid in left:
    os.kill(pid, 9)
sys.stderr.write("hung: %d\n" % len(left))
os._exit(1 if left else 0)
'''
    r = _run_script(tmp_path, script)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "hung: 0" in r.stderr


def test_the_interpreter_exits_while_a_change_listener_runs(tmp_path):
    # Item 6: exiting while a listener ran on the library's thread aborted
    # the process (SIGABRT, exit 134) in 10 of 10 runs.
    path = tmp_path / "secrets.json"
    path.write_text('{"HF_TOKEN": "one"}')
    os.chmod(path, 0o600)
    script = r'''
import sys, threading, time
from st_secrets import SecretsManager
m = SecretsManager(config={"file_path": sys.argv[1] if len(sys.argv) > 1 else %r})
assert m.get("HF_TOKEN") == "one"
started = threading.Event()
def listener(change):
    started.set()
    t = time.time()
    while time.time() - t < 0.3:  # holding the GIL when the exit begins
        pass
    time.sleep(0.3)
m.on_change(listener)
with open(%r, "w") as f:
    f.write('{"HF_TOKEN": "two"}')
assert started.wait(30), "no change told"
''' % (str(path), str(path))
    for _ in range(3):
        path.write_text('{"HF_TOKEN": "one"}')
        r = _run_script(tmp_path, script)
        assert r.returncode == 0, (r.returncode, r.stderr[-2000:])


def test_provenance_records_versions_and_fingerprints_never_values(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text('{"HF_TOKEN": "hf_py_provenance"}')
    recorded = SecretsManager(config={"file_path": str(path), "providers": ["file"], "provenance": True})
    assert recorded.get("hf-token") == "hf_py_provenance"
    [used] = recorded.provenance()
    assert (used["key"], used["provider"], used["version"]) == ("hf-token", "file", None)
    assert used["fingerprint"].startswith("hmac-sha256:")
    assert "hf_py_provenance" not in str(used)
    assert SecretsManager(config={"file_path": str(path), "providers": ["file"]}).provenance() is None
    assert isinstance(recorded.metrics(), dict)
