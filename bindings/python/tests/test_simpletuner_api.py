"""SimpleTuner-style code paths through the module layout a SimpleTuner user
switches to (st_secrets.secrets, .cache, .credential_encryption,
.replicate_client, .provider_config_store), written from SimpleTuner's
modules (at commit bc8e6ab, docs/python.md), module by module."""

import asyncio
import base64
import gc
import json
import logging
import os
import sqlite3
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

import st_secrets
from st_secrets import cache as cache_mod
from st_secrets import credential_encryption as ce
from st_secrets import provider_config_store as pcs
from st_secrets import replicate_client as rc
from st_secrets import secrets as sec


# ---- the module layout -------------------------------------------------------------

@pytest.mark.parametrize(
    "module, names",
    [
        (sec, {"SecretProvider", "EnvironmentSecretProvider", "FileSecretProvider", "AWSSecretsManagerProvider",
               "HashiCorpVaultProvider", "SecretsManager", "get_secrets_manager"}),
        (cache_mod, {"CacheEntry", "TTLCache", "cached", "get_provider_config_cache", "get_user_permission_cache",
                     "invalidate_provider_cache", "invalidate_user_cache"}),
        (ce, {"encrypt_credential", "decrypt_credential", "reset_cipher"}),
        (rc, {"DEFAULT_HARDWARE_INFO", "get_hardware_info_async", "update_hardware_info_cache",
              "clear_hardware_info_cache", "get_default_hardware_cost_per_hour"}),
        (pcs, {"ProviderConfigStore", "get_provider_config_store"}),
    ],
)
def test_star_import_gives_simpletuners_names(module, names):
    namespace = {}
    exec(f"from {module.__name__} import *", namespace)
    assert names <= set(namespace), names - set(namespace)


def test_the_top_level_namespace_keeps_its_names():
    for name in ["VERSION", "StSecretsError", "SecretsManager", "get_secrets_manager", "reset_secrets_manager",
                 "TTLCache", "cached", "get_provider_config_cache", "get_user_permission_cache",
                 "invalidate_provider_cache", "invalidate_user_cache", "encrypt_credential", "decrypt_credential",
                 "reencrypt_credential", "reset_cipher", "Store", "get_hardware_info", "set_hardware_info",
                 "clear_hardware_info_cache", "get_hourly_cost", "NotFoundError", "ParseError", "AuthError"]:
        assert hasattr(st_secrets, name), name
    assert issubclass(st_secrets.ParseError, st_secrets.StSecretsError)


# ---- §6 SecretsManager ---------------------------------------------------------------

def test_singleton_ignores_later_arguments_and_reset_rebuilds(private_home, tmp_path):
    first = sec.SecretsManager(config={"file_path": str(tmp_path / "a.json")})
    assert sec.SecretsManager(config={"file_path": str(tmp_path / "b.json")}) is first
    assert sec.get_secrets_manager() is first
    assert first.get_secrets_file_path() == tmp_path / "a.json"
    sec.SecretsManager.reset()
    assert sec.SecretsManager() is not first
    assert sec.SecretsManager().get_secrets_file_path() == private_home / ".simpletuner" / "secrets.json"


def test_reset_outside_tests_raises():
    saved = {name: sys.modules.pop(name) for name in ("pytest", "unittest") if name in sys.modules}
    try:
        with pytest.raises(RuntimeError, match="only allowed in test environments"):
            sec.SecretsManager.reset()
    finally:
        sys.modules.update(saved)


def test_constants_and_token_getters(monkeypatch):
    m = sec.SecretsManager()
    assert (m.REPLICATE_API_TOKEN, m.HF_TOKEN, m.WEBHOOK_SECRET) == (
        "REPLICATE_API_TOKEN", "HF_TOKEN", "CLOUD_WEBHOOK_SECRET")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env")
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    monkeypatch.setenv("CLOUD_WEBHOOK_SECRET", "whsec")
    assert (m.get_replicate_token(), m.get_hf_token(), m.get_webhook_secret()) == ("r8_env", "hf_env", "whsec")


def test_get_defaults_normalisation_and_live_environment(monkeypatch):
    m = sec.get_secrets_manager()
    assert m.get("ST_PY_ABSENT") is None
    assert m.get("ST_PY_ABSENT", "d1") == "d1" and m.get("ST_PY_ABSENT", "d2") == "d2"
    monkeypatch.setenv("ST_PY_TOKEN", "one")
    assert m.get("st-py.token") == "one"  # upper-cased, '-' and '.' as '_'
    monkeypatch.setenv("ST_PY_TOKEN", "two")
    assert m.get("st-py.token") == "two"  # read live (SimpleTuner: the first answer, forever)
    monkeypatch.setenv("ST_PY_TOKEN", "")
    assert m.get("ST_PY_TOKEN", "d") == "d"  # empty counts as unset
    monkeypatch.delenv("ST_PY_TOKEN")
    assert m.get("ST_PY_TOKEN") is None


def test_save_get_delete_through_the_secrets_file(private_home, monkeypatch):
    m = sec.SecretsManager()
    path = private_home / ".simpletuner" / "secrets.json"
    assert m.delete_secret("HF_TOKEN") is False  # no secrets file
    assert m.set_replicate_token("r8_saved") is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"REPLICATE_API_TOKEN": "r8_saved"}
    assert m.get_replicate_token() == "r8_saved"
    assert m.get_secrets_file_path() == path
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env")
    assert m.get_replicate_token() == "r8_env"  # the environment wins, also right after a save
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    # Another process edits the file: the next get sees it (no clear_cache needed).
    path.write_text(json.dumps({"REPLICATE_API_TOKEN": "r8_edited", "HF_TOKEN": "hf_file"}))
    time.sleep(1.2)  # past the metadata check interval and the racy window
    assert m.get_replicate_token() == "r8_edited" and m.get_hf_token() == "hf_file"
    assert m.delete_secret("HF_TOKEN") is True
    assert m.get_hf_token() is None
    assert m.delete_secret("HF_TOKEN") is True  # the file exists; the key was not in it
    m.clear_cache()
    assert m.get_replicate_token() == "r8_edited"
    # SimpleTuner's notification routes call secrets.set(key, value).
    assert m.set(m.WEBHOOK_SECRET, "whsec_saved") is True
    assert m.get_webhook_secret() == "whsec_saved"
    assert json.loads(path.read_text())["CLOUD_WEBHOOK_SECRET"] == "whsec_saved"


def test_yaml_secrets_file_and_the_troubleshooting_loop(private_home, capsys):
    d = private_home / ".simpletuner"
    d.mkdir()
    (d / "secrets.yaml").write_text("HF_TOKEN: hf_yaml\nPORT: 5\n")
    os.chmod(d / "secrets.yaml", 0o600)
    m = sec.SecretsManager()
    assert m.get("HF_TOKEN") == "hf_yaml"
    assert m.get("PORT") == "5"  # scalars come back as text
    # The doc's troubleshooting loop, as written.
    for provider in m._providers:
        print(f"{provider.__class__.__name__}: available={provider.is_available()}")
    out = capsys.readouterr().out
    assert "EnvironmentSecretProvider: available=True" in out
    assert "FileSecretProvider: available=True" in out
    assert "AWSSecretsManagerProvider: available=False" in out
    assert "HashiCorpVaultProvider: available=False" in out
    assert "hf_yaml" not in repr(m) and "hf_yaml" not in repr(m._providers)


def test_a_failing_provider_is_logged_not_raised(private_home, caplog):
    d = private_home / ".simpletuner"
    d.mkdir()
    (d / "secrets.json").write_text('{"HF_TOKEN": "hf_SECRET_VALUE", oops')
    m = sec.SecretsManager()
    with caplog.at_level(logging.WARNING, logger="st_secrets.secrets"):
        assert m.get("HF_TOKEN", "fallback") == "fallback"
    assert "HF_TOKEN" in caplog.text and "SECRET_VALUE" not in caplog.text
    assert m.set_secret("K", "v") is False  # the malformed file is not overwritten
    assert "hf_SECRET_VALUE" in (d / "secrets.json").read_text()


def test_custom_providers_run_as_simpletuner_runs_them(caplog):
    calls = []

    class Broken(sec.SecretProvider):
        def get_secret(self, key):
            raise ConnectionError("down")

        def is_available(self):
            return True

    class Off(sec.SecretProvider):
        def get_secret(self, key):
            raise AssertionError("an unavailable provider is never asked")

        def is_available(self):
            return False

    class Dict(sec.SecretProvider):
        def get_secret(self, key):
            calls.append(key)
            return {"A": "a", "ZERO": ""}.get(key)

        def is_available(self):
            return True

    m = sec.SecretsManager(providers=[Off(), Broken(), Dict()])
    with caplog.at_level(logging.WARNING):
        assert m.get("A") == "a"
    assert "Error retrieving secret 'A' from Broken: down" in caplog.text
    assert m.get("A") == "a" and calls == ["A"]  # answered from its cache
    assert m.get("ZERO") == ""  # "" is a value
    assert m.get("NONE", "d") == "d" and m.get("NONE") is None and calls.count("NONE") == 1
    assert m.delete_secret("A") is False  # no file provider in the list
    m.clear_cache()
    assert m.get("A") == "a" and calls.count("A") == 2
    with pytest.raises(RuntimeError, match="providers it was given"):
        m.providers()  # the library's chain is not in use


def test_a_nul_byte_in_a_key_or_value_is_refused_by_argument(private_home, caplog):
    # A C-string binding cut "user\0admin" at the NUL and saved "user": the
    # library refuses it; SimpleTuner's API reports a refused save as False.
    m = sec.SecretsManager()
    with caplog.at_level(logging.WARNING):
        assert m.set_secret("user\0admin", "v") is False
        assert m.set_secret("user", "a\0b") is False
    assert "'key'" in caplog.text and "'value'" in caplog.text and "NUL" in caplog.text
    assert not (private_home / ".simpletuner" / "secrets.json").exists()
    assert m.get("user") is None


def test_custom_chain_set_secret_adds_the_file_provider(private_home):
    m = sec.SecretsManager(providers=[sec.EnvironmentSecretProvider()])
    assert m.set_secret("HF_TOKEN", "hf_x") is True
    assert [type(p).__name__ for p in m._providers] == ["EnvironmentSecretProvider", "FileSecretProvider"]
    assert m.get("HF_TOKEN") == "hf_x"
    assert m.get_secrets_file_path() == private_home / ".simpletuner" / "secrets.json"
    assert m.delete_secret("HF_TOKEN") is True and m.get("HF_TOKEN") is None


# ---- §2-5 the provider classes ---------------------------------------------------------

def test_environment_provider_prefix_as_given(monkeypatch):
    p = sec.EnvironmentSecretProvider(prefix="SIMPLETUNER")
    monkeypatch.setenv("SIMPLETUNER_REPLICATE_API_TOKEN", "r8_prefixed")
    assert p.get_secret("replicate-api.token") == "r8_prefixed"
    assert p.get_secret("absent") is None and p.is_available() is True
    assert isinstance(p, sec.SecretProvider)


def test_file_provider(tmp_path):
    path = tmp_path / "s.json"
    p = sec.FileSecretProvider(file_path=str(path))
    assert p.is_available() is False and p.get_file_path() is None and p.get_secret("K") is None
    assert p.delete_secret("K") is False
    assert p.set_secret("K", "v") is True
    assert p.is_available() is True and p.get_file_path() == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert p.get_secret("K") == "v"
    assert p.delete_secret("ABSENT") is True and p.delete_secret("K") is True
    assert json.loads(path.read_text()) == {}
    with pytest.raises(TypeError):
        sec.FileSecretProvider(file_path=5)


def test_remote_providers_unconfigured_and_configured(monkeypatch):
    assert sec.AWSSecretsManagerProvider().is_available() is False
    assert sec.HashiCorpVaultProvider().is_available() is False
    aws = sec.AWSSecretsManagerProvider(secret_name="simpletuner/prod", region_name="us-east-1")
    assert aws.secret_name == "simpletuner/prod" and aws.region_name == "us-east-1"
    vault = sec.HashiCorpVaultProvider(url="http://127.0.0.1:1", token="t0ken", path="p", mount_point="kv")
    assert vault.is_available() is True and (vault.path, vault.mount_point) == ("p", "kv")
    assert "t0ken" not in repr(vault)
    # GCP Secret Manager: not in SimpleTuner; the same shape.
    monkeypatch.delenv("SIMPLETUNER_GCP_SECRET", raising=False)
    assert sec.GCPSecretManagerProvider().is_available() is False
    gcp = sec.GCPSecretManagerProvider(secret=["keys", "projects/p-1/secrets/s"], project="ml-prod")
    assert gcp.is_available() is True and gcp.project == "ml-prod"
    with pytest.raises(st_secrets.StSecretsError, match="gcp_secret"):
        sec.GCPSecretManagerProvider(secret="projects/only")
    # Azure Key Vault: the same shape.
    monkeypatch.delenv("SIMPLETUNER_AZURE_VAULT_URL", raising=False)
    monkeypatch.delenv("SIMPLETUNER_AZURE_SECRET", raising=False)
    assert sec.AzureKeyVaultProvider().is_available() is False
    kv = sec.AzureKeyVaultProvider(vault_url="https://ml.vault.azure.net", secret=["hf-token", "keys"])
    assert kv.is_available() is True and kv.vault_url == "https://ml.vault.azure.net"
    with pytest.raises(st_secrets.StSecretsError, match="azure_secret"):
        sec.AzureKeyVaultProvider(vault_url="https://ml.vault.azure.net", secret="hf_token")
    with pytest.raises(st_secrets.StSecretsError, match="azure_vault"):
        sec.AzureKeyVaultProvider(vault_url="http://ml.vault.azure.net", secret="k")
    assert vault.get_secret("K") is None  # nothing listens there: logged, None


# ---- §7 TTLCache ----------------------------------------------------------------------

def test_ttl_semantics():
    c = cache_mod.TTLCache(default_ttl=60, max_size=10)
    c.set("zero", 1, ttl=0)
    c.set("neg", 1, ttl=-5)
    assert c.get("zero") is None and c.get("neg") is None
    for falsy in (0, "", {}, []):
        c.set("f", falsy)
        assert c.get("f") == falsy  # falsy values are hits
    assert c.stats()["default_ttl"] == 60 and isinstance(c.stats()["default_ttl"], int)
    assert set(c.stats()) >= {"size", "max_size", "expired_count", "default_ttl"}
    tiny = cache_mod.TTLCache(max_size=0)  # as SimpleTuner: holds one entry
    tiny.set("a", 1)
    tiny.set("b", 2)
    assert tiny.get("b") == 2 and tiny.get("a") is None


def test_get_or_set_does_not_cache_none():
    c = cache_mod.TTLCache()
    calls = []

    def factory():
        calls.append(1)
        return None

    assert c.get_or_set("k", factory) is None and c.get_or_set("k", factory) is None
    assert len(calls) == 2 and c.get("k") is None
    assert c.get_or_set("z", lambda: 0) == 0 and c.get_or_set("z", lambda: 1) == 0


def test_get_or_set_reentry_and_exceptions():
    c = cache_mod.TTLCache()
    with pytest.raises(RuntimeError, match="re-entered"):
        c.get_or_set("k", lambda: c.get_or_set("k", lambda: 1))
    with pytest.raises(ZeroDivisionError):
        c.get_or_set("d", lambda: 1 / 0)
    assert c.get("d") is None


def test_get_or_set_async_coalesces_coroutines():
    c = cache_mod.TTLCache()
    calls = []

    async def factory():
        calls.append(1)
        await asyncio.sleep(0.05)
        return {"v": len(calls)}

    async def main():
        return await asyncio.gather(*[c.get_or_set_async("k", factory) for _ in range(5)])

    results = asyncio.run(main())
    assert len(calls) == 1 and all(r is results[0] for r in results)

    async def failing():
        calls.append(2)
        await asyncio.sleep(0.05)
        raise KeyError("nope")

    async def main_fail():
        return await asyncio.gather(*[c.get_or_set_async("bad", failing) for _ in range(3)],
                                    return_exceptions=True)

    outcomes = asyncio.run(main_fail())
    assert all(isinstance(o, KeyError) for o in outcomes) and calls.count(2) == 1


def test_a_value_whose_del_uses_the_cache_does_not_deadlock():
    c = cache_mod.TTLCache(max_size=1)
    seen = []

    class Reenters:
        def __del__(self):
            seen.append(c.get("other"))

    c.set("a", Reenters())
    gc.collect()
    c.set("other", "x")  # evicts the entry whose __del__ reads the cache
    assert seen == [None] or seen == ["x"]
    c.set("b", Reenters())
    c.clear()
    assert len(seen) == 2


def test_cache_entry_and_cached_decorator():
    e = cache_mod.CacheEntry(value="v", expires_at=time.time() + 60)
    assert not e.is_expired and 0 < e.ttl_remaining <= 60
    assert cache_mod.CacheEntry(value=1, expires_at=time.time()).is_expired
    calls = []

    @cache_mod.cached()
    def f(a, b=None):
        calls.append((a, b))
        return None if a == "none" else [a, b]

    f(1)
    f(1, b=3)
    assert f._cache.get(":f:1") == [1, None] and f._cache.get(":f:1:b=3") == [1, 3]
    f("none")
    f("none")
    assert calls.count(("none", None)) == 2  # None results are never served from the cache

    @cache_mod.cached(ttl=30, key_prefix="mymodule")
    async def get_user(user_id):
        return {"id": user_id}

    assert asyncio.run(get_user(123)) == {"id": 123}
    assert get_user._cache.get("mymodule:get_user:123") == {"id": 123}
    assert get_user.__name__ == "get_user"


def test_global_caches_and_invalidation_return_none():
    p = cache_mod.get_provider_config_cache()
    assert p is cache_mod.get_provider_config_cache()
    assert (p.stats()["default_ttl"], p.stats()["max_size"]) == (300.0, 100)
    p.set("provider:replicate:config", {"a": 1})
    assert cache_mod.invalidate_provider_cache("replicate") is None
    assert p.get("provider:replicate:config") is None
    u = cache_mod.get_user_permission_cache()
    u.set("user:alice:perms", ["admin"])
    assert cache_mod.invalidate_user_cache("alice") is None and u.get("user:alice:perms") is None


# ---- §10 credential encryption ------------------------------------------------------------

def test_key_derivation_vectors_and_messages(monkeypatch):
    assert ce._derive_key("testsecret") == b"DWixgjuI6Tq7JrIaCIyEqlobd9hmG-tRBSGtMtvXsuk="
    assert ce._derive_key("correct horse battery staple") == b"v-7DmBPSFnT0IQI5SLrUE2hx3QUjQpzLNqlTYA93m_Y="
    monkeypatch.setenv("SIMPLETUNER_CREDENTIAL_KEY", "one")
    ce.reset_cipher()
    token = ce.encrypt_credential("r8_secret_value")
    assert token.startswith("Z0FBQUFB") and len(token) == 136
    assert ce.decrypt_credential(token) == "r8_secret_value"
    monkeypatch.setenv("SIMPLETUNER_CREDENTIAL_KEY", "two")
    ce.reset_cipher()
    with pytest.raises(ValueError) as info:
        ce.decrypt_credential(token)
    assert str(info.value).startswith("Failed to decrypt credential: ")
    assert "r8_secret" not in str(info.value) and "two" not in str(info.value)
    with pytest.raises(TypeError, match="plaintext must be a str"):
        ce.encrypt_credential(5)


def test_ciphertexts_interoperate_with_cryptography(monkeypatch):
    from cryptography.fernet import Fernet

    monkeypatch.setenv("SIMPLETUNER_CREDENTIAL_KEY", "interop-secret")
    ce.reset_cipher()
    fernet = Fernet(ce._derive_key("interop-secret"))
    ours = ce.encrypt_credential("from st_secrets ✓")
    assert fernet.decrypt(base64.urlsafe_b64decode(ours)).decode() == "from st_secrets ✓"
    theirs = base64.urlsafe_b64encode(fernet.encrypt("from cryptography".encode())).decode()
    assert ce.decrypt_credential(theirs) == "from cryptography"


def test_a_generated_key_file_is_private(private_home):
    ce.reset_cipher()
    ce.decrypt_credential(ce.encrypt_credential("x"))
    key = private_home / ".simpletuner" / "credential.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) == 43


def test_key_derivation_releases_the_gil():
    counter = [0]
    done = threading.Event()

    def derive():
        for i in range(3):
            ce._derive_key(f"gil-{i}")
        done.set()

    t = threading.Thread(target=derive)
    t.start()
    while not done.is_set():
        counter[0] += 1
    t.join()
    assert counter[0] > 1000  # the main thread ran meanwhile


# ---- §8 hardware info -----------------------------------------------------------------------

def test_hardware_info_defaults_update_and_cost():
    assert rc.DEFAULT_HARDWARE_INFO["gpu-l40s"]["cost_per_second"] == 0.000975
    assert rc.DEFAULT_HARDWARE_INFO["gpu-a100-large"]["cost_per_second"] == 0.0014
    info = asyncio.run(rc.get_hardware_info_async())
    assert info == rc.DEFAULT_HARDWARE_INFO and info is not rc.DEFAULT_HARDWARE_INFO
    assert asyncio.run(rc.get_default_hardware_cost_per_hour()) == pytest.approx(3.51)
    rc.update_hardware_info_cache({"gpu-l40s": {"name": "L40S", "cost_per_second": 0.001}})
    assert asyncio.run(rc.get_default_hardware_cost_per_hour()) == pytest.approx(3.6)
    with pytest.raises(st_secrets.InvalidArgumentError):
        rc.update_hardware_info_cache({"gpu-x": {"name": "X"}})
    with pytest.raises(st_secrets.InvalidArgumentError):
        rc.update_hardware_info_cache({"gpu-x": {"cost_per_second": -1}})
    rc.clear_hardware_info_cache()
    assert asyncio.run(rc.get_hardware_info_async()) == rc.DEFAULT_HARDWARE_INFO


def test_hardware_info_from_a_simpletuner_style_store():
    class AsyncJobStoreLike:
        async def get_provider_config(self, provider):
            assert provider == "replicate"
            return {"hardware_info": {"gpu-h100": {"name": "H100 (80GB)", "cost_per_second": 0.001525}}}

    info = asyncio.run(rc.get_hardware_info_async(AsyncJobStoreLike()))
    assert info == {"gpu-h100": {"name": "H100 (80GB)", "cost_per_second": 0.001525}}
    # Cached: a later call without a store gets the same prices.
    assert asyncio.run(rc.get_hardware_info_async()) == info


def test_hardware_info_from_the_provider_config_store(tmp_path):
    store = pcs.ProviderConfigStore(tmp_path / "jobs.db")
    asyncio.run(store.save("replicate", {"hardware_info": {"gpu-l40s": {"name": "L", "cost_per_second": 0.002}}}))
    assert asyncio.run(rc.get_default_hardware_cost_per_hour(store)) == pytest.approx(7.2)


# ---- §9 provider config store -----------------------------------------------------------------

def test_provider_config_store(tmp_path):
    db = tmp_path / "cloud" / "jobs.db"
    store = pcs.ProviderConfigStore(db)
    assert pcs.ProviderConfigStore(db) is store and pcs.get_provider_config_store() is store

    async def scenario():
        assert await store.get("replicate") == {}
        await store.save("replicate", {"webhook_url": "https://hook", "hardware_info": {"gpu-l40s": {
            "name": "L40S", "cost_per_second": 0.000975}}})
        await store.save("zeta", {})
        new = await store.update("replicate", {"hardware_info": {"gpu-h100": {"name": "H", "cost_per_second": 0.0015}}})
        assert new["hardware_info"] == {"gpu-h100": {"name": "H", "cost_per_second": 0.0015}}  # shallow: replaced
        assert await store.list_providers() == ["replicate", "zeta"]
        assert await store.get_webhook_config("replicate") == {
            "webhook_url": "https://hook", "webhook_secret": None,
            "webhook_require_signature": True, "webhook_allowed_ips": []}
        assert await store.get_cost_limit_config("replicate") == {
            "enabled": False, "amount": 0.0, "period": "daily", "action": "warn"}
        assert (await store.get_hardware_info("replicate"))["gpu-h100"]["cost_per_second"] == 0.0015
        assert await store.delete("zeta") is True and await store.delete("zeta") is False

    asyncio.run(scenario())
    assert store.get_sync("replicate")["webhook_url"] == "https://hook"
    # SimpleTuner's table, readable by SimpleTuner's own code.
    row = sqlite3.connect(db).execute(
        "SELECT config, updated_at FROM provider_config WHERE provider = 'replicate'").fetchone()
    assert json.loads(row[0])["webhook_url"] == "https://hook" and row[1].endswith("+00:00")
    # Every change is in the audit trail, which verifies.
    audit = st_secrets.Store(db)
    assert [e["action"] for e in audit.audit_entries(10)][:2] == ["config.delete", "config.update"]
    assert audit.verify_audit()["entries"] == 4


# ---- bad input, secrets kept out of messages ------------------------------------------------------

def test_wrong_types_raise_type_and_value_errors_naming_the_argument():
    with pytest.raises(TypeError, match="default_ttl"):
        cache_mod.TTLCache(default_ttl="soon")
    with pytest.raises(ValueError, match="max_size"):
        cache_mod.TTLCache(max_size=-1)
    with pytest.raises(ValueError, match="ttl"):
        cache_mod.TTLCache().set("k", 1, ttl=float("nan"))
    with pytest.raises(TypeError, match="key"):
        cache_mod.TTLCache().get(123)
    with pytest.raises(TypeError, match="key"):
        sec.SecretsManager().get(123)
    with pytest.raises(TypeError, match="value"):
        sec.SecretsManager().set_secret("K", 5)
    with pytest.raises(TypeError, match="ciphertext"):
        ce.decrypt_credential(b"bytes")
    sec.SecretsManager.reset()
    with pytest.raises(st_secrets.InvalidArgumentError, match="'bogus'"):
        sec.SecretsManager(config={"bogus": 1})
    sec.SecretsManager.reset()
    with pytest.raises(st_secrets.InvalidArgumentError):
        st_secrets.Store().save_provider_config("", {})


def test_no_secret_in_exceptions_or_reprs(tmp_path, monkeypatch):
    bad = tmp_path / "secrets.json"
    bad.write_text('{"HF_TOKEN": "hf_SECRET_VALUE", oops}')
    m = st_secrets.SecretsManager(config={"file_path": str(bad)})
    with pytest.raises(st_secrets.ParseError) as info:
        m.get("HF_TOKEN")
    assert info.value.code == 201 and info.value.code_name == "ST_PARSE"
    assert "SECRET_VALUE" not in str(info.value) and "SECRET_VALUE" not in repr(info.value)
    monkeypatch.setenv("HF_TOKEN", "hf_ENV_SECRET")
    assert "hf_ENV_SECRET" not in repr(sec.SecretsManager()) + repr(sec.SecretsManager()._providers)


# ---- the command-line tool from the package ---------------------------------------------------------

def test_the_console_script_and_module_run_the_tool(tmp_path):
    import subprocess

    exe = Path(sys.executable).parent / "st-secrets"
    out = subprocess.run([str(exe), "version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"st-secrets {st_secrets.VERSION}"
    path = tmp_path / "s.json"
    env = dict(os.environ, SIMPLETUNER_SECRETS_FILE=str(path))
    subprocess.run([sys.executable, "-m", "st_secrets", "set", "K"], input="v\n", text=True, env=env, check=True)
    got = subprocess.run([str(exe), "get", "K"], capture_output=True, text=True, env=env)
    assert (got.returncode, got.stdout) == (0, "v")
    missing = subprocess.run([str(exe), "get", "NOPE"], capture_output=True, text=True, env=env)
    assert missing.returncode == 1


def test_the_library_never_prints_to_stderr(tmp_path):
    import subprocess

    bad = tmp_path / "secrets.json"
    bad.write_text("{oops")
    code = f"""
from st_secrets.secrets import SecretsManager
m = SecretsManager(config={{"file_path": {str(bad)!r}}})
assert m.get("HF_TOKEN", "d") == "d"
assert m.set_secret("K", "v") is False
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_one_exception_class_per_library_result_code():
    from st_secrets import _errors, _native

    codes = {number: name for number, name, _ in _native.result_codes()}
    assert {c.code: c.code_name for c in _errors.ERRORS.values()} == codes
    # Each class is the library's code, documented by the library.
    for number, name, description in _native.result_codes():
        cls = _errors.ERRORS[number]
        assert cls.__name__ == _errors.class_name(name) and cls.__doc__ == f"{name}: {description}"
    assert st_secrets.NotFoundError.code_name == "ST_NOT_FOUND" and st_secrets.IoError.code == 200
    for cls in _errors.ERRORS.values():
        assert getattr(st_secrets, cls.__name__) is cls
    namespace = {}
    exec("from st_secrets import *", namespace)
    assert namespace.get("KeyError", KeyError) is KeyError  # builtins are not shadowed
    assert namespace["NotFoundError"] is st_secrets.NotFoundError


def test_a_dropped_cache_releases_its_objects():
    import weakref

    class Value:
        pass

    c = cache_mod.TTLCache()
    v = Value()
    ref = weakref.ref(v)
    c.set("k", v)
    del v
    assert ref() is not None  # held by the cache
    del c
    gc.collect()
    assert ref() is None


def test_the_console_script_runs_commands_and_exports_for_dotenv(tmp_path):
    import io
    import subprocess

    from dotenv import dotenv_values

    exe = Path(sys.executable).parent / "st-secrets"
    tricky = "it's \"quoted\" `id` \\ back\\slash\nsecond line ü"
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"HF_TOKEN": "hf_console_SECRET_42", "TRICKY": tricky}))
    path.chmod(0o600)
    env = dict(os.environ, SIMPLETUNER_SECRETS_FILE=str(path))

    # `run` from the wheel: secrets in the command's environment, masked in its output.
    script = 'printf "%s|%s" "$HF_TOKEN" "${#TRICKY}"; exit 5'
    ran = subprocess.run([str(exe), "run", "--", "sh", "-c", script], capture_output=True, text=True, env=env)
    assert (ran.returncode, ran.stdout) == (5, "<concealed by st-secrets>|%d" % len(tricky.encode()))

    # `env --format dotenv` read back by python-dotenv: the same values.
    out = subprocess.run([str(exe), "env", "--format", "dotenv"], capture_output=True, text=True, env=env, check=True)
    assert dotenv_values(stream=io.StringIO(out.stdout)) == {"HF_TOKEN": "hf_console_SECRET_42", "TRICKY": tricky}
    # python-dotenv expands ${VAR} in any quoting and has no escape for it:
    # such a value is refused by name, and nothing is written.
    path.write_text(json.dumps({"BRACED": "a${HOME}b"}))
    out = subprocess.run([str(exe), "env", "--format", "dotenv"], capture_output=True, text=True, env=env)
    assert (out.returncode, out.stdout) == (3, "")
    assert "BRACED" in out.stderr and "${" in out.stderr and "a${HOME}b" not in out.stderr


READER_VALUES = [
    "plain_value_123", "  leading and trailing spaces  ", "hash # not a comment #x", "equals=in=value",
    "single ' double \" back ` dollar $HOME and ${HOME} \\ \\\\ \\n", "ünïcödé € 漢字 😂 \t tab", "",
    "two\nlines", "ends with newline\n", "crlf\r\nline", "'quoted at both ends'", '"double at both ends"',
]


def dotenv_sweep():
    """Every byte 0x01-0x7f but the carriage return (alone, inside, last) and
    a few multi-byte characters: the same values as the tool's dotenvy test."""
    values = []
    for c in (chr(b) for b in range(1, 0x80) if b != 0x0D):
        values += [c, "a%sb" % c, "x%s" % c]
    return values + ["ü", "€ 漢字", "😂\n😂", "", " ", "#", "a\\", "'", '"']


def test_env_dotenv_output_round_trips_through_python_dotenv(tmp_path):
    """`env --format dotenv` written to a file and read back as users do
    (load_dotenv/dotenv_values on the path: Python's text mode, python-dotenv's
    default interpolation): every value the same, byte for byte; a value no
    dotenv form carries is refused by name and nothing is written."""
    import subprocess

    from dotenv import dotenv_values

    exe = Path(sys.executable).parent / "st-secrets"
    path = tmp_path / "s.json"
    for corpus in (dotenv_sweep(), [v for v in READER_VALUES if "\r" not in v and "${" not in v]):
        values = {f"V{i:03}": v for i, v in enumerate(corpus)}
        path.write_text(json.dumps(values))
        os.chmod(path, 0o600)
        env = dict(os.environ, SIMPLETUNER_SECRETS_FILE=str(path))
        out = subprocess.run([str(exe), "env", "--format", "dotenv"], capture_output=True, env=env, check=True)
        dotenv_file = tmp_path / ".env"
        dotenv_file.write_bytes(out.stdout)
        assert dotenv_values(dotenv_file) == values
    for value, why in (("crlf\r\nline", "carriage return"), ("a${HOME}b", "expands"), ("it's $5", "'$'")):
        path.write_text(json.dumps({"OK": "fine", "BAD": value}))
        env = dict(os.environ, SIMPLETUNER_SECRETS_FILE=str(path))
        out = subprocess.run([str(exe), "env", "--format", "dotenv"], capture_output=True, text=True, env=env)
        assert (out.returncode, out.stdout) == (3, "")
        assert "BAD" in out.stderr and why in out.stderr and value not in out.stderr


# ---- §9 the singleton protocol SimpleTuner's code and tests rely on ----------------------------

def test_one_store_per_database_file_and_the_no_argument_form(tmp_path, private_home):
    first = pcs.ProviderConfigStore(tmp_path / "a" / "jobs.db")
    first.save_sync("replicate", {"hardware_info": {"gpu-x": {"name": "X", "cost_per_second": 1.0}}})
    # A second path is a second database, never the first one reused.
    second = pcs.ProviderConfigStore(tmp_path / "b" / "jobs.db")
    assert second is not first and second.get_sync("replicate") == {}
    assert second.get_database_path() == (tmp_path / "b" / "jobs.db").resolve()
    # The same file by another spelling is the same store.
    assert pcs.ProviderConfigStore(str(tmp_path / "a" / ".." / "a" / "jobs.db")) is first
    # With no argument: the current store (the last one asked for by path),
    # as code that builds the store with and without a path shares one.
    assert pcs.ProviderConfigStore() is first
    assert pcs.get_provider_config_store() is first
    # ... until the default location changes: then the default database's.
    os.environ["SIMPLETUNER_STATE_DIR"] = str(tmp_path / "state")
    default = pcs.ProviderConfigStore()
    assert default.get_database_path() == (tmp_path / "state" / "cloud" / "jobs.db").resolve()
    assert default.get_sync("replicate") == {}
    assert pcs.ProviderConfigStore() is default


def test_reset_instance_and_instances_clear_open_anew(tmp_path):
    store = pcs.ProviderConfigStore(tmp_path / "jobs.db")
    pcs.ProviderConfigStore.reset_instance()
    again = pcs.ProviderConfigStore(tmp_path / "jobs.db")
    assert again is not store
    pcs.ProviderConfigStore._instances.clear()
    assert pcs.ProviderConfigStore(tmp_path / "jobs.db") is not again


def test_simpletuners_test_sequence_gets_default_prices_on_each_new_directory(tmp_path):
    """SimpleTuner's hardware-pricing tests: each builds its store on a new
    temporary directory (removed afterwards) and expects the defaults, not
    the prices an earlier test configured."""
    import shutil
    for round_ in range(3):
        config_dir = tmp_path / f"run{round_}"
        config_dir.mkdir()
        store = pcs.ProviderConfigStore(config_dir / "jobs.db")  # AsyncJobStore(config_dir=...)
        rc.clear_hardware_info_cache()
        assert asyncio.run(rc.get_hardware_info_async(store)) == rc.DEFAULT_HARDWARE_INFO
        asyncio.run(pcs.get_provider_config_store().save(
            "replicate", {"hardware_info": {"gpu-l40s": {"name": "Mine", "cost_per_second": 0.5}}}))
        rc.clear_hardware_info_cache()
        assert asyncio.run(rc.get_hardware_info_async(store))["gpu-l40s"]["name"] == "Mine"
        shutil.rmtree(config_dir)  # the test's tearDown


def test_a_store_whose_file_was_removed_says_so_and_a_new_one_opens(tmp_path):
    import shutil
    config_dir = tmp_path / "run"
    store = pcs.ProviderConfigStore(config_dir / "jobs.db")
    store.save_sync("p", {"a": 1})
    shutil.rmtree(config_dir)
    with pytest.raises(st_secrets.StoreError, match=r"jobs\.db: the database file was removed") as caught:
        store.save_sync("p", {"a": 2})
    assert "malformed" not in str(caught.value)
    fresh = pcs.ProviderConfigStore(config_dir / "jobs.db")
    assert fresh is not store and fresh.get_sync("p") == {}
    fresh.save_sync("p", {"a": 3})
    assert fresh.get_sync("p") == {"a": 3}


def test_a_replaced_database_file_is_followed(tmp_path):
    store = pcs.ProviderConfigStore(tmp_path / "live" / "jobs.db")
    store.save_sync("p", {"from": "old"})
    assert store.get_sync("p") == {"from": "old"}
    built = sqlite3.connect(tmp_path / "restored.db")
    built.execute("CREATE TABLE provider_config (provider TEXT PRIMARY KEY, config TEXT NOT NULL "
                  "DEFAULT '{}', updated_at TEXT NOT NULL)")
    built.execute("INSERT INTO provider_config VALUES ('p', '{\"from\": \"backup\"}', '2025-01-01T00:00:00+00:00')")
    built.commit()
    built.close()
    os.replace(tmp_path / "restored.db", tmp_path / "live" / "jobs.db")
    assert store.list_providers_sync() == ["p"]
    assert store.get_sync("p") == {"from": "backup"}


# ---- exceptions named after builtins are the builtins too ------------------------------------

@pytest.mark.parametrize("name", ["TimeoutError", "PermissionError", "KeyError"])
def test_errors_named_after_builtins_are_caught_as_them(name):
    import builtins
    cls = getattr(st_secrets, name)
    assert issubclass(cls, builtins.__dict__[name]) and issubclass(cls, st_secrets.StSecretsError)
    error = cls("what happened")
    assert str(error) == "what happened" and error.args == ("what happened",)
    try:
        raise error
    except builtins.__dict__[name] as caught:
        assert caught is error


def test_a_library_timeout_is_a_builtin_timeout(private_home):
    # A real one: a Vault address nothing answers in time.
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        manager = st_secrets.SecretsManager({"providers": ["vault"], "vault_url": f"http://127.0.0.1:{port}",
                                             "vault_token": "t", "request_timeout": 0.3, "retries": 0})
        with pytest.raises(TimeoutError) as caught:
            manager.get("X")
        assert isinstance(caught.value, st_secrets.StSecretsError), caught.value
    finally:
        listener.close()


def test_the_drop_in_resolves_a_launchers_reference(private_home, monkeypatch):
    d = private_home / ".simpletuner"
    d.mkdir(exist_ok=True)
    (d / "secrets.json").write_text(json.dumps({"hf-token": "hf_resolved_by_the_rank"}))
    (d / "secrets.json").chmod(0o600)
    monkeypatch.setenv("HF_TOKEN", "st://hf-token")
    sec.SecretsManager.reset()
    assert sec.get_secrets_manager().get_hf_token() == "hf_resolved_by_the_rank"
