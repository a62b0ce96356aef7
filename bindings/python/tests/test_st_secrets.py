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
    assert [p["name"] for p in manager.providers()] == ["env", "file", "aws", "vault"]
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
